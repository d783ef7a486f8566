//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// loadCPU is the core of the load generators and the backend; proxies get proxyCPU.
const (
	loadCPU  = "1"
	proxyCPU = "0"
)

// sample is one measurement: a value, or why there is none. warn notes errors that did not
// invalidate the value (a few socket errors among millions of requests).
type sample struct {
	value float64
	err   string
	warn  string
}

func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// wrkResult is what wrk prints that the bench uses.
type wrkResult struct {
	rps          float64
	requests     int64
	socketErrors int64
	non2xx       int64
	errDetail    string
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: ([0-9]+)`)
)

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output: %q", lastLine(out))
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkRequests.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		var parts []string
		for i, kind := range []string{"connect", "read", "write", "timeout"} {
			n, _ := strconv.ParseInt(m[i+1], 10, 64)
			r.socketErrors += n
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", kind, n))
			}
		}
		r.errDetail = strings.Join(parts, ", ")
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r, nil
}

// toSample judges a wrk run: more than 1% failed requests (or none answered) makes it an error.
func (r wrkResult) toSample() sample {
	bad := r.socketErrors + r.non2xx
	var what []string
	if r.non2xx > 0 {
		what = append(what, fmt.Sprintf("%d non-2xx responses", r.non2xx))
	}
	if r.socketErrors > 0 {
		what = append(what, "socket errors: "+r.errDetail)
	}
	msg := strings.Join(what, "; ")
	switch {
	case r.requests == 0 || r.rps == 0:
		if msg == "" {
			msg = "no request answered"
		}
		return sample{err: msg}
	case float64(bad) > 0.01*float64(r.requests):
		return sample{err: fmt.Sprintf("%s of %d requests", msg, r.requests)}
	case bad > 0:
		return sample{value: r.rps, warn: fmt.Sprintf("%s of %d requests", msg, r.requests)}
	}
	return sample{value: r.rps}
}

// wrk runs a warm-up, then the measured run, both from the load core with one thread. The
// second sample is the CPU time the proxy spent per request in the measured run (p nil: no
// proxy, no figure).
func (b *bench) wrk(ctx context.Context, port, conns int, p *proc) (sample, sample) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	args := func(d time.Duration) []string {
		return []string{"wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + secs(d) + "s", "--timeout", "5s", url}
	}
	if b.opts.warmup > 0 {
		if _, stderr, err := b.sup.run(ctx, loadCPU, nil, args(b.opts.warmup)...); err != nil {
			e := sample{err: fmt.Sprintf("wrk warm-up: %v %s", err, lastLine(stderr))}
			return e, e
		}
	}
	cpu := startCPU(p)
	out, stderr, err := b.sup.run(ctx, loadCPU, nil, args(b.opts.duration)...)
	if err != nil {
		e := sample{err: fmt.Sprintf("wrk: %v %s", err, lastLine(stderr))}
		return e, e
	}
	r, err := parseWrk(out)
	if err != nil {
		e := sample{err: err.Error()}
		return e, e
	}
	return r.toSample(), cpu.perRequest(r.requests)
}

// cpuMeter measures the CPU time (user and system) of a process group over a load run.
type cpuMeter struct {
	pgid  int // 0: nothing measured
	start int64
}

func startCPU(p *proc) cpuMeter {
	if p == nil {
		return cpuMeter{}
	}
	return cpuMeter{pgid: p.pid, start: groupTicks(p.pid)}
}

// perRequest is the CPU time spent since the start over requests, in µs.
func (m cpuMeter) perRequest(requests int64) sample {
	if m.pgid == 0 || requests <= 0 {
		return sample{err: "no CPU figure (no process, or no request answered)"}
	}
	ticks := groupTicks(m.pgid) - m.start
	return sample{value: float64(ticks) * 1e6 / userHZ / float64(requests)}
}

// h2loadResult is what h2load prints that the bench uses.
type h2loadResult struct {
	rps                                  float64
	total, succeeded, failed, errored    int64
	status2xx, status3xx, status4xx, s5x int64
}

var (
	h2RPS      = regexp.MustCompile(`(?m)^finished in [^,]+, ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`(?m)^requests: ([0-9]+) total, [0-9]+ started, [0-9]+ done, ([0-9]+) succeeded, ([0-9]+) failed, ([0-9]+) errored`)
	h2Status   = regexp.MustCompile(`(?m)^status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx`)
)

func parseH2load(out string) (h2loadResult, error) {
	var r h2loadResult
	m := h2RPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no req/s in h2load output: %q", lastLine(out))
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := h2Requests.FindStringSubmatch(out); m != nil {
		r.total, _ = strconv.ParseInt(m[1], 10, 64)
		r.succeeded, _ = strconv.ParseInt(m[2], 10, 64)
		r.failed, _ = strconv.ParseInt(m[3], 10, 64)
		r.errored, _ = strconv.ParseInt(m[4], 10, 64)
	}
	if m := h2Status.FindStringSubmatch(out); m != nil {
		r.status2xx, _ = strconv.ParseInt(m[1], 10, 64)
		r.status3xx, _ = strconv.ParseInt(m[2], 10, 64)
		r.status4xx, _ = strconv.ParseInt(m[3], 10, 64)
		r.s5x, _ = strconv.ParseInt(m[4], 10, 64)
	}
	return r, nil
}

// toSample judges an h2load run. h2load counts a 4xx/5xx as succeeded, so non-2xx answers are
// counted from the status codes.
func (r h2loadResult) toSample() sample {
	bad := r.failed + r.errored + r.status3xx + r.status4xx + r.s5x
	msg := fmt.Sprintf("%d failed, %d errored, %d non-2xx of %d requests", r.failed, r.errored,
		r.status3xx+r.status4xx+r.s5x, r.total)
	switch {
	case r.status2xx == 0 || r.rps == 0:
		return sample{err: "no 2xx response (" + msg + ")"}
	case float64(bad) > 0.01*float64(r.total):
		return sample{err: msg}
	case bad > 0:
		return sample{value: r.rps, warn: msg}
	}
	return sample{value: r.rps}
}

// h2load runs h2c with prior knowledge: conns connections, streams concurrent streams each; a
// warm-up run, then the measured one, as wrk does, with the proxy's CPU time per request.
func (b *bench) h2load(ctx context.Context, port int, p *proc) (sample, sample) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	run := func(d time.Duration) (h2loadResult, error) {
		out, stderr, err := b.sup.run(ctx, loadCPU, nil, "h2load", "-t1", "-c"+strconv.Itoa(b.opts.h2Conns),
			"-m"+strconv.Itoa(b.opts.h2Streams), "-D", secs(d), url)
		if err != nil && !strings.Contains(out, "req/s") {
			return h2loadResult{}, fmt.Errorf("h2load: %w %s", err, lastLine(stderr+out))
		}
		return parseH2load(out)
	}
	if b.opts.warmup > 0 {
		if _, err := run(b.opts.warmup); err != nil {
			e := sample{err: "warm-up: " + err.Error()}
			return e, e
		}
	}
	cpu := startCPU(p)
	r, err := run(b.opts.duration)
	if err != nil {
		e := sample{err: err.Error()}
		return e, e
	}
	return r.toSample(), cpu.perRequest(r.succeeded)
}

// latencyResult is openloop's JSON (see hack/bench/openloop).
type latencyResult struct {
	TargetRPS     float64 `json:"target_rps"`
	AchievedRPS   float64 `json:"achieved_rps"`
	Requests      int64   `json:"requests"`
	Completed     int64   `json:"completed"`
	Errors        int64   `json:"errors"`
	Dropped       int64   `json:"dropped"`
	Saturated     bool    `json:"saturated"`
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	P999us        float64 `json:"p999_us"`
	MaxUs         float64 `json:"max_us"`
	PacerLagP99us float64 `json:"pacer_lag_p99_us"`
	FirstError    string  `json:"first_error"`
}

// latDrain is how long after the latency test's schedule ends queued requests may still be
// sent; what is still queued then counts as dropped.
const latDrain = 2 * time.Second

// openloop runs the fixed-rate generator from the load core with GOMAXPROCS=1.
func (b *bench) openloop(ctx context.Context, port int, rate float64) (*latencyResult, error) {
	args := []string{b.bin("openloop"),
		"-url", fmt.Sprintf("http://127.0.0.1:%d/", port),
		"-rate", strconv.FormatFloat(math.Round(rate), 'f', 0, 64),
		"-duration", b.opts.latDuration.String(),
		"-warmup", b.opts.latWarmup.String(),
		"-conns", strconv.Itoa(b.opts.latConns),
		"-drain", latDrain.String(),
	}
	out, stderr, err := b.sup.run(ctx, loadCPU, []string{"GOMAXPROCS=1"}, args...)
	if err != nil {
		return nil, fmt.Errorf("openloop: %w: %s", err, lastLine(stderr))
	}
	var r latencyResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("openloop output: %w", err)
	}
	return &r, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
