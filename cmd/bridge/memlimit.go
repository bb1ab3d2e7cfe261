package main

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// RuntimeConfig is the runtime section: settings of the Go runtime the process runs
// on, applied by bridge run before it builds anything (applyMemoryLimit).
type RuntimeConfig struct {
	// MemoryLimit is the Go runtime's soft memory limit (runtime/debug.SetMemoryLimit):
	// as it nears, the collector runs sooner and returns freed memory to the system.
	// Bytes, or GOMEMLIMIT's syntax ("256MiB": B, KiB, MiB, GiB or TiB). The GOMEMLIMIT
	// environment variable, when set, wins. At least minMemoryLimit. Default (and 0)
	// none.
	MemoryLimit byteSize `yaml:"memory_limit"`
}

// minMemoryLimit is the least runtime.memory_limit. The gateway's Go heap is 7 MiB in
// use once started and 35 MiB at a burst of 10,000 puppets (docs/benchmarks.md,
// Puppets10K), and the runtime's stacks and metadata come on top: a soft limit below
// 32 MiB sits under what ordinary load keeps live, so the collector would run back to
// back (up to the runtime's cap of half the CPU) and the process would pass the limit
// anyway: CPU spent, memory not bounded. It also catches a bare number meant as MiB
// ("256" is 256 bytes).
const minMemoryLimit byteSize = 32 << 20

// Validate checks the runtime section.
func (r RuntimeConfig) Validate() error {
	if r.MemoryLimit != 0 && r.MemoryLimit < minMemoryLimit {
		return fmt.Errorf("runtime.memory_limit: %v is less than %v (the gateway's heap alone reaches 35 MiB with 10,000 puppets: below what it keeps live the collector runs back to back, spending CPU without bounding memory; 0 sets no limit)",
			r.MemoryLimit, minMemoryLimit)
	}
	return nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit to runtime.memory_limit,
// unless the GOMEMLIMIT environment variable (read through getenv) is set: the runtime
// applied that at start, and it wins. It logs, once, at Info, which limit applies, and
// returns where it came from ("GOMEMLIMIT", "runtime.memory_limit" or "" for none).
func applyMemoryLimit(r RuntimeConfig, log *slog.Logger, getenv func(string) string) string {
	if env := getenv("GOMEMLIMIT"); env != "" {
		args := []any{"limit", limitValue(debug.SetMemoryLimit(-1)), "from", "GOMEMLIMIT"}
		if r.MemoryLimit != 0 {
			args = append(args, "ignored", "runtime.memory_limit "+r.MemoryLimit.String())
		}
		log.Info("memory limit", args...)
		return "GOMEMLIMIT"
	}
	if r.MemoryLimit == 0 {
		log.Info("memory limit", "limit", "none", "from", "runtime.memory_limit 0, GOMEMLIMIT unset")
		return ""
	}
	debug.SetMemoryLimit(int64(r.MemoryLimit))
	log.Info("memory limit", "limit", r.MemoryLimit.String(), "from", "runtime.memory_limit")
	return "runtime.memory_limit"
}

// limitValue is a limit as debug.SetMemoryLimit reports it, for the log: "none" for
// math.MaxInt64 (GOMEMLIMIT=off).
func limitValue(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	return byteSize(n).String()
}

// byteSize is a size in bytes, written in the configuration as a number of bytes or in
// GOMEMLIMIT's syntax (parseByteSize), so that a value moves between the environment
// and the file unchanged.
type byteSize int64

// UnmarshalYAML reads a size; a malformed one is a *yaml.TypeError at the value's line,
// which check-config reports under the key there.
func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a size: want bytes, or a whole number with B, KiB, MiB, GiB or TiB, as GOMEMLIMIT (\"256MiB\")",
			n.Line, n.Value)}}
	}
	*b = v
	return nil
}

// units are GOMEMLIMIT's size suffixes, largest first.
var units = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseByteSize parses what the Go runtime accepts in GOMEMLIMIT (runtime's
// parseByteCount): a non-negative whole number of bytes, optionally followed, without a
// space, by B, KiB, MiB, GiB or TiB. No library parses exactly that: go-humanize and
// docker's go-units also take decimal prefixes (MB), with different meanings.
func parseByteSize(s string) (byteSize, error) {
	num, shift := s, uint(0)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = rest, u.shift
			break
		}
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return byteSize(n << shift), nil
}

// String writes the size in the largest unit that divides it ("256MiB"), or in bytes.
func (b byteSize) String() string {
	for _, u := range units {
		if b != 0 && b%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(b)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
