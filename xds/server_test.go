package xds_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// quiet is how long a test waits to be sure no response comes.
const quiet = 500 * time.Millisecond

// startServer serves xDS on a loopback port until ctx ends or the test finishes.
func startServer(ctx context.Context, t testing.TB) *xds.Server {
	t.Helper()
	return startServerWithRegistry(ctx, t, prometheus.NewRegistry())
}

// startServerWithRegistry is startServer with the server's metrics in reg.
func startServerWithRegistry(ctx context.Context, t testing.TB, reg *prometheus.Registry) *xds.Server {
	t.Helper()
	srv := xds.NewServer("127.0.0.1:0", reg)
	serve(ctx, t, srv)
	return srv
}

// serve listens and serves srv until ctx ends or the test finishes.
func serve(ctx context.Context, t testing.TB, srv *xds.Server) {
	t.Helper()
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("xds server: %v", err)
		}
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// envoyNode is how a proxy identifies itself; proxylessNode how a gRPC client does.
func envoyNode(id string) *corev3.Node { return &corev3.Node{Id: id, UserAgentName: "envoy"} }

func proxylessNode(id string) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{xds.ProxylessMetadataKey: true})
	return &corev3.Node{Id: id, UserAgentName: "gRPC Go", Metadata: md}
}

// adsStream is the part of an ADS stream the test clients use.
type adsStream[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
}

// adsClient is the stream plumbing the state-of-the-world and delta test clients share:
// responses arrive on resps, closed when the stream ends.
type adsClient[Req any, Resp interface{ GetTypeUrl() string }] struct {
	t       *testing.T
	stream  adsStream[Req, Resp]
	resps   chan Resp
	setNode func(Req)
	// describe names an unexpected response in a failure.
	describe func(Resp) string
	// ended is the error that ended the stream, set before resps is closed.
	ended error
}

func newADSClient[Req any, Resp interface{ GetTypeUrl() string }](t *testing.T, stream adsStream[Req, Resp], setNode func(Req), describe func(Resp) string) *adsClient[Req, Resp] {
	c := &adsClient[Req, Resp]{t: t, stream: stream, resps: make(chan Resp, 16), setNode: setNode, describe: describe}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				c.ended = err
				close(c.resps)
				return
			}
			c.resps <- resp
		}
	}()
	return c
}

func (c *adsClient[Req, Resp]) send(req Req) {
	c.t.Helper()
	c.setNode(req)
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *adsClient[Req, Resp]) recv(typeURL string) Resp {
	c.t.Helper()
	select {
	case resp, ok := <-c.resps:
		if !ok {
			c.t.Fatal("stream closed")
		}
		if resp.GetTypeUrl() != typeURL {
			c.t.Fatalf("got a %s response, want %s", resp.GetTypeUrl(), typeURL)
		}
		return resp
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no %s response", typeURL)
	}
	panic("unreachable")
}

func (c *adsClient[Req, Resp]) expectNone() {
	c.t.Helper()
	select {
	case resp := <-c.resps:
		c.t.Fatalf("unexpected response: %s", c.describe(resp))
	case <-time.After(quiet):
	}
}

// sotwClient is an ADS client speaking state of the world, as Envoy does.
type sotwClient struct {
	*adsClient[*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse]
}

func newSotwClient(ctx context.Context, t *testing.T, addr string, node *corev3.Node) *sotwClient {
	t.Helper()
	return newSotwClientOn(ctx, t, dial(t, addr), node)
}

// newSotwClientOn opens a state-of-the-world ADS stream on conn.
func newSotwClientOn(ctx context.Context, t *testing.T, conn *grpc.ClientConn, node *corev3.Node) *sotwClient {
	t.Helper()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &sotwClient{newADSClient(t, adsStream[*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse](stream),
		func(r *discoveryv3.DiscoveryRequest) { r.Node = node },
		func(r *discoveryv3.DiscoveryResponse) string {
			return fmt.Sprintf("%s version %s: %v", r.GetTypeUrl(), r.GetVersionInfo(), names(t, r.GetResources()))
		})}
}

// fetch requests a type (every resource when names is empty) and returns the response.
func (c *sotwClient) fetch(typeURL string, names ...string) *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names})
	return c.recv(typeURL)
}

// ack accepts a response, keeping the subscription it answered.
func (c *sotwClient) ack(resp *discoveryv3.DiscoveryResponse, names ...string) {
	c.t.Helper()
	c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resp.GetTypeUrl(), ResourceNames: names,
		VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(),
	})
}

// syncAll walks the resources as Envoy does (clusters, their endpoints, listeners, their
// routes), acknowledging each response, and returns the responses by type.
func (c *sotwClient) syncAll() map[string]*discoveryv3.DiscoveryResponse {
	c.t.Helper()
	out := map[string]*discoveryv3.DiscoveryResponse{}
	cds := c.fetch(resource.ClusterType)
	c.ack(cds)
	eds := c.fetch(resource.EndpointType, names(c.t, cds.GetResources())...)
	c.ack(eds, names(c.t, cds.GetResources())...)
	lds := c.fetch(resource.ListenerType)
	c.ack(lds)
	routes := routeNames(c.t, lds.GetResources())
	rds := c.fetch(resource.RouteType, routes...)
	c.ack(rds, routes...)
	out[resource.ClusterType], out[resource.EndpointType] = cds, eds
	out[resource.ListenerType], out[resource.RouteType] = lds, rds
	return out
}

func names(t testing.TB, resources []*anypb.Any) []string {
	t.Helper()
	out := []string{}
	for _, a := range resources {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cache.GetResourceName(m))
	}
	slices.Sort(out)
	return out
}

// routeNames lists the route configurations the listeners' connection managers reference.
func routeNames(t testing.TB, listeners []*anypb.Any) []string {
	t.Helper()
	var out []string
	for _, a := range listeners {
		var l listenerv3.Listener
		if err := a.UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		configs := []*anypb.Any{l.GetApiListener().GetApiListener()}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				configs = append(configs, f.GetTypedConfig())
			}
		}
		for _, c := range configs {
			var hcm hcmv3.HttpConnectionManager
			if c.MessageIs(&hcm) {
				if err := c.UnmarshalTo(&hcm); err != nil {
					t.Fatal(err)
				}
				if name := hcm.GetRds().GetRouteConfigName(); !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// deltaClient is an ADS client speaking incremental (delta) xDS.
type deltaClient struct {
	*adsClient[*discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse]
}

func newDeltaClient(ctx context.Context, t *testing.T, addr string, node *corev3.Node) *deltaClient {
	t.Helper()
	return newDeltaClientOn(ctx, t, dial(t, addr), node)
}

// newDeltaClientOn opens a delta ADS stream on conn.
func newDeltaClientOn(ctx context.Context, t *testing.T, conn *grpc.ClientConn, node *corev3.Node) *deltaClient {
	t.Helper()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &deltaClient{newADSClient(t, adsStream[*discoveryv3.DeltaDiscoveryRequest, *discoveryv3.DeltaDiscoveryResponse](stream),
		func(r *discoveryv3.DeltaDiscoveryRequest) { r.Node = node },
		func(r *discoveryv3.DeltaDiscoveryResponse) string {
			return fmt.Sprintf("%s delta with %d resources", r.GetTypeUrl(), len(r.GetResources()))
		})}
}

// subscribe subscribes to names (to every resource when none), acknowledges the response
// and returns it.
func (c *deltaClient) subscribe(typeURL string, names ...string) *discoveryv3.DeltaDiscoveryResponse {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names})
	resp := c.recv(typeURL)
	c.ack(resp)
	return resp
}

func (c *deltaClient) ack(resp *discoveryv3.DeltaDiscoveryResponse) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
}

func deltaNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	out := []string{}
	for _, r := range resp.GetResources() {
		out = append(out, r.GetName())
	}
	slices.Sort(out)
	return out
}

// snapshotNames lists the names of a snapshot's resources of one type.
func snapshotNames(s *cache.Snapshot, typeURL string) []string {
	out := []string{}
	for name := range s.GetResources(typeURL) {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

var (
	allTypes     = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.SecretType}
	nonEndpoints = []string{resource.ClusterType, resource.ListenerType, resource.RouteType, resource.SecretType}
)

// sameVersions fails unless a and b have the same version of every given type.
func sameVersions(t *testing.T, a, b *cache.Snapshot, typeURLs ...string) {
	t.Helper()
	for _, u := range typeURLs {
		if a.GetVersion(u) != b.GetVersion(u) {
			t.Errorf("%s version changed from %s to %s", u, a.GetVersion(u), b.GetVersion(u))
		}
	}
}

func mustSnapshot(t *testing.T, srv *xds.Server, node string) *cache.Snapshot {
	t.Helper()
	s, ok := srv.Snapshot(node)
	if !ok {
		t.Fatalf("no snapshot for %s", node)
	}
	return s
}

// metricValue is the value of a counter or gauge with the given labels, 0 if absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
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

// moveEndpoint returns the proxy of path with one endpoint of its first backend moved.
func moveEndpoint(t *testing.T, path, address string) *ir.Proxy {
	t.Helper()
	p := loadProxy(t, path)
	p.Backends[0].Localities[0].Endpoints[0].Address = address
	return p
}

// TestServerSotW serves a proxy to a state-of-the-world ADS client, then moves an endpoint on
// the fast path: the client gets an EDS response and nothing else, and the snapshot keeps the
// very listener, route, cluster and secret resources with their versions.
func TestServerSotW(t *testing.T) {
	ctx := testContext(t)
	reg := prometheus.NewRegistry()
	srv := startServerWithRegistry(ctx, t, reg)
	p := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	before := mustSnapshot(t, srv, p.Node)

	c := newSotwClient(ctx, t, srv.Addr(), envoyNode(p.Node))
	got := c.syncAll()
	for typeURL, resp := range got {
		if n, want := names(t, resp.GetResources()), snapshotNames(before, typeURL); !slices.Equal(n, want) {
			t.Errorf("%s: got %v, want %v", typeURL, n, want)
		}
		if resp.GetVersionInfo() != before.GetVersion(typeURL) {
			t.Errorf("%s: version %s, want %s", typeURL, resp.GetVersionInfo(), before.GetVersion(typeURL))
		}
	}
	if n := len(got[resource.ListenerType].GetResources()); n != 1 {
		t.Fatalf("got %d listeners, want 1", n)
	}
	c.expectNone()
	if v := metricValue(t, reg, "strait_xds_connected_nodes", nil); v != 1 {
		t.Errorf("connected nodes = %v, want 1", v)
	}

	if err := srv.UpdateEndpoints([]*ir.Proxy{moveEndpoint(t, "testdata/http-basic.ir.yaml", "10.0.0.9")}); err != nil {
		t.Fatal(err)
	}
	eds := c.recv(resource.EndpointType)
	var cla endpointv3.ClusterLoadAssignment
	if err := eds.GetResources()[0].UnmarshalTo(&cla); err != nil {
		t.Fatal(err)
	}
	if addr := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); addr != "10.0.0.9" {
		t.Errorf("endpoint address %s, want 10.0.0.9", addr)
	}
	c.ack(eds, names(t, got[resource.ClusterType].GetResources())...)
	c.expectNone()

	after := mustSnapshot(t, srv, p.Node)
	sameVersions(t, before, after, nonEndpoints...)
	if before.GetVersion(resource.EndpointType) == after.GetVersion(resource.EndpointType) {
		t.Error("endpoint version did not change")
	}
	for name, l := range after.GetResources(resource.ListenerType) {
		if l != before.GetResources(resource.ListenerType)[name] {
			t.Errorf("listener %s was rebuilt on the endpoint fast path", name)
		}
	}

	// A full update that changes nothing keeps every version and sends nothing.
	if err := srv.Update([]*ir.Proxy{moveEndpoint(t, "testdata/http-basic.ir.yaml", "10.0.0.9")}); err != nil {
		t.Fatal(err)
	}
	sameVersions(t, after, mustSnapshot(t, srv, p.Node), allTypes...)
	c.expectNone()
	if v := metricValue(t, reg, "strait_xds_pushes_total", map[string]string{"type": "ClusterLoadAssignment"}); v != 2 {
		t.Errorf("EDS pushes = %v, want 2", v)
	}
	if v := metricValue(t, reg, "strait_xds_pushes_total", map[string]string{"type": "Listener"}); v != 1 {
		t.Errorf("LDS pushes = %v, want 1", v)
	}
}

// TestServerDelta does the same over delta xDS: after the fast path the client gets only the
// one changed ClusterLoadAssignment.
func TestServerDelta(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/mirror.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, srv, p.Node)

	c := newDeltaClient(ctx, t, srv.Addr(), envoyNode(p.Node))
	cds := c.subscribe(resource.ClusterType)
	eds := c.subscribe(resource.EndpointType, deltaNames(cds)...)
	lds := c.subscribe(resource.ListenerType)
	rds := c.subscribe(resource.RouteType, "c1/default/gw/80")
	for typeURL, resp := range map[string]*discoveryv3.DeltaDiscoveryResponse{
		resource.ClusterType: cds, resource.EndpointType: eds, resource.ListenerType: lds, resource.RouteType: rds,
	} {
		if got, want := deltaNames(resp), snapshotNames(snap, typeURL); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", typeURL, got, want)
		}
	}
	if len(cds.GetResources()) != 3 {
		t.Fatalf("got %d clusters, want 3", len(cds.GetResources()))
	}
	c.expectNone()

	if err := srv.UpdateEndpoints([]*ir.Proxy{moveEndpoint(t, "testdata/mirror.ir.yaml", "10.0.0.9")}); err != nil {
		t.Fatal(err)
	}
	update := c.recv(resource.EndpointType)
	if got := deltaNames(update); !slices.Equal(got, []string{"c1/default/echo/80"}) {
		t.Errorf("delta update carries %v, want only the changed c1/default/echo/80", got)
	}
	c.ack(update)
	c.expectNone()
	sameVersions(t, snap, mustSnapshot(t, srv, p.Node), nonEndpoints...)
}

// TestServerNodeIsolation checks that a node is served only its own Gateway and is not
// disturbed by another node's updates, and that an unknown node is served nothing.
func TestServerNodeIsolation(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	a := loadProxy(t, "testdata/http-basic.ir.yaml")
	b := func() *ir.Proxy {
		b := loadProxy(t, "testdata/mirror.ir.yaml")
		b.Node = "c2/default/gw"
		return b
	}
	if err := srv.Update([]*ir.Proxy{a, b()}); err != nil {
		t.Fatal(err)
	}
	ca := newSotwClient(ctx, t, srv.Addr(), envoyNode(a.Node))
	cb := newSotwClient(ctx, t, srv.Addr(), envoyNode("c2/default/gw"))
	gotA, gotB := ca.syncAll(), cb.syncAll()
	for _, check := range []struct {
		got  *discoveryv3.DiscoveryResponse
		want []string
	}{
		{gotA[resource.ListenerType], []string{"0.0.0.0:8080"}},
		{gotA[resource.ClusterType], []string{"import/default/web/80"}},
		{gotB[resource.ListenerType], []string{"0.0.0.0:80"}},
		{gotB[resource.ClusterType], []string{"c1/default/echo/80", "c1/default/shadow/80", "c2/default/shadow/80"}},
	} {
		if got := names(t, check.got.GetResources()); !slices.Equal(got, check.want) {
			t.Errorf("%s: got %v, want %v", check.got.GetTypeUrl(), got, check.want)
		}
	}

	changed := b()
	changed.Listeners[0].Chains[0].HTTP.VirtualHosts[0].Routes[0].RequestHeaders = &ir.HeaderModifier{
		Set: []ir.Header{{Name: "x-new", Value: "1"}},
	}
	if err := srv.Update([]*ir.Proxy{a, changed}); err != nil {
		t.Fatal(err)
	}
	cb.recv(resource.RouteType)
	cb.expectNone()
	ca.expectNone()

	stranger := newSotwClient(ctx, t, srv.Addr(), envoyNode("c9/default/unknown"))
	stranger.send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType})
	stranger.expectNone()
}

// TestServerKeepsLastGoodSnapshot checks that a proxy that fails to build keeps serving its
// last good snapshot while the other proxies of the same update are published, and that an
// endpoint update that does not fit the published clusters is refused.
func TestServerKeepsLastGoodSnapshot(t *testing.T) {
	ctx := testContext(t)
	reg := prometheus.NewRegistry()
	srv := startServerWithRegistry(ctx, t, reg)
	good := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{good}); err != nil {
		t.Fatal(err)
	}
	before := mustSnapshot(t, srv, good.Node)
	c := newSotwClient(ctx, t, srv.Addr(), envoyNode(good.Node))
	c.syncAll()

	bad := loadProxy(t, "testdata/http-basic.ir.yaml")
	bad.Listeners[0].Chains[0].HTTP.VirtualHosts[0].Routes[0].Backends[0].Backend = "c1/default/missing/80"
	other := loadProxy(t, "testdata/mirror.ir.yaml")
	other.Node = "c2/default/gw"
	err := srv.Update([]*ir.Proxy{bad, other})
	if err == nil || !strings.Contains(err.Error(), `node "c1/default/gw"`) || !strings.Contains(err.Error(), `unknown backend "c1/default/missing/80"`) {
		t.Fatalf("Update error = %v, want the node and the unknown backend", err)
	}
	sameVersions(t, before, mustSnapshot(t, srv, good.Node), allTypes...)
	c.expectNone()
	if _, ok := srv.Snapshot(other.Node); !ok {
		t.Error("the valid proxy of the same update was not published")
	}
	if v := metricValue(t, reg, "strait_xds_snapshot_build_errors_total", map[string]string{"kind": "full"}); v != 1 {
		t.Errorf("build errors = %v, want 1", v)
	}

	added := loadProxy(t, "testdata/http-basic.ir.yaml")
	added.Backends = append(added.Backends, &ir.Backend{Name: "c1/default/new/80", AppProtocol: ir.AppHTTP1})
	if err := srv.UpdateEndpoints([]*ir.Proxy{added}); err == nil || !strings.Contains(err.Error(), "inconsistent snapshot") {
		t.Errorf("UpdateEndpoints with a new backend: error = %v, want an inconsistent snapshot", err)
	}
	unknown := loadProxy(t, "testdata/http-basic.ir.yaml")
	unknown.Node = "c9/default/gw"
	if err := srv.UpdateEndpoints([]*ir.Proxy{unknown}); err == nil || !strings.Contains(err.Error(), "full Update first") {
		t.Errorf("UpdateEndpoints for an unpublished node: error = %v", err)
	}
	sameVersions(t, before, mustSnapshot(t, srv, good.Node), allTypes...)
	c.expectNone()
}

// TestServerRemovesVanishedNode checks that a node whose Gateway is gone is sent an empty
// configuration, is served again if its Gateway returns, and is forgotten once no client is
// connected.
func TestServerRemovesVanishedNode(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	clientCtx, disconnect := context.WithCancel(ctx)
	c := newSotwClient(clientCtx, t, srv.Addr(), envoyNode(p.Node))
	clusters := names(t, c.syncAll()[resource.ClusterType].GetResources())
	routes := []string{"c1/default/gw/8080"}

	// recvAll receives one response per type, in any order, acknowledging each.
	recvAll := func() map[string]int {
		counts := map[string]int{}
		for range 4 {
			select {
			case resp := <-c.resps:
				counts[resp.GetTypeUrl()] = len(resp.GetResources())
				subscribed := map[string][]string{resource.EndpointType: clusters, resource.RouteType: routes}[resp.GetTypeUrl()]
				c.ack(resp, subscribed...)
			case <-time.After(5 * time.Second):
				t.Fatalf("got responses for %v only", counts)
			}
		}
		return counts
	}

	if err := srv.Update(nil); err != nil {
		t.Fatal(err)
	}
	for typeURL, n := range recvAll() {
		if n != 0 {
			t.Errorf("%s: %d resources after the Gateway vanished, want 0", typeURL, n)
		}
	}
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	for typeURL, n := range recvAll() {
		if n == 0 {
			t.Errorf("%s: no resources after the Gateway returned", typeURL)
		}
	}

	disconnect()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := srv.Update(nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := srv.Snapshot(p.Node); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the vanished node was never forgotten after its client left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerNACK checks that a rejection is counted and logged, that the rejected version is
// not sent again in a loop, and that the next version is sent.
func TestServerNACK(t *testing.T) {
	ctx := testContext(t)
	reg := prometheus.NewRegistry()
	srv := startServerWithRegistry(ctx, t, reg)
	p := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	c := newSotwClient(ctx, t, srv.Addr(), envoyNode(p.Node))
	lds := c.fetch(resource.ListenerType)
	c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ListenerType, ResponseNonce: lds.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: "listener 0.0.0.0:8080: no such filter"},
	})
	c.expectNone()
	if v := metricValue(t, reg, "strait_xds_nacks_total", map[string]string{"node": p.Node, "type": "Listener"}); v != 1 {
		t.Errorf("NACKs = %v, want 1", v)
	}

	fixed := loadProxy(t, "testdata/http-basic.ir.yaml")
	fixed.Listeners[0].Chains[0].Name = "default/gw/http-fixed"
	if err := srv.Update([]*ir.Proxy{fixed}); err != nil {
		t.Fatal(err)
	}
	if next := c.recv(resource.ListenerType); next.GetVersionInfo() == lds.GetVersionInfo() {
		t.Errorf("got the rejected version %s again", next.GetVersionInfo())
	}
}

// TestServerProxylessVariant checks that a node's proxyless gRPC clients get API listeners
// named host:port and route tables matching host:port, never the proxy's socket listeners or
// secrets, while the proxy of the same node gets its own resources.
func TestServerProxylessVariant(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/proxyless.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}

	g := newSotwClient(ctx, t, srv.Addr(), proxylessNode(p.Node))
	lds := g.fetch(resource.ListenerType, "echo.grpc.local:50051")
	if got := names(t, lds.GetResources()); !slices.Equal(got, []string{"echo.grpc.local:50051"}) {
		t.Fatalf("proxyless listeners %v", got)
	}
	var l listenerv3.Listener
	if err := lds.GetResources()[0].UnmarshalTo(&l); err != nil {
		t.Fatal(err)
	}
	if l.GetApiListener() == nil || l.GetAddress() != nil {
		t.Fatalf("proxyless listener is not an API listener: %v", &l)
	}
	g.ack(lds, "echo.grpc.local:50051")
	rds := g.fetch(resource.RouteType, routeNames(t, lds.GetResources())...)
	m, err := rds.GetResources()[0].UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(m), `"echo.grpc.local:50051"`) {
		t.Errorf("proxyless route table does not match the authority echo.grpc.local:50051: %v", m)
	}
	g.ack(rds, routeNames(t, lds.GetResources())...)
	if sds := g.fetch(resource.SecretType); len(sds.GetResources()) != 0 {
		t.Errorf("a proxyless client was sent %d secrets", len(sds.GetResources()))
	}

	e := newSotwClient(ctx, t, srv.Addr(), envoyNode(p.Node))
	if got := names(t, e.fetch(resource.ListenerType).GetResources()); !slices.Equal(got, []string{"0.0.0.0:443", "0.0.0.0:50051", "[::]:50051"}) {
		t.Errorf("proxy listeners %v", got)
	}
	if _, ok := srv.ProxylessSnapshot(p.Node); !ok {
		t.Error("no proxyless snapshot")
	}
}

// TestServerPerTypeServices fetches each resource type over its own discovery service.
func TestServerPerTypeServices(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/https-terminate.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, srv, p.Node)
	conn := dial(t, srv.Addr())
	type stream interface {
		Send(*discoveryv3.DiscoveryRequest) error
		Recv() (*discoveryv3.DiscoveryResponse, error)
	}
	open := map[string]func() (stream, error){
		resource.ListenerType: func() (stream, error) {
			return listenerservice.NewListenerDiscoveryServiceClient(conn).StreamListeners(ctx)
		},
		resource.RouteType: func() (stream, error) {
			return routeservice.NewRouteDiscoveryServiceClient(conn).StreamRoutes(ctx)
		},
		resource.ClusterType: func() (stream, error) {
			return clusterservice.NewClusterDiscoveryServiceClient(conn).StreamClusters(ctx)
		},
		resource.EndpointType: func() (stream, error) {
			return endpointservice.NewEndpointDiscoveryServiceClient(conn).StreamEndpoints(ctx)
		},
		resource.SecretType: func() (stream, error) {
			return secretservice.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
		},
	}
	for typeURL, o := range open {
		s, err := o()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(p.Node), TypeUrl: typeURL}); err != nil {
			t.Fatal(err)
		}
		resp, err := s.Recv()
		if err != nil {
			t.Fatalf("%s: %v", typeURL, err)
		}
		if got, want := names(t, resp.GetResources()), snapshotNames(snap, typeURL); !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s: got %v, want %v", typeURL, got, want)
		}
	}
}

// BenchmarkUpdate publishes a full update of a proxy with 10,000 routes whose endpoints
// changed; BenchmarkUpdateEndpoints publishes the same change on the endpoint fast path.
func BenchmarkUpdate(b *testing.B) { benchmarkUpdate(b, (*xds.Server).Update) }

// BenchmarkUpdateEndpoints is the endpoint fast path of BenchmarkUpdate.
func BenchmarkUpdateEndpoints(b *testing.B) { benchmarkUpdate(b, (*xds.Server).UpdateEndpoints) }

func benchmarkUpdate(b *testing.B, update func(*xds.Server, []*ir.Proxy) error) {
	srv := xds.NewServer("127.0.0.1:0", nil)
	proxies := [2][]*ir.Proxy{{largeProxy(10_000, 1_000)}, {largeProxy(10_000, 1_000)}}
	proxies[1][0].Backends[0].Localities[0].Endpoints[0].Ready = false
	if err := srv.Update(proxies[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := update(srv, proxies[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
