package xdsclient_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/strait-gw/strait/proxy/xdsclient"
	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// wait bounds every wait for something that should happen.
const wait = 10 * time.Second

const node = "c1/default/gw"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testProxy is a Gateway with a plaintext HTTP port and an HTTPS port (a certificate over
// SDS), each with its route table, and one backend with one endpoint at endpoint:8080.
func testProxy(endpoint string) *ir.Proxy {
	routes := func(name string) *ir.RouteTable {
		return &ir.RouteTable{Name: name, VirtualHosts: []*ir.VirtualHost{{
			Name: "any", Domains: []string{"*"},
			Routes: []*ir.Route{{
				Name:     "c1/default/echo/rule/0/match/0",
				Match:    ir.Match{PathType: ir.PathPrefix, Path: "/"},
				Backends: []*ir.WeightedBackend{{Backend: "c1/default/echo/80", Weight: 1}},
			}},
		}}}
	}
	return &ir.Proxy{
		Node:    node,
		Cluster: "c1",
		Listeners: []*ir.Listener{
			{
				Name: "0.0.0.0:8080", Address: "0.0.0.0", Port: 8080, Protocol: ir.ProtocolHTTP,
				Chains: []*ir.FilterChain{{Name: "default/gw/http", HTTP: routes("c1/default/gw/8080")}},
			},
			{
				Name: "0.0.0.0:8443", Address: "0.0.0.0", Port: 8443, Protocol: ir.ProtocolHTTPS,
				Chains: []*ir.FilterChain{{
					Name: "default/gw/https",
					TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{
						{Name: "c1/default/cert", CertPEM: []byte("cert"), KeyPEM: []byte("key")},
					}},
					HTTP: routes("c1/default/gw/8443"),
				}},
			},
		},
		Backends: []*ir.Backend{{
			Name:        "c1/default/echo/80",
			Target:      ir.Target{Kind: ir.TargetService, Cluster: "c1", Namespace: "default", Name: "echo", Port: 80, From: "c1"},
			AppProtocol: ir.AppHTTP1,
			Localities: []*ir.Locality{{
				Cluster: "c1", Weight: 1,
				Endpoints: []*ir.Endpoint{{Address: endpoint, Port: 8080, Ready: true}},
			}},
		}},
	}
}

func mustBuild(t *testing.T, p *ir.Proxy) *xds.Resources {
	t.Helper()
	res, err := xds.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// endpointAddress is the address of the first endpoint of the first cluster.
func endpointAddress(res *xds.Resources) string {
	return res.Endpoints[0].GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
}

// logBuffer collects log output for tests to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// line returns the first log line that contains every part.
func (b *logBuffer) line(parts ...string) (string, bool) {
	for l := range strings.Lines(b.String()) {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(l, p)
		}
		if found {
			return l, true
		}
	}
	return "", false
}

func newLogger(t *testing.T, name string) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// eventually waits for cond, failing the test after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call is one call of Apply.
type call struct {
	res *xds.Resources
	err error
}

// recorder is an Apply function that records its calls. reject, if set before the client
// starts, decides what Apply returns.
type recorder struct {
	calls  chan call
	reject func(*xds.Resources) error
}

func newRecorder() *recorder { return &recorder{calls: make(chan call, 64)} }

func (r *recorder) apply(res *xds.Resources) error {
	var err error
	if r.reject != nil {
		err = r.reject(res)
	}
	r.calls <- call{res, err}
	return err
}

// next returns the next call of Apply.
func (r *recorder) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(wait):
		t.Fatal("Apply was not called")
		return call{}
	}
}

// none fails if Apply was called and its call not yet consumed.
func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.calls:
		t.Fatalf("unexpected Apply with %d listeners, %d routes, %d clusters", len(c.res.Listeners), len(c.res.Routes), len(c.res.Clusters))
	default:
	}
}

// startClient runs a client of addr until the test ends and returns its log.
func startClient(ctx context.Context, t *testing.T, addr string, r *recorder, opts ...grpc.DialOption) *logBuffer {
	t.Helper()
	return startClientWith(ctx, t, xdsclient.Options{Server: addr, Node: node, Apply: r.apply, DialOptions: opts})
}

// startClientWith runs a client with opts, its logger and short backoffs added, until the
// test ends and returns its log.
func startClientWith(ctx context.Context, t *testing.T, opts xdsclient.Options) *logBuffer {
	t.Helper()
	logger, logs := newLogger(t, "client")
	opts.Logger, opts.InitialBackoff, opts.MaxBackoff = logger, 10*time.Millisecond, 100*time.Millisecond
	c := xdsclient.New(opts)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("client: %v", err)
		}
	})
	return logs
}

// protocol is the xDS variant a test runs over: delta, or state of the world, which the
// client falls back to when a delta stream fails as unimplemented.
type protocol struct {
	name string
	opts []grpc.DialOption
}

// check fails the test unless the client connected over the protocol.
func (p protocol) check(t *testing.T, logs *logBuffer) {
	t.Helper()
	if _, ok := logs.line("connected to xds server", "protocol="+p.name); !ok {
		t.Fatalf("the client did not connect over %s", p.name)
	}
}

var protocols = []protocol{
	{"delta", nil},
	{"sotw", []grpc.DialOption{grpc.WithStreamInterceptor(withoutDelta)}},
}

func withoutDelta(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if strings.HasSuffix(method, "/DeltaAggregatedResources") {
		return nil, status.Error(codes.Unimplemented, "delta xDS disabled by the test")
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// controlPlane is a running xds.Server.
type controlPlane struct {
	*xds.Server
	reg  *prometheus.Registry
	logs *logBuffer
	stop func()
}

// startControlPlane serves Strait's xDS on addr with opts, with p published before the
// first client can connect, until stop is called or the test ends.
func startControlPlane(ctx context.Context, t *testing.T, addr string, p *ir.Proxy, opts ...xds.Option) *controlPlane {
	t.Helper()
	logger, logs := newLogger(t, "control plane")
	reg := prometheus.NewRegistry()
	srv := xds.NewServer(addr, reg, append([]xds.Option{xds.WithLogger(logger)}, opts...)...)
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("xds server: %v", err)
				}
			case <-time.After(wait):
				t.Error("xds server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return &controlPlane{Server: srv, reg: reg, logs: logs, stop: stop}
}

// metric is the value of a counter or gauge with the given labels, 0 if absent.
func (cp *controlPlane) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := cp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

// snapshot is a go-control-plane snapshot of res.
func snapshot(t *testing.T, version string, res *xds.Resources) *cache.Snapshot {
	t.Helper()
	snap, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(res.Listeners),
		resource.RouteType:    asResources(res.Routes),
		resource.ClusterType:  asResources(res.Clusters),
		resource.EndpointType: asResources(res.Endpoints),
		resource.SecretType:   asResources(res.Secrets),
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func asResources[T types.Resource](items []T) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, item := range items {
		out[i] = item
	}
	return out
}

// serveGRPC serves gs on addr until the returned stop is called or the test ends.
func serveGRPC(t *testing.T, addr string, gs *grpc.Server) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			gs.Stop()
			<-done
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// genericControlPlane is go-control-plane's own server on a snapshot cache, for tests that
// publish what Strait's server would not (a listener without its route table, an invalid
// resource) or serve only state of the world.
type genericControlPlane struct {
	cache cache.SnapshotCache
	ads   serverv3.Server
}

func newGenericControlPlane(ctx context.Context, cb serverv3.Callbacks) *genericControlPlane {
	c := cache.NewSnapshotCache(false, cache.IDHash{}, log.LoggerFuncs{})
	return &genericControlPlane{cache: c, ads: serverv3.NewServer(ctx, c, cb)}
}

func (g *genericControlPlane) set(t *testing.T, snap *cache.Snapshot) {
	t.Helper()
	if err := g.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatal(err)
	}
}

// serve serves ADS, state of the world and delta, on a loopback port.
func (g *genericControlPlane) serve(t *testing.T) string {
	addr, _ := serveGRPC(t, "127.0.0.1:0", adsServer(g.ads))
	return addr
}

// adsServer is a gRPC server with ADS, state of the world and delta.
func adsServer(ads serverv3.Server) *grpc.Server {
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, ads)
	return gs
}

// diffResources compares configurations; nil and empty lists are equal.
func diffResources(want, got *xds.Resources) string {
	return cmp.Diff(want, got, protocmp.Transform(), cmpopts.EquateEmpty())
}
