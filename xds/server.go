package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/translator/ir"
)

// ProxylessMetadataKey marks a proxyless gRPC client: a node whose bootstrap metadata has this
// key set to true (or "true") is served the API-listener variant of its node's configuration
// (see BuildProxyless) instead of the proxy's. An explicit key, as Istio does, rather than
// guessing from user_agent_name: the xDS client library a proxy uses does not decide what it
// is served.
const ProxylessMetadataKey = "PROXYLESS_GRPC"

// AddressesMetadataKey is the node metadata key under which a proxy advertises the addresses
// it is reachable at (a list of strings, or one string). They become its Gateway's
// status.addresses when the Gateway names none (see translator.WithProxyReports).
const AddressesMetadataKey = "strait.dev/addresses"

// proxylessSuffix keys a node's proxyless variant in the snapshot cache. Node ids are
// "<cluster>/<namespace>/<gateway>", DNS labels all, so they never contain '#'.
const proxylessSuffix = "#proxyless-grpc"

// shutdownGrace bounds how long Start waits for in-flight responses when its context ends.
const shutdownGrace = 5 * time.Second

// Server serves every proxy node its snapshot over ADS (SotW and delta) and over each
// per-type discovery service (LDS, RDS, CDS, EDS, SDS). It is a runner: Start serves until
// its context ends; Update and UpdateEndpoints publish new configuration at any time, before
// Start included.
type Server struct {
	addr      string
	log       *slog.Logger
	metrics   *metrics
	callbacks *callbacks
	cache     cache.SnapshotCache
	// auth, set by WithTLS, authenticates proxies; nil serves plaintext.
	auth *authenticator

	listenMu sync.Mutex
	listener net.Listener

	// mu serializes updates; nodes and removed are the published state.
	mu    sync.Mutex
	nodes map[string]*nodeState
	// removed are nodes whose Gateway is gone, still served an empty snapshot because a
	// client was connected when they vanished (see Update).
	removed map[string]bool
}

// nodeState is what was last published for a node.
type nodeState struct {
	envoy, proxyless variant
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// NewServer returns a Server that will listen on addr ("host:port", or "unix:///path") and
// registers its metrics with reg (nil registers none). Registering twice with one registry
// panics, as with every Prometheus collector.
func NewServer(addr string, reg prometheus.Registerer, opts ...Option) *Server {
	s := &Server{
		addr:    addr,
		log:     slog.Default(),
		nodes:   make(map[string]*nodeState),
		removed: make(map[string]bool),
	}
	for _, opt := range opts {
		opt(s)
	}
	m, err := newMetrics(reg)
	if err != nil {
		panic(fmt.Sprintf("xds: register metrics: %v", err))
	}
	s.metrics = m
	s.callbacks = newCallbacks(s.log, m)
	// Not in ADS mode: that mode answers only requests naming every resource of a type,
	// and a gRPC client names just the listener and clusters it wants.
	s.cache = cache.NewSnapshotCache(false, nodeHash{}, cacheLogger{s.log})
	return s
}

// Name names the runner in logs.
func (s *Server) Name() string { return "xds" }

// Listen binds the server's address. Start calls it; calling it first makes Addr known
// before serving, which a test binding port 0 needs.
func (s *Server) Listen() error {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if s.listener != nil {
		return nil
	}
	if err := s.prepareTransport(); err != nil {
		return err
	}
	network, address := "tcp", s.addr
	if path, ok := strings.CutPrefix(s.addr, "unix://"); ok {
		network, address = "unix", path
	}
	lis, err := net.Listen(network, address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.listener = lis
	return nil
}

// Addr is the address the server listens on, "" before Listen.
func (s *Server) Addr() string {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Start serves xDS until ctx ends, then stops gracefully.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.listenMu.Lock()
	lis := s.listener
	s.listenMu.Unlock()
	gs := grpc.NewServer(append(s.tlsOptions(),
		// ADS streams live as long as the proxy: keep them alive across idle NATs and let
		// clients ping as often as Envoy and grpc-go do.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)...)
	// The xDS server ends every stream when ctx ends, so the graceful stop below returns.
	xs := serverv3.NewServer(ctx, s.cache, s.streamCallbacks())
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xs)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, xs)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, xs)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, xs)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, xs)
	secretservice.RegisterSecretDiscoveryServiceServer(gs, xs)

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	s.log.Info("serving xds", "address", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve xds: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		gs.Stop()
	}
	// Serve returns nil once stopped; anything else is a real failure.
	return <-errc
}

// Update publishes the complete configuration: a snapshot pair (proxies and proxyless gRPC
// clients) for every proxy, after building and validating it and checking it is consistent.
// A proxy that fails keeps its last good snapshot and its error is logged and returned, joined
// with the others; the rest are published regardless.
//
// A node absent from proxies has lost its Gateway. Connected clients are sent an empty
// configuration, so proxies drop its listeners; the node is forgotten once no client is
// connected. (Forgetting it at once would also drop the connected clients' watches, and a
// Gateway recreated later would never reach them.)
func (s *Server) Update(proxies []*ir.Proxy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	seen := make(map[string]bool, len(proxies))
	for _, p := range proxies {
		if seen[p.Node] {
			errs = append(errs, fmt.Errorf("node %q: listed twice", p.Node))
			continue
		}
		seen[p.Node] = true
		start := time.Now()
		if err := s.updateNode(p); err != nil {
			errs = append(errs, s.failed(updateFull, p.Node, err))
			continue
		}
		s.metrics.buildDuration.WithLabelValues(updateFull).Observe(time.Since(start).Seconds())
	}
	for node := range s.nodes {
		if !seen[node] {
			errs = append(errs, s.remove(node))
		}
	}
	s.forgetRemoved()
	return errors.Join(errs...)
}

// UpdateEndpoints is the endpoint fast path: for each proxy, it rebuilds only the
// ClusterLoadAssignments and publishes them with the node's previous listeners, routes,
// clusters and secrets, whose versions therefore stay and which no client is sent again. The
// set of backends must be the one last published by Update; a change to it needs Update.
// Nodes not among proxies are left as they are.
func (s *Server) UpdateEndpoints(proxies []*ir.Proxy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range proxies {
		start := time.Now()
		changed, err := s.updateNodeEndpoints(p)
		if err != nil {
			errs = append(errs, s.failed(updateEndpoints, p.Node, err))
			continue
		}
		if changed {
			s.metrics.buildDuration.WithLabelValues(updateEndpoints).Observe(time.Since(start).Seconds())
		}
	}
	return errors.Join(errs...)
}

func (s *Server) failed(kind, node string, err error) error {
	s.metrics.buildErrors.WithLabelValues(kind).Inc()
	s.log.Error("xds update failed; the node keeps its last good snapshot", "kind", kind, "node", node, "error", err)
	return fmt.Errorf("node %q: %w", node, err)
}

func (s *Server) updateNode(p *ir.Proxy) error {
	envoy, err := Build(p)
	if err != nil {
		return err
	}
	proxyless, err := BuildProxyless(p, envoy)
	if err != nil {
		return err
	}
	h := hasher{}
	var next nodeState
	if next.envoy, err = newVariant(envoy, h); err != nil {
		return err
	}
	if next.proxyless, err = newVariant(proxyless, h); err != nil {
		return err
	}
	return s.publish(p.Node, &next)
}

func (s *Server) updateNodeEndpoints(p *ir.Proxy) (bool, error) {
	prev, ok := s.nodes[p.Node]
	if !ok {
		return false, errors.New("no configuration published yet; endpoints need a full Update first")
	}
	endpoints := make([]*endpointv3.ClusterLoadAssignment, 0, len(p.Backends))
	for _, be := range p.Backends {
		endpoints = append(endpoints, clusterLoadAssignment(be))
	}
	if err := sortAndValidate("endpoints", endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName); err != nil {
		return false, err
	}
	h := hasher{}
	next := *prev
	var err error
	if next.envoy[types.Endpoint], err = newTypeSet(endpoints, h); err != nil {
		return false, err
	}
	if next.envoy[types.Endpoint].version == prev.envoy[types.Endpoint].version {
		return false, nil
	}
	// The proxyless variant serves the endpoints of its own clusters only.
	proxylessClusters := prev.proxyless[types.Cluster].versions
	leftOut := make(map[string]bool)
	for _, cla := range endpoints {
		if _, ok := proxylessClusters[cla.GetClusterName()]; !ok {
			leftOut[cla.GetClusterName()] = true
		}
	}
	if next.proxyless[types.Endpoint], err = newTypeSet(grpcEndpoints(endpoints, leftOut), h); err != nil {
		return false, err
	}
	return true, s.publish(p.Node, &next)
}

// publish checks and sets both snapshots of a node. Consistency catches endpoints that do not
// match the clusters (a backend added without a full Update) and route tables no listener
// references.
func (s *Server) publish(node string, next *nodeState) error {
	envoy, proxyless := next.envoy.snapshot(), next.proxyless.snapshot()
	if err := envoy.Consistent(); err != nil {
		return fmt.Errorf("inconsistent snapshot: %w", err)
	}
	if err := next.proxyless.consistentProxyless(); err != nil {
		return fmt.Errorf("inconsistent proxyless snapshot: %w", err)
	}
	if err := s.cache.SetSnapshot(context.Background(), node, envoy); err != nil {
		return fmt.Errorf("set snapshot: %w", err)
	}
	if err := s.cache.SetSnapshot(context.Background(), node+proxylessSuffix, proxyless); err != nil {
		return fmt.Errorf("set proxyless snapshot: %w", err)
	}
	prev := s.nodes[node]
	for _, t := range servedTypes {
		if prev == nil || prev.envoy[t.typ].version != next.envoy[t.typ].version {
			s.metrics.typeUpdates.WithLabelValues(typeLabel(t.url)).Inc()
		}
	}
	s.nodes[node] = next
	delete(s.removed, node)
	return nil
}

// remove serves a vanished node an empty configuration until forgetRemoved forgets it.
func (s *Server) remove(node string) error {
	var empty variant
	h := hasher{}
	for _, t := range servedTypes {
		ts, err := newTypeSet([]types.Resource{}, h)
		if err != nil {
			return fmt.Errorf("node %q: %w", node, err)
		}
		empty[t.typ] = ts
	}
	snap := empty.snapshot()
	for _, key := range []string{node, node + proxylessSuffix} {
		if err := s.cache.SetSnapshot(context.Background(), key, snap); err != nil {
			return fmt.Errorf("node %q: clear snapshot: %w", node, err)
		}
	}
	delete(s.nodes, node)
	s.removed[node] = true
	s.log.Info("xds node removed", "node", node)
	return nil
}

// forgetRemoved drops the removed nodes that no client is connected as. (The cache's own
// watch count cannot tell: right after the empty configuration is pushed, a connected client
// has no open watch until it acknowledges.)
func (s *Server) forgetRemoved() {
	for node := range s.removed {
		if !s.callbacks.connected(node) {
			s.cache.ClearSnapshot(node)
			s.cache.ClearSnapshot(node + proxylessSuffix)
			delete(s.removed, node)
		}
	}
}

// ProxyReport summarizes what the proxies connected as node report: how many there are, how
// many run the node's current listeners, their advertised addresses, and a rejection of the
// current listeners. Proxyless gRPC clients do not count.
func (s *Server) ProxyReport(node string) translator.ProxyReport {
	s.mu.Lock()
	var listeners string
	if n, ok := s.nodes[node]; ok {
		listeners = n.envoy[types.Listener].version
	}
	s.mu.Unlock()
	return s.callbacks.report(node, listeners)
}

// ProxyReports returns the report of every node with a proxy connected.
func (s *Server) ProxyReports() map[string]translator.ProxyReport {
	out := make(map[string]translator.ProxyReport)
	for _, node := range s.callbacks.proxyNodes() {
		out[node] = s.ProxyReport(node)
	}
	return out
}

// ProxyChanges receives a value after what some node's proxies report changes: a proxy
// connects or disconnects, or accepts or rejects listeners. Changes coalesce: one value may
// stand for many; read ProxyReport after each.
func (s *Server) ProxyChanges() <-chan struct{} { return s.callbacks.changes }

// Snapshot returns the snapshot served to the proxies of node.
func (s *Server) Snapshot(node string) (*cache.Snapshot, bool) { return s.snapshot(node) }

// ProxylessSnapshot returns the snapshot served to the proxyless gRPC clients of node.
func (s *Server) ProxylessSnapshot(node string) (*cache.Snapshot, bool) {
	return s.snapshot(node + proxylessSuffix)
}

func (s *Server) snapshot(key string) (*cache.Snapshot, bool) {
	snap, err := s.cache.GetSnapshot(key)
	if err != nil {
		return nil, false
	}
	out, ok := snap.(*cache.Snapshot)
	return out, ok
}

// nodeHash keys the snapshot cache: a proxy by its node id, a proxyless gRPC client by its
// node id and proxylessSuffix.
type nodeHash struct{}

// ID implements cache.NodeHash.
func (nodeHash) ID(node *corev3.Node) string {
	if isProxyless(node) {
		return node.GetId() + proxylessSuffix
	}
	return node.GetId()
}

// cacheLogger logs go-control-plane's messages with slog. The library logs every watch at
// info level, which is debug detail for Strait.
type cacheLogger struct{ log *slog.Logger }

// Debugf implements go-control-plane's log.Logger.
func (l cacheLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args) }

// Infof implements go-control-plane's log.Logger.
func (l cacheLogger) Infof(format string, args ...any) { l.logf(slog.LevelDebug, format, args) }

// Warnf implements go-control-plane's log.Logger.
func (l cacheLogger) Warnf(format string, args ...any) { l.logf(slog.LevelWarn, format, args) }

// Errorf implements go-control-plane's log.Logger.
func (l cacheLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }

func (l cacheLogger) logf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "go-control-plane")
	}
}
