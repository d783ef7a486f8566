package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
)

// healthSpec is a cluster's active health check.
type healthSpec struct {
	// proto is the source, which tells whether an update changed the check.
	proto                                *corev3.HealthCheck
	timeout, interval, unhealthyInterval time.Duration
	initialJitter, intervalJitter        time.Duration
	intervalJitterPercent                uint32
	unhealthyThreshold, healthyThreshold uint32
	reuseConnection                      bool
	http                                 *httpCheck // nil: TCP connect check
}

// httpCheck is an HTTP health check: a request whose status must be in one of the ranges.
type httpCheck struct {
	host, path, method string
	statuses           []*typev3.Int64Range // [start, end)
	http2              bool
}

func compileHealthChecks(hcs []*corev3.HealthCheck) (*healthSpec, error) {
	switch len(hcs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errors.New("at most one health check is supported")
	}
	hc := hcs[0]
	if err := onlyFields(hc, "timeout", "interval", "initial_jitter", "interval_jitter", "interval_jitter_percent",
		"unhealthy_threshold", "healthy_threshold", "reuse_connection", "http_health_check", "tcp_health_check",
		"unhealthy_interval"); err != nil {
		return nil, err
	}
	if hc.GetTimeout() == nil || hc.GetInterval() == nil || hc.GetUnhealthyThreshold() == nil || hc.GetHealthyThreshold() == nil {
		return nil, errors.New("timeout, interval, unhealthy_threshold and healthy_threshold are required")
	}
	s := &healthSpec{
		proto:                 hc,
		intervalJitterPercent: hc.GetIntervalJitterPercent(),
		unhealthyThreshold:    max(1, hc.GetUnhealthyThreshold().GetValue()),
		healthyThreshold:      max(1, hc.GetHealthyThreshold().GetValue()),
		reuseConnection:       hc.GetReuseConnection() == nil || hc.GetReuseConnection().GetValue(),
	}
	var err error
	if s.timeout, err = duration(hc.GetTimeout(), 0, "timeout"); err != nil {
		return nil, err
	}
	if s.interval, err = duration(hc.GetInterval(), 0, "interval"); err != nil {
		return nil, err
	}
	if s.unhealthyInterval, err = duration(hc.GetUnhealthyInterval(), s.interval, "unhealthy_interval"); err != nil {
		return nil, err
	}
	if hc.GetInitialJitter() != nil {
		s.initialJitter = hc.GetInitialJitter().AsDuration()
	}
	if hc.GetIntervalJitter() != nil {
		s.intervalJitter = hc.GetIntervalJitter().AsDuration()
	}
	switch {
	case hc.GetHttpHealthCheck() != nil:
		if s.http, err = compileHTTPCheck(hc.GetHttpHealthCheck()); err != nil {
			return nil, fmt.Errorf("http_health_check: %w", err)
		}
	case hc.GetTcpHealthCheck() != nil:
		if err := onlyFields(hc.GetTcpHealthCheck()); err != nil {
			return nil, fmt.Errorf("tcp_health_check (connect only): %w", err)
		}
	default:
		return nil, errors.New("want an HTTP or TCP health check")
	}
	return s, nil
}

func compileHTTPCheck(h *corev3.HealthCheck_HttpHealthCheck) (*httpCheck, error) {
	if err := onlyFields(h, "host", "path", "expected_statuses", "codec_client_type", "method"); err != nil {
		return nil, err
	}
	if h.GetPath() == "" || h.GetPath()[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", h.GetPath())
	}
	c := &httpCheck{host: h.GetHost(), path: h.GetPath(), method: http.MethodGet, statuses: h.GetExpectedStatuses()}
	if len(c.statuses) == 0 {
		c.statuses = []*typev3.Int64Range{{Start: 200, End: 201}}
	}
	for _, r := range c.statuses {
		if r.GetStart() < 100 || r.GetEnd() > 600 || r.GetStart() >= r.GetEnd() {
			return nil, fmt.Errorf("expected status range [%d, %d) is not within [100, 600)", r.GetStart(), r.GetEnd())
		}
	}
	switch h.GetMethod() {
	case corev3.RequestMethod_METHOD_UNSPECIFIED:
	case corev3.RequestMethod_CONNECT:
		return nil, errors.New("method CONNECT cannot check health")
	default:
		c.method = h.GetMethod().String()
	}
	switch h.GetCodecClientType() {
	case typev3.CodecClientType_HTTP1:
	case typev3.CodecClientType_HTTP2:
		c.http2 = true
	default:
		return nil, fmt.Errorf("codec %s is not supported", h.GetCodecClientType())
	}
	return c, nil
}

// sameCheck reports whether two specs run the same check.
func sameCheck(a, b *healthSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return proto.Equal(a.proto, b.proto)
}

// checkResult is the outcome of one health check.
type checkResult uint8

const (
	checkPassed checkResult = iota
	// checkFailed counts towards the unhealthy threshold (no answer, or a timeout).
	checkFailed
	// checkFailedNow marks the endpoint unhealthy at once: it answered, with a status the
	// check does not expect (as in Envoy, the threshold is for endpoints that don't answer).
	checkFailedNow
)

// checker runs the active health checks of one cluster configuration.
type checker struct {
	spec   *healthSpec
	host   string // Host header of HTTP checks
	scheme string
	dial   func(ctx context.Context, addr string) (net.Conn, error)
	rt     *http.Transport // HTTP checks only
}

// newChecker prepares checks for cluster spec cs, whose health spec is not nil; dial opens
// plain TCP connections.
func newChecker(cs *clusterSpec, dial func(ctx context.Context, addr string) (net.Conn, error)) *checker {
	ck := &checker{spec: cs.health, host: cs.name, dial: dial}
	h := cs.health.http
	if h == nil {
		return ck
	}
	if h.host != "" {
		ck.host = h.host
	}
	// Checks speak their own codec (HTTP/1.1 unless configured), over the cluster's TLS.
	o := cs.transport
	o.http2 = h.http2
	cfg := cs.tls
	if cfg != nil && h.http2 != cs.transport.http2 {
		cfg = cfg.Clone()
		cfg.NextProtos = nil
		if h.http2 {
			cfg.NextProtos = []string{"h2"}
		}
	}
	t := newHTTPTransport(o, cfg, dial)
	t.rt.DisableKeepAlives = !cs.health.reuseConnection
	t.rt.MaxIdleConns = 0
	t.rt.MaxIdleConnsPerHost = 1
	// Connections to removed endpoints close by themselves; live ones are reused.
	t.rt.IdleConnTimeout = 2*max(cs.health.interval, cs.health.unhealthyInterval) + cs.health.intervalJitter
	ck.rt, ck.scheme = t.rt, t.scheme
	return ck
}

// check probes addr once.
func (ck *checker) check(ctx context.Context, addr string) checkResult {
	ctx, cancel := context.WithTimeout(ctx, ck.spec.timeout)
	defer cancel()
	if ck.rt == nil {
		conn, err := ck.dial(ctx, addr)
		if err != nil {
			return checkFailed
		}
		_ = conn.Close()
		return checkPassed
	}
	req, err := http.NewRequestWithContext(ctx, ck.spec.http.method, ck.scheme+"://"+addr+ck.spec.http.path, nil)
	if err != nil {
		return checkFailed
	}
	req.Host = ck.host
	req.Header.Set("User-Agent", "strait-health-check")
	resp, err := ck.rt.RoundTrip(req)
	if err != nil {
		return checkFailed
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	for _, r := range ck.spec.http.statuses {
		if int64(resp.StatusCode) >= r.GetStart() && int64(resp.StatusCode) < r.GetEnd() {
			return checkPassed
		}
	}
	return checkFailedNow
}

// wait returns the time until the next check of an endpoint that is healthy or not.
func (ck *checker) wait(healthy bool) time.Duration {
	base := ck.spec.interval
	if !healthy {
		base = ck.spec.unhealthyInterval
	}
	d := base
	if j := ck.spec.intervalJitter; j > 0 {
		d += randN(j)
	}
	if p := ck.spec.intervalJitterPercent; p > 0 {
		d += randN(base*time.Duration(p)/100 + 1)
	}
	return d
}

// run checks ep until ctx ends, and reports verdict changes to c.
func (ck *checker) run(ctx context.Context, c *Cluster, ep *Endpoint, addr string) {
	if ck.spec.initialJitter > 0 && !sleep(ctx, randN(ck.spec.initialJitter)) {
		return
	}
	var successes, failures uint32
	for {
		res := ck.check(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		healthy := ep.activeHealthy.Load()
		// The first check of a new endpoint decides at once, either way, as in Envoy: the
		// thresholds are for changes of a verdict, and a new endpoint has none yet.
		first := ep.checkPending.Load()
		if res == checkPassed {
			c.stats.checksPassed.Add(1)
			successes, failures = successes+1, 0
			if !healthy && (first || successes >= ck.spec.healthyThreshold) {
				healthy = true
				c.setActiveHealth(ctx, ep, true)
			}
			if healthy {
				c.healthCheckPassed(ctx, ep)
			}
		} else {
			c.stats.checksFailed.Add(1)
			successes, failures = 0, failures+1
			if first || (healthy && (res == checkFailedNow || failures >= ck.spec.unhealthyThreshold)) {
				healthy = false
				c.setActiveHealth(ctx, ep, false)
			}
		}
		if !sleep(ctx, ck.wait(healthy)) {
			return
		}
	}
}

// sleep waits d unless ctx ends first, and reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
