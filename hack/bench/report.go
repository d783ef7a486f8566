//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is the rendered result: the markdown table and the text around it.
type report struct {
	table string // the table and its footnotes, as printed
	raw   string // every run's figure, for the results file
}

var displayName = map[string]string{
	tDirect:  "direct",
	tHAProxy: "HAProxy",
	tNginx:   "nginx",
	tGoProxy: "go-reverseproxy",
	tStrait:  "Strait",
}

// median of the samples that have a value; ok is false when none has.
func median(samples []sample) (float64, bool) {
	var vs []float64
	for _, s := range samples {
		if s.err == "" {
			vs = append(vs, s.value)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// thousands formats a rate with thousands separators and no decimals: 23456.7 -> "23,457".
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// tenths formats a figure with one decimal: CPU µs per request, KiB per connection.
func tenths(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// ms formats microseconds as milliseconds with three significant digits or more.
func ms(us float64) string {
	v := us / 1000
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(firstLine(s), "|", "/")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// cell is one table cell: its text, and its value when it has one (for the ratios).
type cell struct {
	text  string
	value float64
	ok    bool
}

type tableRow struct {
	label string
	key   string // the results row, whose per-round figures the ratios pair
	cell  func(t *target) cell
}

func (b *bench) rows() []tableRow {
	var rows []tableRow
	// medianCell is the median over runs of one row's samples, formatted by format.
	medianCell := func(key string, format func(float64) string, mark func(t *target) string) func(t *target) cell {
		return func(t *target) cell {
			samples := b.results[t.name][key]
			m, ok := median(samples)
			if !ok {
				if len(samples) == 0 {
					return cell{text: "—"}
				}
				return cell{text: "error: " + shorten(samples[0].err, 60)}
			}
			text := format(m)
			if mark != nil {
				text += mark(t)
			}
			if good := countOK(samples); good < len(samples) {
				text += fmt.Sprintf(" (%d/%d runs)", good, len(samples))
			}
			return cell{text: text, value: m, ok: true}
		}
	}
	for _, c := range b.opts.conns {
		label := fmt.Sprintf("HTTP/1.1 req/s, %d conn", c)
		if c != 1 {
			label += "s"
		}
		rows = append(rows, tableRow{label, rowH1(c), medianCell(rowH1(c), thousands, nil)})
	}
	rows = append(rows, tableRow{
		fmt.Sprintf("h2c req/s, %d conns × %d streams", b.opts.h2Conns, b.opts.h2Streams),
		rowH2, medianCell(rowH2, thousands, nil)})
	// The proxy's CPU time per request in the same runs: on its saturated core, requests/s
	// goes as its inverse, and it moves less than requests/s with the machine's noise.
	for _, c := range b.opts.conns {
		label := fmt.Sprintf("CPU µs per request, HTTP/1.1, %d conn", c)
		if c != 1 {
			label += "s"
		}
		rows = append(rows, tableRow{label, rowCPU(rowH1(c)), medianCell(rowCPU(rowH1(c)), tenths, nil)})
	}
	rows = append(rows, tableRow{"CPU µs per request, h2c", rowCPU(rowH2), medianCell(rowCPU(rowH2), tenths, nil)})

	saturated := func(t *target) string {
		for _, r := range b.latency[t.name] {
			if r.Completed > 0 && r.Saturated {
				return " *"
			}
		}
		return ""
	}
	rate := thousands(b.rate)
	rows = append(rows,
		tableRow{fmt.Sprintf("latency p50 (ms) at %s req/s", rate), rowP50, medianCell(rowP50, ms, saturated)},
		tableRow{fmt.Sprintf("latency p99 (ms) at %s req/s", rate), rowP99, medianCell(rowP99, ms, saturated)},
		tableRow{fmt.Sprintf("latency p99.9 (ms) at %s req/s", rate), rowP999, medianCell(rowP999, ms, saturated)},
		tableRow{"req/s achieved in the latency test", rowAchieve, medianCell(rowAchieve, thousands, nil)},
	)
	rows = append(rows, tableRow{
		fmt.Sprintf("memory per idle conn (KiB), %s conns", thousands(float64(b.opts.idleConns))), rowMem,
		func(t *target) cell {
			if t.start == nil {
				return cell{text: "n/a (no proxy)"}
			}
			return medianCell(rowMem, tenths, nil)(t)
		}})
	return rows
}

// pairedRatio is the median over rounds of a's figure over b's in the same round, when both
// columns have a figure for every round (the throughput rounds measure the columns seconds
// apart). It is steadier than the ratio of the medians when the machine's speed drifts
// between rounds, and is what the table's ratio columns show when it exists.
func pairedRatio(a, b []sample) (float64, bool) {
	if len(a) != len(b) {
		return 0, false
	}
	var rs []sample
	for i := range a {
		if a[i].err == "" && b[i].err == "" && b[i].value != 0 {
			rs = append(rs, sample{value: a[i].value / b[i].value})
		}
	}
	return median(rs)
}

// ratio formats a ratio with two significant decimals below 10 and fewer above.
func ratio(r float64) string {
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "×"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

func countOK(samples []sample) int {
	n := 0
	for _, s := range samples {
		if s.err == "" {
			n++
		}
	}
	return n
}

func (b *bench) target(name string) *target {
	for _, t := range b.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

// render builds the markdown table: one column per target, then Strait's ratios.
func (b *bench) render() report {
	var sb strings.Builder
	if b.warning != "" {
		sb.WriteString(b.warning + "\n\n")
	}
	header := []string{"measurement"}
	for _, t := range b.targets {
		header = append(header, displayName[t.name])
	}
	strait := b.target(tStrait)
	ratios := []string{tHAProxy, tDirect}
	if strait != nil {
		for _, r := range ratios {
			header = append(header, "Strait / "+displayName[r])
		}
	}
	line := func(cells []string) {
		sb.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	line(header)
	sep := make([]string, len(header))
	sep[0] = "---"
	for i := 1; i < len(sep); i++ {
		sep[i] = "---:"
	}
	line(sep)

	for _, row := range b.rows() {
		cells := []string{row.label}
		byName := map[string]cell{}
		for _, t := range b.targets {
			var c cell
			if t.unavailable != "" {
				c = cell{text: t.unavailable}
			} else {
				c = row.cell(t)
			}
			byName[t.name] = c
			cells = append(cells, c.text)
		}
		if strait != nil {
			s := byName[tStrait]
			for _, r := range ratios {
				o, ok := byName[r]
				if !s.ok || !ok || !o.ok || o.value == 0 {
					cells = append(cells, "—")
					continue
				}
				if v, ok := pairedRatio(b.results[tStrait][row.key], b.results[r][row.key]); ok {
					cells = append(cells, ratio(v))
					continue
				}
				cells = append(cells, ratio(s.value/o.value))
			}
		}
		line(cells)
	}

	sb.WriteString("\n")
	sb.WriteString(b.method() + ".\n")
	if b.rate > 0 {
		fmt.Fprintf(&sb, "Latency: open loop at %s req/s (%s) over %d keep-alive connections, %v after a %v warm-up, "+
			"measured from each request's intended send time (coordinated-omission corrected).",
			thousands(b.rate), b.rateHow, b.opts.latConns, b.opts.latDuration, b.opts.latWarmup)
		sat := false
		var lags []string
		for _, t := range b.targets {
			var lag []sample
			for _, r := range b.latency[t.name] {
				if r.Completed > 0 {
					sat = sat || r.Saturated
					lag = append(lag, sample{value: r.PacerLagP99us})
				}
			}
			if m, ok := median(lag); ok {
				lags = append(lags, fmt.Sprintf("%s %.0f", t.name, m))
			}
		}
		if sat {
			sb.WriteString(" * = did not keep up with the rate in at least one run (achieved under 95% of it, " +
				"or requests dropped): its latencies include the queue that built up.")
		}
		if len(lags) > 0 {
			sb.WriteString(" The generator's own send lag (p99, µs; part of every latency, the direct column " +
				"shows the floor): " + strings.Join(lags, ", ") + ".")
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "Memory: RSS growth (VmRSS, whole process group) with %s idle keep-alive connections that "+
		"each carried one request, divided by their number.\n", thousands(float64(b.opts.idleConns)))
	if strait != nil {
		sb.WriteString("Ratios are Strait's figure over the other column's, the median of the per-round ratios " +
			"when both columns have a figure in every round: above 1 is more req/s, or more latency, CPU time or memory.\n")
	}
	if len(b.notes) > 0 {
		sb.WriteString("\nNotes:\n")
		for _, n := range b.notes {
			sb.WriteString("- " + n + "\n")
		}
	}
	warnings := b.warnings()
	if len(warnings) > 0 {
		sb.WriteString("\nErrors and warnings:\n")
		for _, w := range warnings {
			sb.WriteString("- " + w + "\n")
		}
	}
	return report{table: sb.String(), raw: b.rawRuns()}
}

// warnings lists every run with an error or a warning, in full.
func (b *bench) warnings() []string {
	var out []string
	keys := []string{}
	for _, c := range b.opts.conns {
		keys = append(keys, rowH1(c))
	}
	keys = append(keys, rowH2, rowMem)
	for _, t := range b.targets {
		for _, k := range keys {
			for i, s := range b.results[t.name][k] {
				switch {
				case s.err != "":
					out = append(out, fmt.Sprintf("%s %s run %d: error: %s", t.name, k, i+1, firstLine(s.err)))
				case s.warn != "":
					out = append(out, fmt.Sprintf("%s %s run %d: %s", t.name, k, i+1, s.warn))
				}
			}
		}
		for i, r := range b.latency[t.name] {
			if r.Errors > 0 || r.Dropped > 0 || r.Completed == 0 {
				msg := fmt.Sprintf("%s latency run %d: %d errors, %d dropped (still queued %v after the schedule ended) of %d requests",
					t.name, i+1, r.Errors, r.Dropped, latDrain, r.Requests)
				if r.FirstError != "" {
					msg += "; first error: " + r.FirstError
				}
				out = append(out, msg)
			}
		}
	}
	return out
}

// rawRuns lists each run's requests/s, for the results file.
func (b *bench) rawRuns() string {
	var sb strings.Builder
	sb.WriteString("Requests/s; latencies and CPU time per request (cpu/) in µs.\n\n| target | measurement | runs |\n|---|---|---|\n")
	keys := []string{}
	for _, c := range b.opts.conns {
		keys = append(keys, rowH1(c))
	}
	keys = append(keys, rowH2, rowP50, rowP99, rowP999, rowAchieve)
	for _, c := range b.opts.conns {
		keys = append(keys, rowCPU(rowH1(c)))
	}
	keys = append(keys, rowCPU(rowH2))
	for _, t := range b.targets {
		for _, k := range keys {
			samples := b.results[t.name][k]
			if len(samples) == 0 {
				continue
			}
			format := thousands
			if strings.HasPrefix(k, "cpu/") {
				format = tenths
			}
			var vs []string
			for _, s := range samples {
				if s.err != "" {
					vs = append(vs, "error")
				} else {
					vs = append(vs, format(s.value))
				}
			}
			fmt.Fprintf(&sb, "| %s | %s | %s |\n", t.name, k, strings.Join(vs, ", "))
		}
	}
	return sb.String()
}

// writeReport writes the results file: hack/bench/results/<date>[-quick].md, with the time
// appended when that name is taken.
func (b *bench) writeReport(r report) (string, error) {
	dir := b.opts.outDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := b.started.Format("2006-01-02")
	if b.opts.quick {
		name += "-quick"
	}
	path := filepath.Join(dir, name+".md")
	if _, err := os.Stat(path); err == nil {
		path = filepath.Join(dir, name+"-"+b.started.Format("150405")+".md")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Proxy benchmark, %s\n\n", b.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "Command: `%s`  \nRun time: %v  \n", commandLine(), time.Since(b.started).Round(time.Second))
	sb.WriteString("Topology: loopback only; each proxy a fresh process pinned to core 0 with one thread " +
		"(HAProxy nbthread 1, nginx worker_processes 1, Go proxies GOMAXPROCS=1); wrk, h2load, the " +
		"open-loop generator and the backend (nginx `return 200`, small body) on core 1.\n\n")
	for _, v := range b.versions {
		sb.WriteString("- " + v + "\n")
	}
	sb.WriteString("\n" + r.table + "\n## Every run\n\n" + r.raw)
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

func commandLine() string {
	args := append([]string{"go", "run", "./hack/bench"}, os.Args[1:]...)
	return strings.Join(args, " ")
}
