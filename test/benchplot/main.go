// Command benchplot draws the SVG plots of docs/benchmarks.md from one `make bench` run:
// the per-hop latency distribution of Whisper forwarding before and after eager
// forwarding (the raw samples test/statusnet saved), the gateway's achieved throughput
// against the offered load, archive ingest, ours against geth v1.9.20's, and the anchor
// (ours and matterbridge relaying IRC and an api).
//
// It is a module of its own (like test/reference), so the plotting library,
// gonum.org/v1/plot, never enters the product's module graph.
//
// Usage: benchplot -ours bin/bench-ours.txt -ref bin/bench-ref.txt -samples bin/samples -out docs
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	oursPath := flag.String("ours", "", "our go test -bench output")
	refPath := flag.String("ref", "", "the references' bench output")
	samples := flag.String("samples", "", "directory of raw samples (test/benchsamples)")
	out := flag.String("out", "docs", "directory for the SVG files")
	flag.Parse()
	if *oursPath == "" || *refPath == "" || *samples == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*oursPath, *refPath, *samples, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

func run(oursPath, refPath, samples, out string) error {
	ours, err := parseFile(oursPath)
	if err != nil {
		return err
	}
	ref, err := parseFile(refPath)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		file string
		draw func() (*plot.Plot, error)
	}{
		{"bench-propagation.svg", func() (*plot.Plot, error) { return propagation(samples) }},
		{"bench-gateway.svg", func() (*plot.Plot, error) { return gateway(ours) }},
		{"bench-archive.svg", func() (*plot.Plot, error) { return archive(ours, ref) }},
		{"bench-anchor.svg", func() (*plot.Plot, error) { return anchor(ours) }},
	} {
		pl, err := p.draw()
		if err != nil {
			return fmt.Errorf("%s: %w", p.file, err)
		}
		if err := pl.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(out, p.file)); err != nil {
			return fmt.Errorf("%s: %w", p.file, err)
		}
		fmt.Println("wrote", filepath.Join(out, p.file))
	}
	return nil
}

// metrics are one benchmark's figures by unit ("ns/op", "msg/s", …), medians over runs.
type metrics map[string]float64

// parseFile reads `go test -bench` output: name → unit → median value.
func parseFile(path string) (map[string]metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	runs := map[string]map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(fs[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		if runs[name] == nil {
			runs[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fs); i += 2 {
			if v, err := strconv.ParseFloat(fs[i], 64); err == nil {
				runs[name][fs[i+1]] = append(runs[name][fs[i+1]], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string]metrics{}
	for name, units := range runs {
		out[name] = metrics{}
		for unit, vs := range units {
			slices.Sort(vs)
			out[name][unit] = vs[len(vs)/2]
		}
	}
	return out, nil
}

func readSamples(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var vs []float64
	for _, line := range strings.Fields(string(b)) {
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: no samples", path)
	}
	return vs, nil
}

// propagation draws the cumulative distribution of one hop's latency in both
// forwarding modes, on a log scale (eager hops are milliseconds, periodic ones up to a
// 300 ms cycle).
func propagation(dir string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "One Whisper hop between our nodes (Propagation10, all 9 hops of every message)"
	p.X.Label.Text = "latency, ms (log scale)"
	p.Y.Label.Text = "share of hops at or below"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = false
	p.Legend.Left = false
	for i, mode := range []string{"periodic", "eager"} {
		vs, err := readSamples(filepath.Join(dir, "Propagation10_"+mode+".hop-ms.txt"))
		if err != nil {
			return nil, err
		}
		sort.Float64s(vs)
		pts := make(plotter.XYs, 0, len(vs))
		for j, v := range vs {
			pts = append(pts, plotter.XY{X: math.Max(v, 0.05), Y: float64(j+1) / float64(len(vs))})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2)
		p.Add(line)
		label := map[string]string{"periodic": "periodic (geth's 300 ms cycle)", "eager": "eager (ours)"}[mode]
		p.Legend.Add(fmt.Sprintf("%s: p50 %.1f ms, p99 %.1f ms", label, q(vs, 0.5), q(vs, 0.99)), line)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// q is the nearest-rank quantile of sorted values.
func q(sorted []float64, f float64) float64 {
	i := int(math.Ceil(f*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// gateway draws achieved against offered msg/s for each gateway benchmark with an
// offered-msg/s figure, one line per direction.
func gateway(ours map[string]metrics) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Gateway end to end: achieved against offered load"
	p.X.Label.Text = "offered, messages/s"
	p.Y.Label.Text = "achieved, messages/s"
	p.Legend.Top = true
	p.Legend.Left = true
	series := map[string]plotter.XYs{}
	for name, m := range ours {
		rest, ok := strings.CutPrefix(name, "Gateway_")
		if !ok || m["offered-msg/s"] == 0 || strings.HasPrefix(rest, "Sustained/") {
			continue // Sustained: one rate held for a minute, not a point of the curve
		}
		dir := rest[:strings.LastIndex(rest, "/rate=")]
		series[dir] = append(series[dir], plotter.XY{X: m["offered-msg/s"], Y: m["msg/s"]})
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("no gateway benchmark with offered-msg/s")
	}
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	maxX := 0.0
	for i, n := range names {
		pts := series[n]
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		maxX = math.Max(maxX, pts[len(pts)-1].X)
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(n, line, points)
	}
	ideal, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: maxX, Y: maxX}})
	if err != nil {
		return nil, err
	}
	ideal.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	ideal.Color = color.Gray{Y: 128}
	p.Add(ideal)
	p.Legend.Add("achieved = offered", ideal)
	p.Add(plotter.NewGrid())
	return p, nil
}

// archive draws envelopes per second into the archive: ours on SQLite and PostgreSQL
// against geth v1.9.20's LevelDB, from the same run.
func archive(ours, ref map[string]metrics) (*plot.Plot, error) {
	type bar struct {
		label string
		v     float64
	}
	var bars []bar
	for _, n := range []string{"ArchiveIngest/sqlite", "ArchiveIngest/postgres"} {
		if m, ok := ours[n]; ok && m["ns/op"] > 0 {
			bars = append(bars, bar{"ours, " + strings.TrimPrefix(n, "ArchiveIngest/"), 1e9 / m["ns/op"]})
		}
	}
	if m, ok := ref["ArchiveIngest"]; ok && m["ns/op"] > 0 {
		bars = append(bars, bar{"geth v1.9.20, LevelDB", 1e9 / m["ns/op"]})
	}
	if len(bars) == 0 {
		return nil, fmt.Errorf("no ArchiveIngest figures")
	}
	p := plot.New()
	p.Title.Text = "Archive ingest (one envelope of 620 bytes; higher is faster)"
	p.Y.Label.Text = "envelopes/s"
	vals := make(plotter.Values, len(bars))
	labels := make([]string, len(bars))
	for i, b := range bars {
		vals[i], labels[i] = b.v, fmt.Sprintf("%s\n%.0f/s", b.label, b.v)
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(60))
	if err != nil {
		return nil, err
	}
	bc.Color = plotutil.Color(0)
	p.Add(bc)
	p.NominalX(labels...)
	p.Add(plotter.NewGrid())
	return p, nil
}

// anchor draws the anchor benchmark (test/anchor): messages a second each relay
// achieved, ours beside matterbridge, per direction and offered rate.
func anchor(ours map[string]metrics) (*plot.Plot, error) {
	dirs := []struct{ key, label string }{{"irc-to-api", "IRC → api"}, {"api-to-irc", "api → IRC"}}
	rates := []string{"100", "1000", "max"}
	relays := []string{"statusgate", "matterbridge"}
	var labels []string
	for _, d := range dirs {
		for _, r := range rates {
			offered := r + "/s offered"
			if r == "max" {
				offered = "max offered"
			}
			labels = append(labels, d.label+"\n"+offered)
		}
	}
	p := plot.New()
	p.Title.Text = "Relaying an ngircd channel and the relay's own api: ours and matterbridge v1.26.0"
	p.Y.Label.Text = "achieved, messages/s"
	p.Legend.Top = true
	w := vg.Points(24)
	found := false
	for i, relay := range relays {
		vals := make(plotter.Values, 0, len(labels))
		for _, d := range dirs {
			for _, r := range rates {
				m, ok := ours["Anchor/relay="+relay+"/"+d.key+"/rate="+r]
				if ok {
					found = true
				}
				vals = append(vals, m["msg/s"])
			}
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bc.Color = plotutil.Color(i)
		bc.Offset = vg.Length(float64(i)-0.5) * w
		p.Add(bc)
		p.Legend.Add(relay, bc)
	}
	if !found {
		return nil, fmt.Errorf("no Anchor figures")
	}
	p.NominalX(labels...)
	p.Add(plotter.NewGrid())
	return p, nil
}
