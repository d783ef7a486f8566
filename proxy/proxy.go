// Package proxy is Strait's edge proxy: it consumes the xDS a Strait control plane serves for
// one Gateway and carries that Gateway's traffic.
//
// The configuration (listeners, route tables, upstream clusters) is compiled once per xDS
// update into immutable values and swapped atomically; a configuration the proxy cannot
// honor is rejected as a whole (NACK) and the last good one stays in force.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/proxy/upstream"
	"github.com/strait-gw/strait/proxy/xdsclient"
	"github.com/strait-gw/strait/xds"
)

// Defaults for Options left zero.
const (
	DefaultDrainTimeout   = 30 * time.Second
	DefaultMaxConnections = 100_000
)

// retireGrace is how long clusters removed by a configuration stay reachable after the new
// route tables are in place.
const retireGrace = time.Second

// Options configure a Proxy.
type Options struct {
	// XDS is the control plane's address, "host:port" or "unix:///path".
	XDS string
	// XDSCredentials secure the xDS connection (see xdsclient.Options.Credentials).
	XDSCredentials credentials.TransportCredentials
	// Node is the proxy's node id, "<cluster>/<namespace>/<gateway>".
	Node string
	// Addresses are the addresses clients reach this proxy at (a pod IP, a load balancer's),
	// advertised to the control plane for the Gateway's status.addresses.
	Addresses []string
	// DrainTimeout bounds how long a stopping proxy waits for requests in flight.
	DrainTimeout time.Duration
	// MaxConnections bounds the downstream connections open at once.
	MaxConnections int64
	// AccessLog, if set, receives one JSON line per request.
	AccessLog *slog.Logger
	Logger    *slog.Logger
	// Registerer receives the proxy's metrics; nil for none.
	Registerer prometheus.Registerer
}

// Proxy serves one Gateway's traffic with the configuration its xDS client receives.
type Proxy struct {
	opts        Options
	log         *slog.Logger
	metrics     *metrics
	upstreams   *upstream.Manager
	connections connLimiter
	xds         *xdsclient.Client

	state atomic.Pointer[state]
	// ready is closed once the first configuration is in force and its endpoints have their
	// first health check verdicts.
	ready     chan struct{}
	readyOnce sync.Once

	// mu serializes configuration changes; listeners is the bound sockets by listener name.
	mu        sync.Mutex
	listeners map[string]*boundListener
}

// state is one configuration in force. It is never modified once stored.
type state struct {
	tables    map[string]*router.Table
	listeners map[string]*listenerConfig
	resources *xds.Resources
}

// New returns a proxy; Start runs it.
func New(opts Options) *Proxy {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{
		opts:      opts,
		log:       opts.Logger.With("node", opts.Node),
		upstreams: upstream.NewManager(upstream.Options{Logger: opts.Logger, Registerer: opts.Registerer}),
		ready:     make(chan struct{}),
		listeners: map[string]*boundListener{},
	}
	p.connections.max = opts.MaxConnections
	p.metrics = newMetrics(opts.Registerer, func() float64 { return float64(p.connections.open.Load()) })
	p.state.Store(&state{tables: map[string]*router.Table{}, listeners: map[string]*listenerConfig{}})
	p.xds = xdsclient.New(xdsclient.Options{Server: opts.XDS, Credentials: opts.XDSCredentials, Node: opts.Node, Addresses: opts.Addresses, Apply: p.Apply, Logger: opts.Logger})
	return p
}

// addressError is a listener address the proxy cannot bind. Its gRPC code,
// FailedPrecondition, becomes the NACK's, which the control plane reports as an address the
// Gateway cannot use (AddressNotUsable) rather than as invalid configuration.
type addressError struct{ err error }

func (e addressError) Error() string { return e.err.Error() }
func (e addressError) Unwrap() error { return e.err }

// GRPCStatus gives the error its gRPC code (see status.Code).
func (e addressError) GRPCStatus() *status.Status {
	return status.New(codes.FailedPrecondition, e.err.Error())
}

// Name names the runner in logs.
func (p *Proxy) Name() string { return "proxy " + p.opts.Node }

// Ready is closed once the first configuration is in force and the endpoints of its
// health-checked clusters have their first verdicts (see warmUp).
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Start runs the xDS client and serves until ctx ends, then drains: it stops accepting, lets
// requests in flight finish within the drain timeout, and closes what is left.
func (p *Proxy) Start(ctx context.Context) error {
	err := p.xds.Start(ctx)
	drainCtx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
	defer cancel()
	p.mu.Lock()
	var wg sync.WaitGroup
	for name, bl := range p.listeners {
		wg.Go(func() { bl.shutdown(drainCtx) })
		delete(p.listeners, name)
	}
	p.mu.Unlock()
	wg.Wait()
	p.upstreams.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Apply compiles and installs a complete configuration. An error leaves the configuration
// in force untouched and is the reason of the NACK.
func (p *Proxy) Apply(res *xds.Resources) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	secrets := make(map[string]*tlsv3.Secret, len(res.Secrets))
	for _, s := range res.Secrets {
		secrets[s.GetName()] = s
	}
	next := &state{
		tables:    make(map[string]*router.Table, len(res.Routes)),
		listeners: make(map[string]*listenerConfig, len(res.Listeners)),
		resources: res,
	}
	for _, l := range res.Listeners {
		lc, err := compileListener(l, secrets)
		if err != nil {
			return fmt.Errorf("listener %q: %w", l.GetName(), err)
		}
		next.listeners[lc.name] = lc
	}
	for _, rc := range res.Routes {
		t, err := router.Compile(rc)
		if err != nil {
			return fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
		}
		next.tables[rc.GetName()] = t
	}

	// Bind new sockets before anything changes, so that a port in use rejects the update.
	bound := map[string]*boundListener{}
	for name, lc := range next.listeners {
		if old := p.listeners[name]; old != nil && old.cfg.Load().addr == lc.addr {
			continue
		}
		bl, err := p.bind(lc)
		if err != nil {
			for _, b := range bound {
				_ = b.ln.Close()
			}
			return addressError{fmt.Errorf("listener %q: %w", name, err)}
		}
		bound[name] = bl
	}
	// Make before break: the new clusters come first, the route tables next, and removed
	// clusters go last, so that a request routed by the previous tables still finds its
	// cluster.
	retire, err := p.upstreams.Stage(res.Clusters, res.Endpoints, res.Secrets)
	if err != nil {
		for _, b := range bound {
			_ = b.ln.Close()
		}
		return err
	}

	p.state.Store(next)
	// A request that read the previous tables just before the swap looks its cluster up
	// moments later: give it that moment before the removed clusters close.
	time.AfterFunc(retireGrace, retire)
	for name, lc := range next.listeners {
		if bl := bound[name]; bl != nil {
			if old := p.listeners[name]; old != nil {
				go p.drain(old)
			}
			p.listeners[name] = bl
			continue
		}
		p.listeners[name].cfg.Store(lc)
	}
	for name, bl := range maps.Clone(p.listeners) {
		if next.listeners[name] == nil {
			delete(p.listeners, name)
			go p.drain(bl)
		}
	}
	p.readyOnce.Do(func() { go p.warmUp() })
	p.metrics.configUpdates.Inc()
	return nil
}

// warmUpPoll is how often warmUp looks at the first health check round.
const warmUpPoll = 20 * time.Millisecond

// warmUp closes ready once the endpoints of the first configuration have their first
// health check verdicts (at once without health checks). Each check is bounded by its
// timeout, so this ends.
func (p *Proxy) warmUp() {
	for p.upstreams.Warming() > 0 {
		time.Sleep(warmUpPoll)
	}
	close(p.ready)
}

// drain shuts down a listener that a new configuration removed or moved, letting its
// requests in flight finish within the drain timeout.
func (p *Proxy) drain(bl *boundListener) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
	defer cancel()
	bl.shutdown(ctx)
}

// Config returns the configuration in force, for /debug/config.
func (p *Proxy) Config() *xds.Resources { return p.state.Load().resources }
