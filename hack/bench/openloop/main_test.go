package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.99: 99, 0.999: 100, 1: 100, 0.001: 1} {
		if got := percentile(s, q); got != want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
}

// A server that stalls once for 300ms: with one connection, every request due during the stall
// waits behind it, and an open-loop generator must charge each of them from its due time (a
// closed-loop one would record a single slow request).
func TestCoordinatedOmissionCorrection(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 100 {
			time.Sleep(300 * time.Millisecond)
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()

	c := config{rate: 500, duration: time.Second, drain: 2 * time.Second, timeout: 2 * time.Second, conns: 1}
	if err := c.fromURL(srv.URL + "/"); err != nil {
		t.Fatal(err)
	}
	res, err := run(&c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 500 || res.Completed != 500 || res.Errors != 0 || res.Dropped != 0 {
		t.Fatalf("requests %d completed %d errors %d dropped %d (first error %q), want 500 completed",
			res.Requests, res.Completed, res.Errors, res.Dropped, res.FirstError)
	}
	// About 150 of the 500 requests were due during the stall, with latencies spread from
	// 300ms down to nothing: p90 is well above a healthy round trip, and max near the stall.
	if res.MaxUs < 250_000 {
		t.Errorf("max %.0fus, want about 300ms", res.MaxUs)
	}
	if res.P90us < 50_000 {
		t.Errorf("p90 %.0fus: the requests queued behind the stall were not charged from their due time", res.P90us)
	}
	// The queue drains long before the schedule ends (a loose bound: CI machines are busy).
	if res.AchievedRPS < 300 {
		t.Errorf("achieved %.0f rps, want about 500", res.AchievedRPS)
	}
}
