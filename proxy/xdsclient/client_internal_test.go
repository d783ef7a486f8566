package xdsclient

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strait-gw/strait/xds"
)

// TestBackoff checks that waits stay below a ceiling that doubles from InitialBackoff up to
// MaxBackoff.
func TestBackoff(t *testing.T) {
	c := New(Options{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for attempt, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceiling *= time.Millisecond
		for range 100 {
			if d := c.backoff(attempt); d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: waited %v, want [0, %v)", attempt, d, ceiling)
			}
		}
	}
	if d := c.backoff(1 << 20); d >= time.Second {
		t.Errorf("a late attempt waited %v, over MaxBackoff", d)
	}
}

// TestStartChecksOptions checks that Start refuses incomplete options, and plaintext to a
// control plane on another host.
func TestStartChecksOptions(t *testing.T) {
	apply := func(*xds.Resources) error { return nil }
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Node: "c1/default/gw", Apply: apply}, "no server address"},
		{Options{Server: "127.0.0.1:1", Apply: apply}, "no node id"},
		{Options{Server: "127.0.0.1:1", Node: "c1/default/gw"}, "no Apply"},
		{Options{Server: "192.0.2.1:18000", Node: "c1/default/gw", Apply: apply}, "needs Credentials"},
		{Options{Server: "xds.example.com:18000", Node: "c1/default/gw", Apply: apply}, "needs Credentials"},
	} {
		err := New(tc.opts).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	for _, addr := range []string{"127.0.0.1:18000", "[::1]:18000", "localhost:18000", "0.0.0.0:18000", "unix:///run/strait/xds.sock"} {
		if !local(addr) {
			t.Errorf("%s is not local", addr)
		}
	}
}
