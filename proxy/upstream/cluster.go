package upstream

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-gw/strait/proxy/internal/sock"
)

// Cluster is an upstream cluster: its endpoints with their health, a load balancer, circuit
// breakers and a connection pool. It keeps its identity across updates that keep its name,
// so a compiled route may hold on to it; an update that removes it closes it.
type Cluster struct {
	name   string
	log    *slog.Logger
	dialer Dialer
	// wg tracks the cluster's goroutines (health checks, outlier detection); the manager
	// waits for them on Close.
	wg *sync.WaitGroup

	// The request path reads only these atomics.
	cfg  atomic.Pointer[clusterConfig] // nil once closed
	snap atomic.Pointer[snapshot]

	requests    counter // requests in flight (max_requests)
	slots       slots   // HTTP/1.1 connections in use and pending requests
	connections counter // open pool connections
	retries     counter // retries in flight (max_retries)
	tcp         tcpConns
	stats       clusterCounters

	// mu guards the rest, and serializes every change of membership or health.
	mu        sync.Mutex
	spec      *clusterSpec
	endpoints map[string]*Endpoint
	order     []*Endpoint // assignment order
	checker   *checker    // nil without active health checks
	// outlierPeriod is the period the outlier goroutine runs at; 0 when it is stopped.
	outlierPeriod time.Duration
	stopOutlier   context.CancelFunc
	ctx           context.Context // ends when the cluster closes
	cancel        context.CancelFunc
}

// clusterConfig is what a request needs of the current configuration.
type clusterConfig struct {
	spec      *clusterSpec
	transport *transport
}

// clusterCounters are a cluster's statistics.
type clusterCounters struct {
	// responses counts requests by status class (index 1-5) or, at 0, by failure to get
	// a response.
	responses         [6]atomic.Uint64
	noHealthy         atomic.Uint64
	connectFailures   atomic.Uint64
	connectRetries    atomic.Uint64
	overflow          overflow
	ejections         [ejectReasons]atomic.Uint64
	ejectionsOverflow atomic.Uint64
	checksPassed      atomic.Uint64
	checksFailed      atomic.Uint64
}

func newCluster(name string, log *slog.Logger, dialer Dialer, wg *sync.WaitGroup) *Cluster {
	c := &Cluster{name: name, log: log.With("cluster", name), dialer: dialer, wg: wg, endpoints: map[string]*Endpoint{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.name }

// apply installs a new configuration. Endpoints that stay keep their state; goroutines
// restart only where their configuration changed.
func (c *Cluster) apply(spec *clusterSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, oldCfg := c.spec, c.cfg.Load()
	var tr *transport
	if old != nil && old.transport == spec.transport {
		tr = oldCfg.transport
	} else {
		http2, maxConns := spec.transport.http2, spec.limits.connections
		tr = newHTTPTransport(spec.transport, spec.tls, func(ctx context.Context, addr string) (net.Conn, error) {
			return c.dialPooled(ctx, addr, http2, maxConns)
		})
	}
	c.spec = spec
	c.cfg.Store(&clusterConfig{spec: spec, transport: tr})
	if oldCfg != nil && oldCfg.transport != tr {
		oldCfg.transport.retire()
	}
	c.slots.setMax(spec.limits.connections)

	next := make(map[string]*Endpoint, len(spec.endpoints))
	order := make([]*Endpoint, 0, len(spec.endpoints))
	for _, es := range spec.endpoints {
		ep := c.endpoints[es.addr]
		if ep == nil {
			// As in Envoy, a new endpoint of a health-checked cluster is not trusted before
			// its first check, which runs at once; one without checks is healthy.
			ep = &Endpoint{addr: es.addr}
			ep.activeHealthy.Store(spec.health == nil)
			ep.checkPending.Store(spec.health != nil)
		}
		ep.spec = es
		next[es.addr] = ep
		order = append(order, ep)
	}
	for addr, ep := range c.endpoints {
		if next[addr] == nil {
			stopCheck(ep)
		}
	}
	c.endpoints, c.order = next, order

	c.applyHealthChecks(old, spec, oldCfg == nil || oldCfg.transport != tr)
	c.applyOutlier(spec)
	c.rebuildLocked()
}

// applyHealthChecks starts, restarts or stops active health checks. A changed check (or
// connection setup) restarts every endpoint's checks but keeps its verdict; removing
// health checks returns every endpoint to healthy.
func (c *Cluster) applyHealthChecks(old, spec *clusterSpec, transportChanged bool) {
	restart := old == nil || !sameCheck(old.health, spec.health) || (spec.health != nil && transportChanged)
	if restart {
		for _, ep := range c.order {
			stopCheck(ep)
		}
		if c.checker != nil && c.checker.rt != nil {
			c.checker.rt.CloseIdleConnections()
		}
		c.checker = nil
		if spec.health != nil {
			c.checker = newChecker(spec, c.dial)
		}
	}
	for _, ep := range c.order {
		if c.checker == nil {
			ep.activeHealthy.Store(true)
			ep.checkPending.Store(false)
			continue
		}
		if ep.stopCheck != nil && ep.checking != ep.spec.checkAddr {
			stopCheck(ep)
		}
		if ep.stopCheck == nil {
			c.startCheck(ep)
		}
	}
}

// startCheck runs ep's health checks in a goroutine until stopCheck.
func (c *Cluster) startCheck(ep *Endpoint) {
	ctx, cancel := context.WithCancel(c.ctx)
	ep.stopCheck, ep.checking = cancel, ep.spec.checkAddr
	ck, addr := c.checker, ep.spec.checkAddr
	c.wg.Go(func() { ck.run(ctx, c, ep, addr) })
}

func stopCheck(ep *Endpoint) {
	if ep.stopCheck != nil {
		ep.stopCheck()
		ep.stopCheck, ep.checking = nil, ""
	}
}

// applyOutlier (re)starts the outlier detection interval, or stops it and returns ejected
// endpoints when detection is off.
func (c *Cluster) applyOutlier(spec *clusterSpec) {
	period := time.Duration(0)
	if spec.outlier != nil {
		period = spec.outlier.interval
	}
	if period == c.outlierPeriod {
		return
	}
	if c.stopOutlier != nil {
		c.stopOutlier()
		c.stopOutlier = nil
	}
	c.outlierPeriod = period
	if spec.outlier == nil {
		now := time.Now()
		for _, ep := range c.order {
			if ep.outlier.ejected.Load() {
				c.unejectLocked(ep, now, "outlier detection removed")
			}
		}
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	c.stopOutlier = cancel
	c.wg.Go(func() { c.runOutlier(ctx, period) })
}

// rebuildLocked recomputes the load-balancing snapshot from current membership and health.
//
// Endpoints waiting for their first health check take no traffic and do not count towards
// the panic threshold (Envoy's ignore_new_hosts_until_first_hc), so that a few new endpoints
// cannot push a healthy cluster into panic. When no other endpoint is usable (a new cluster,
// or every settled endpoint down), they count as unhealthy like the rest, and the panic
// threshold decides as it does for any cluster without a healthy endpoint.
func (c *Cluster) rebuildLocked() {
	if c.cfg.Load() == nil {
		return
	}
	eps := c.order
	if settled := settledEndpoints(eps); len(settled) < len(eps) && anyUsable(settled) {
		eps = settled
	}
	c.snap.Store(buildSnapshot(c.spec, eps))
}

// warming returns how many endpoints wait for their first health check.
func (c *Cluster) warming() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ep := range c.order {
		if ep.checkPending.Load() {
			n++
		}
	}
	return n
}

// settledEndpoints returns the endpoints that are not waiting for their first health check.
func settledEndpoints(eps []*Endpoint) []*Endpoint {
	out := make([]*Endpoint, 0, len(eps))
	for _, ep := range eps {
		if !ep.checkPending.Load() {
			out = append(out, ep)
		}
	}
	return out
}

func anyUsable(eps []*Endpoint) bool {
	for _, ep := range eps {
		if ep.availability() != edsUnhealthy {
			return true
		}
	}
	return false
}

// setActiveHealth records an active health check verdict that changed, or an endpoint's
// first verdict, unless the check that reached it has since been stopped.
func (c *Cluster) setActiveHealth(ctx context.Context, ep *Endpoint, healthy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	ep.checkPending.Store(false)
	ep.activeHealthy.Store(healthy)
	c.log.Info("endpoint health changed", "endpoint", ep.addr, "healthy", healthy, "by", "active health check")
	c.rebuildLocked()
}

// healthCheckPassed returns an ejected endpoint to service when an active health check
// vouches for it (Envoy's successful_active_health_check_uneject_host).
func (c *Cluster) healthCheckPassed(ctx context.Context, ep *Endpoint) {
	if !ep.outlier.ejected.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil || c.spec.outlier == nil || !c.spec.outlier.unejectOnHealthCheck || !ep.outlier.ejected.Load() {
		return
	}
	c.unejectLocked(ep, time.Now(), "active health check")
	c.rebuildLocked()
}

// close stops the cluster's goroutines and retires its pool; requests in flight finish.
func (c *Cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfg.Swap(nil)
	c.cancel()
	if cfg != nil {
		cfg.transport.retire()
	}
	if c.checker != nil && c.checker.rt != nil {
		c.checker.rt.CloseIdleConnections()
	}
}

// dial opens a plain TCP connection to an endpoint.
func (c *Cluster) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &connectError{err: err}
	}
	return conn, nil
}

// dialPooled opens a connection for the pool and counts it while open. HTTP/2 pools are
// bounded by max_connections here; HTTP/1.1 pools by the slots their requests hold.
func (c *Cluster) dialPooled(ctx context.Context, addr string, http2 bool, maxConns int64) (net.Conn, error) {
	if http2 {
		if !c.connections.tryAdd(maxConns) {
			c.stats.overflow.connections.Add(1)
			return nil, overflowError("max_connections", maxConns)
		}
	} else {
		c.connections.n.Add(1)
	}
	conn, err := c.dial(ctx, addr)
	if err != nil {
		c.connections.done()
		return nil, err
	}
	return &trackedConn{Conn: sock.Wrap(conn), open: &c.connections}, nil
}
