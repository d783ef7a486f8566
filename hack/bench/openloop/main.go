// Command openloop is a fixed-rate (open-loop) HTTP/1.1 load generator with coordinated-omission
// correction, for measuring latency at a given request rate (what wrk2 does; wrk2 is not packaged
// in Debian).
//
//	openloop -url http://127.0.0.1:8080/ -rate 12000 -duration 10s -warmup 2s -conns 64
//
// Request j is due at start + j/rate, whatever happened to earlier requests. A pacer releases
// each request when it is due; any idle keep-alive connection of the pool takes it, sends it and
// reads the response. Its latency is measured from the time it was due, not from the time it was
// sent, so a proxy that stalls is charged for every request that queued behind the stall
// (coordinated-omission correction). Requests still queued when the drain time after the
// schedule runs out count as dropped, with the latency they had reached by then (a lower bound).
//
// It prints one JSON object (see result) on stdout and a summary on stderr.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

// ticker wakes the pacer periodically.
type ticker interface {
	Wait() error
	Stop()
}

// result is the JSON printed on stdout. Latencies are in microseconds.
type result struct {
	TargetRPS   float64 `json:"target_rps"`
	AchievedRPS float64 `json:"achieved_rps"`
	Conns       int     `json:"conns"`
	DurationS   float64 `json:"duration_s"`
	Requests    int64   `json:"requests"`  // due in the measured window
	Completed   int64   `json:"completed"` // of those, answered with 200
	Errors      int64   `json:"errors"`    // of those, failed (connection error, timeout, non-200)
	Dropped     int64   `json:"dropped"`   // of those, never sent before the drain deadline
	Saturated   bool    `json:"saturated"` // the target did not keep up with the rate
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	MaxUs       float64 `json:"max_us"`
	MeanUs      float64 `json:"mean_us"`
	// PacerLagP99us is how late the generator itself released requests (99th percentile over its
	// wake-ups): a check that the generator, not the target, is not the bottleneck.
	PacerLagP99us float64 `json:"pacer_lag_p99_us"`
	PacerLagMaxUs float64 `json:"pacer_lag_max_us"`
	FirstError    string  `json:"first_error,omitempty"`
}

type config struct {
	addr     string
	req      []byte
	rate     float64
	duration time.Duration
	warmup   time.Duration
	drain    time.Duration
	timeout  time.Duration
	conns    int
}

func main() {
	var (
		rawURL = flag.String("url", "", "target URL (http only), e.g. http://127.0.0.1:8080/")
		c      config
	)
	flag.Float64Var(&c.rate, "rate", 1000, "requests per second")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up at the same rate before the measured window (not recorded)")
	flag.DurationVar(&c.drain, "drain", 5*time.Second, "how long after the schedule ends queued requests may still be sent")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.IntVar(&c.conns, "conns", 64, "keep-alive connections in the pool")
	flag.Parse()
	if err := c.fromURL(*rawURL); err != nil {
		fmt.Fprintln(os.Stderr, "openloop:", err)
		os.Exit(2)
	}
	if c.rate <= 0 || c.duration <= 0 || c.conns <= 0 || c.warmup < 0 {
		fmt.Fprintln(os.Stderr, "openloop: -rate, -duration and -conns must be positive")
		os.Exit(2)
	}
	res, err := run(&c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openloop:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "openloop: target %.0f rps, achieved %.0f rps, %d requests, %d errors, %d dropped; "+
		"p50 %.0fus p99 %.0fus p99.9 %.0fus max %.0fus; pacer lag p99 %.0fus\n",
		res.TargetRPS, res.AchievedRPS, res.Requests, res.Errors, res.Dropped,
		res.P50us, res.P99us, res.P999us, res.MaxUs, res.PacerLagP99us)
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		os.Exit(1)
	}
}

func (c *config) fromURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url: want http://host:port/path, got %q", raw)
	}
	c.addr = u.Host
	if u.Port() == "" {
		c.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	path := u.RequestURI()
	c.req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: strait-openloop\r\n\r\n", path, u.Host)
	return nil
}

// conn is one keep-alive connection of the pool.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

var errStatus = errors.New("non-200 response")

func (c *config) dial() (*conn, error) {
	nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return nil, err
	}
	return &conn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
}

// roundTrip sends one request and reads its response. keep is false when the connection must
// not be used again.
func (cn *conn) roundTrip(req []byte, timeout time.Duration) (keep bool, err error) {
	if err := cn.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return false, err
	}
	if _, err := cn.c.Write(req); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(cn.br, nil)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return !resp.Close, fmt.Errorf("%w: %s", errStatus, resp.Status)
	}
	return !resp.Close, nil
}

// workerStats is what one pool connection saw.
type workerStats struct {
	lat       []time.Duration
	errors    int64
	dropped   int64
	last      time.Duration // completion time of the last measured request, from base
	firstErr  error
	completed int64
}

func run(cfg *config) (*result, error) {
	interval := time.Duration(float64(time.Second) / cfg.rate)
	if interval <= 0 {
		return nil, errors.New("rate too high")
	}
	total := int64((cfg.warmup + cfg.duration) / interval)
	warmN := int64(cfg.warmup / interval)
	if total-warmN <= 0 {
		return nil, errors.New("duration shorter than one request interval")
	}
	scheduleEnd := time.Duration(total) * interval
	hardDeadline := scheduleEnd + cfg.drain

	// Open the pool before the clock starts.
	pool := make([]*conn, cfg.conns)
	for i := range pool {
		cn, err := cfg.dial()
		if err != nil {
			for _, p := range pool[:i] {
				p.c.Close()
			}
			return nil, fmt.Errorf("connect %s: %w", cfg.addr, err)
		}
		pool[i] = cn
	}

	// The ticker is armed after base is taken, so that it fires just after each due time, never
	// just before (which would hold a due request back for a whole period).
	tickets := make(chan int64, total)
	base := time.Now()
	tk, err := newTicker(max(interval, 20*time.Microsecond))
	if err != nil {
		return nil, err
	}
	defer tk.Stop()
	var lags []time.Duration
	var pacerErr error
	pacerDone := make(chan struct{})
	go func() {
		defer close(pacerDone)
		defer close(tickets)
		next := int64(0)
		for next < total {
			now := time.Since(base)
			due := min(int64(now/interval)+1, total)
			if due > next {
				lags = append(lags, now-time.Duration(next)*interval)
				for ; next < due; next++ {
					tickets <- next
				}
			}
			if next >= total {
				return
			}
			if err := tk.Wait(); err != nil {
				pacerErr = err
				return
			}
		}
	}()

	stats := make([]workerStats, cfg.conns)
	var wg sync.WaitGroup
	for w := range cfg.conns {
		wg.Go(func() {
			st := &stats[w]
			cn := pool[w]
			defer func() {
				if cn != nil {
					cn.c.Close()
				}
			}()
			for j := range tickets {
				due := time.Duration(j) * interval
				measured := j >= warmN
				if time.Since(base) > hardDeadline {
					if measured {
						st.dropped++
						st.lat = append(st.lat, hardDeadline-due)
					}
					continue
				}
				if cn == nil {
					var err error
					if cn, err = cfg.dial(); err != nil {
						if measured {
							st.errors++
							st.firstErr = cmpErr(st.firstErr, err)
						}
						continue
					}
				}
				keep, err := cn.roundTrip(cfg.req, cfg.timeout)
				done := time.Since(base)
				if !keep {
					cn.c.Close()
					cn = nil
				}
				if !measured {
					continue
				}
				if err != nil {
					st.errors++
					st.firstErr = cmpErr(st.firstErr, err)
					continue
				}
				st.completed++
				st.lat = append(st.lat, done-due)
				st.last = max(st.last, done)
			}
		})
	}
	wg.Wait()
	<-pacerDone
	if pacerErr != nil {
		return nil, fmt.Errorf("pacer: %w", pacerErr)
	}

	res := &result{
		TargetRPS: cfg.rate,
		Conns:     cfg.conns,
		DurationS: cfg.duration.Seconds(),
		Requests:  total - warmN,
	}
	var all []time.Duration
	var last time.Duration
	for i := range stats {
		st := &stats[i]
		all = append(all, st.lat...)
		res.Completed += st.completed
		res.Errors += st.errors
		res.Dropped += st.dropped
		last = max(last, st.last)
		if res.FirstError == "" && st.firstErr != nil {
			res.FirstError = st.firstErr.Error()
		}
	}
	window := max(last, scheduleEnd) - time.Duration(warmN)*interval
	if window > 0 {
		res.AchievedRPS = float64(res.Completed) / window.Seconds()
	}
	slices.Sort(all)
	us := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }
	res.P50us = us(percentile(all, 0.50))
	res.P90us = us(percentile(all, 0.90))
	res.P99us = us(percentile(all, 0.99))
	res.P999us = us(percentile(all, 0.999))
	if len(all) > 0 {
		res.MaxUs = us(all[len(all)-1])
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		res.MeanUs = us(sum / time.Duration(len(all)))
	}
	slices.Sort(lags)
	res.PacerLagP99us = us(percentile(lags, 0.99))
	if len(lags) > 0 {
		res.PacerLagMaxUs = us(lags[len(lags)-1])
	}
	res.Saturated = res.Dropped > 0 || res.AchievedRPS < 0.95*cfg.rate
	return res, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// percentile returns the q-quantile (0 < q <= 1) of sorted samples by the nearest-rank method:
// the smallest sample such that at least q of all samples are less than or equal to it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted))-1e-9)) - 1
	rank = min(max(rank, 0), len(sorted)-1)
	return sorted[rank]
}
