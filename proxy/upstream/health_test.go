package upstream

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// checkedBackend answers /healthz with 200 or 503 as told, and records the Host header.
type checkedBackend struct {
	*backend
	healthy atomic.Bool
	checks  atomic.Int64
	host    atomic.Value
}

func newCheckedBackend(t *testing.T, name string) *checkedBackend {
	b := &checkedBackend{backend: newBackend(t, name)}
	b.healthy.Store(true)
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			b.hits.Add(1)
			_, _ = w.Write([]byte(b.name))
			return
		}
		b.checks.Add(1)
		b.host.Store(r.Host)
		if !b.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	return b
}

func healthCheck(interval, unhealthyInterval time.Duration, checker func(*corev3.HealthCheck)) func(*clusterv3.Cluster) {
	return func(c *clusterv3.Cluster) {
		hc := &corev3.HealthCheck{
			Timeout:            durationpb.New(time.Second),
			Interval:           durationpb.New(interval),
			UnhealthyInterval:  durationpb.New(unhealthyInterval),
			UnhealthyThreshold: wrapperspb.UInt32(2),
			HealthyThreshold:   wrapperspb.UInt32(2),
		}
		checker(hc)
		c.HealthChecks = []*corev3.HealthCheck{hc}
	}
}

func httpHealthCheck(hc *corev3.HealthCheck) {
	hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{Path: "/healthz"}}
}

func tcpHealthCheck(hc *corev3.HealthCheck) {
	hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
}

// endpointStats returns the statistics of the endpoint at addr.
func endpointStats(t *testing.T, c *Cluster, addr string) EndpointStats {
	t.Helper()
	for _, e := range c.Stats().Endpoints {
		if e.Address == addr {
			return e
		}
	}
	t.Fatalf("no endpoint %s", addr)
	return EndpointStats{}
}

func TestActiveHTTPHealthCheck(t *testing.T) {
	a, b := newCheckedBackend(t, "a"), newCheckedBackend(t, "b")
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("checked", healthCheck(20*time.Millisecond, 20*time.Millisecond, httpHealthCheck)),
		assignment("checked", loc{eps: eps(a.addr(), b.addr())}))
	eventually(t, settle, "health checks run", func() bool { return a.checks.Load() > 1 && b.checks.Load() > 1 })
	if host := a.host.Load(); host != "checked" {
		t.Errorf("health check Host %q, want the cluster name", host)
	}

	// An unexpected status marks the endpoint down at once (the threshold is for
	// endpoints that do not answer).
	a.healthy.Store(false)
	eventually(t, settle, "a marked down", func() bool { return !endpointStats(t, c, a.addr()).ActiveHealthy })
	for range 10 {
		if _, body, _, err := get(t, c, nil); err != nil || body != "b" {
			t.Fatalf("got %q, %v while a is down", body, err)
		}
	}
	a.healthy.Store(true)
	eventually(t, settle, "a back up after healthy_threshold passes", func() bool { return endpointStats(t, c, a.addr()).ActiveHealthy })
	if s := c.Stats(); s.HealthChecksPassed == 0 || s.HealthChecksFailed == 0 {
		t.Errorf("checks passed %d, failed %d", s.HealthChecksPassed, s.HealthChecksFailed)
	}
}

func TestActiveTCPHealthCheck(t *testing.T) {
	up, down := newBackend(t, "up"), newBackend(t, "down")
	down.Close()
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("tcp", healthCheck(20*time.Millisecond, 20*time.Millisecond, tcpHealthCheck)),
		assignment("tcp", loc{eps: eps(up.addr(), down.addr())}))
	eventually(t, settle, "both first checks", func() bool {
		return !endpointStats(t, c, up.addr()).HealthCheckPending && !endpointStats(t, c, down.addr()).HealthCheckPending
	})
	if endpointStats(t, c, down.addr()).ActiveHealthy {
		t.Error("the closed endpoint was not marked down")
	}
	if !endpointStats(t, c, up.addr()).ActiveHealthy {
		t.Error("the listening endpoint was marked down")
	}
}

// TestHealthStateSurvivesUpdate marks an endpoint down, then changes the cluster's load
// balancing: the verdict stays (its next check is an hour away), and the check is not
// restarted. Removing an endpoint stops its checks. The healthy endpoint k, checked every
// 20ms, is the clock: waits count k's checks, not wall time, so a slow machine can neither
// fail the test nor hide a check that should not happen.
func TestHealthStateSurvivesUpdate(t *testing.T) {
	a, b, k := newCheckedBackend(t, "a"), newCheckedBackend(t, "b"), newCheckedBackend(t, "k")
	a.healthy.Store(false)
	hc := healthCheck(20*time.Millisecond, time.Hour, httpHealthCheck)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("web", hc), assignment("web", loc{eps: eps(a.addr(), b.addr(), k.addr())}))
	eventually(t, settle, "a's first check", func() bool { return !endpointStats(t, c, a.addr()).HealthCheckPending })
	if endpointStats(t, c, a.addr()).ActiveHealthy {
		t.Fatal("a passed its first check while failing it")
	}
	a.healthy.Store(true)
	// The check that marked a down has landed; the next one is an hour away.
	aChecks := a.checks.Load()
	kChecked := func(n int64) {
		t.Helper()
		from := k.checks.Load()
		eventually(t, settle, fmt.Sprintf("k checked %d more times", n), func() bool { return k.checks.Load() >= from+n })
	}

	install(t, m, edsCluster("web", hc, func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_RANDOM }),
		assignment("web", loc{eps: []lbEndpoint{{addr: a.addr(), weight: 3}, {addr: b.addr()}, {addr: k.addr()}}}))
	kChecked(3)
	if endpointStats(t, c, a.addr()).ActiveHealthy {
		t.Error("the update reset a's health check verdict")
	}
	if n := a.checks.Load() - aChecks; n != 0 {
		t.Errorf("the update restarted a's check: %d checks before its unhealthy interval ran out", n)
	}

	// Removing b, checked every 20ms like k, cancels its checker. That may have one check
	// under way (it runs one at a time), so at most one more reaches b.
	install(t, m, edsCluster("web", hc), assignment("web", loc{eps: eps(a.addr(), k.addr())}))
	bChecks := b.checks.Load()
	kChecked(5)
	if n := b.checks.Load() - bChecks; n > 1 {
		t.Errorf("a removed endpoint was checked %d more times", n)
	}
}

// TestHealthCheckUnejects: a passing active check returns an endpoint that outlier
// detection ejected (Envoy's successful_active_health_check_uneject_host, on by default).
func TestHealthCheckUnejects(t *testing.T) {
	flaky := newCheckedBackend(t, "flaky")
	var failing atomic.Bool
	failing.Store(true)
	handler := flaky.Config.Handler
	flaky.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		handler.ServeHTTP(w, r)
	})
	steady := newBackend(t, "steady")
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("web", healthCheck(50*time.Millisecond, 50*time.Millisecond, httpHealthCheck), func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(1), MaxEjectionPercent: wrapperspb.UInt32(50)}
	}), assignment("web", loc{eps: eps(flaky.addr(), steady.addr())}))
	ejected := func() bool { return c.Stats().Endpoints[0].Ejected }
	for !ejected() {
		if _, _, _, err := get(t, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(false)
	eventually(t, settle, "a passing check unejects flaky", func() bool { return !ejected() })
}

// gatedBackend is a checkedBackend whose health checks wait until release is closed.
func gatedBackend(t *testing.T, name string) (*checkedBackend, func()) {
	b := newCheckedBackend(t, name)
	gate := make(chan struct{})
	handler := b.Config.Handler
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			<-gate
		}
		handler.ServeHTTP(w, r)
	})
	// Closed at the latest when the test ends, so that the server can shut down.
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return b, release
}

// TestNewEndpointPendingUntilFirstCheck: an endpoint added to a health-checked cluster takes no
// traffic until its first check (which runs at once, not an interval later) passes, while the
// endpoint already there keeps its verdict and takes every request. Its checks are an hour
// apart, so only first checks run, and the gated backend's first check waits for the test.
func TestNewEndpointPendingUntilFirstCheck(t *testing.T) {
	a := newCheckedBackend(t, "a")
	b, releaseB := gatedBackend(t, "b")
	hc := healthCheck(time.Hour, time.Hour, httpHealthCheck)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("web", hc), assignment("web", loc{eps: eps(a.addr())}))
	eventually(t, settle, "a's first check, without waiting an interval", func() bool { return !endpointStats(t, c, a.addr()).HealthCheckPending })
	if !endpointStats(t, c, a.addr()).ActiveHealthy {
		t.Fatal("a failed its first check")
	}

	install(t, m, edsCluster("web", hc), assignment("web", loc{eps: eps(a.addr(), b.addr())}))
	if !endpointStats(t, c, b.addr()).HealthCheckPending || endpointStats(t, c, b.addr()).ActiveHealthy {
		t.Fatal("the new endpoint b is trusted before its first check")
	}
	if endpointStats(t, c, a.addr()).HealthCheckPending || !endpointStats(t, c, a.addr()).ActiveHealthy {
		t.Error("the update reset a's verdict")
	}
	for range 20 {
		if _, body, _, err := get(t, c, nil); err != nil || body != "a" {
			t.Fatalf("got %q, %v while b waits for its first check", body, err)
		}
	}
	if n := b.hits.Load(); n != 0 {
		t.Errorf("b served %d requests before its first check", n)
	}
	if s := c.Stats(); s.Priorities[0].Panic {
		t.Error("a pending endpoint pushed the cluster into panic")
	}
	if n := a.checks.Load(); n != 1 {
		t.Errorf("a was checked %d times, want only its first check: the update restarted it", n)
	}

	releaseB()
	eventually(t, settle, "b's first check", func() bool { return !endpointStats(t, c, b.addr()).HealthCheckPending })
	if !endpointStats(t, c, b.addr()).ActiveHealthy {
		t.Fatal("b failed its first check")
	}
	// One passing check is enough for a new endpoint, although healthy_threshold is 2.
	served := map[string]int{}
	for range 50 {
		_, body, _, err := get(t, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		served[body]++
	}
	if served["a"] == 0 || served["b"] == 0 {
		t.Errorf("requests by endpoint %v, want both once b passed", served)
	}
}

// TestAllPendingFallsBack: a new cluster whose endpoints all wait for their first check
// serves on them (in panic, as a cluster without a healthy endpoint does) rather than failing
// every request; a new endpoint that fails its first check takes nothing once the others pass.
func TestAllPendingFallsBack(t *testing.T) {
	x, releaseX := gatedBackend(t, "x")
	y, releaseY := gatedBackend(t, "y")
	y.healthy.Store(false)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("web", healthCheck(time.Hour, time.Hour, httpHealthCheck)),
		assignment("web", loc{eps: eps(x.addr(), y.addr())}))
	served := map[string]int{}
	for range 50 {
		status, body, _, err := get(t, c, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("got %d %q, %v while every endpoint waits for its first check", status, body, err)
		}
		served[body]++
	}
	if served["x"] == 0 || served["y"] == 0 {
		t.Errorf("requests by endpoint %v, want both while all are pending", served)
	}
	if s := c.Stats(); !s.Priorities[0].Panic {
		t.Error("not in panic with every endpoint pending")
	}

	releaseY()
	eventually(t, settle, "y's first check", func() bool { return !endpointStats(t, c, y.addr()).HealthCheckPending })
	if endpointStats(t, c, y.addr()).ActiveHealthy {
		t.Fatal("y passed its first check while failing it")
	}
	releaseX()
	eventually(t, settle, "x's first check", func() bool { return !endpointStats(t, c, x.addr()).HealthCheckPending })
	before := y.hits.Load()
	for range 20 {
		if _, body, _, err := get(t, c, nil); err != nil || body != "x" {
			t.Fatalf("got %q, %v once x passed and y failed", body, err)
		}
	}
	if n := y.hits.Load() - before; n != 0 {
		t.Errorf("y served %d requests after failing its first check", n)
	}
}
