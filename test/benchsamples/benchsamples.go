// Package benchsamples keeps a benchmark's raw distribution (latencies, one value per
// message) for the plots test/benchreport draws, and computes its quantiles. It is
// imported only by _test.go files.
package benchsamples

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// EnvDir names the directory Save writes to; `make bench` sets it. Unset, Save does
// nothing.
const EnvDir = "STATUSGATE_BENCH_SAMPLES"

// Save writes values, one a line, to $STATUSGATE_BENCH_SAMPLES/<name>.txt, name being
// the benchmark's name with "/" as "_" plus suffix (e.g. "hop-ms"). A failed write
// fails the benchmark.
func Save(tb testing.TB, suffix string, values []float64) {
	tb.Helper()
	dir := os.Getenv(EnvDir)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("bench samples: %v", err)
	}
	var b strings.Builder
	for _, v := range values {
		b.WriteString(strconv.FormatFloat(v, 'g', 6, 64))
		b.WriteByte('\n')
	}
	name := strings.TrimPrefix(strings.ReplaceAll(tb.Name(), "/", "_"), "Benchmark") + "." + suffix + ".txt"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		tb.Fatalf("bench samples: %v", err)
	}
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of values by the nearest-rank method,
// NaN for none. values is sorted in place.
func Quantile(values []float64, q float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	slices.Sort(values)
	i := int(math.Ceil(q*float64(len(values)))) - 1
	return values[min(max(i, 0), len(values)-1)]
}
