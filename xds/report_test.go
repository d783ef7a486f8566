package xds_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// advertisingNode is a proxy's node advertising addresses in its metadata.
func advertisingNode(t *testing.T, id string, addresses ...any) *corev3.Node {
	md, err := structpb.NewStruct(map[string]any{xds.AddressesMetadataKey: addresses})
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: id, UserAgentName: "strait", Metadata: md}
}

// waitReport waits, woken by ProxyChanges, until node's report satisfies ok.
func waitReport(ctx context.Context, t *testing.T, srv *xds.Server, node, want string, ok func(translator.ProxyReport) bool) translator.ProxyReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		r := srv.ProxyReport(node)
		if ok(r) {
			return r
		}
		select {
		case <-srv.ProxyChanges():
		case <-ctx.Done():
			t.Fatalf("node %s: waiting for %s; report is %+v", node, want, r)
		}
	}
}

// TestServerProxyReport checks what the server learns from a node's proxies: how many are
// connected, which run the current listeners (by ACK), their advertised addresses, and a
// rejection of the current listeners, over state-of-the-world and delta streams alike;
// proxyless gRPC clients do not count.
func TestServerProxyReport(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	if r := srv.ProxyReport(p.Node); r.Proxies != 0 {
		t.Fatalf("report before any proxy connected: %+v", r)
	}

	sotwCtx, closeSotw := context.WithCancel(ctx)
	sotw := newSotwClient(sotwCtx, t, srv.Addr(), advertisingNode(t, p.Node, "192.0.2.10"))
	lds := sotw.fetch(resource.ListenerType)
	waitReport(ctx, t, srv, p.Node, "one proxy, not yet current", func(r translator.ProxyReport) bool {
		return r.Proxies == 1 && r.Current == 0
	})
	sotw.ack(lds)
	r := waitReport(ctx, t, srv, p.Node, "one current proxy", func(r translator.ProxyReport) bool { return r.Current == 1 })
	if !slices.Equal(r.Addresses, []string{"192.0.2.10"}) || r.Rejection != nil {
		t.Errorf("report = %+v, want addresses [192.0.2.10] and no rejection", r)
	}

	grpcClient := newSotwClient(ctx, t, srv.Addr(), proxylessNode(p.Node))
	grpcClient.fetch(resource.ListenerType, "web.example.com:8080")
	delta := newDeltaClient(ctx, t, srv.Addr(), advertisingNode(t, p.Node, "192.0.2.11", "192.0.2.10"))
	delta.subscribe(resource.ListenerType)
	r = waitReport(ctx, t, srv, p.Node, "two current proxies", func(r translator.ProxyReport) bool { return r.Current == 2 })
	if r.Proxies != 2 || !slices.Equal(r.Addresses, []string{"192.0.2.10", "192.0.2.11"}) {
		t.Errorf("report = %+v, want 2 proxies (the proxyless client not counted) advertising [192.0.2.10 192.0.2.11]", r)
	}
	if all := srv.ProxyReports(); len(all) != 1 || all[p.Node].Proxies != 2 {
		t.Errorf("ProxyReports() = %+v, want node %s alone, with 2 proxies", all, p.Node)
	}

	// New listeners: nobody runs them until they accept them; a rejection is reported.
	moved := loadProxy(t, "testdata/http-basic.ir.yaml")
	moved.Listeners[0].Address = "192.0.2.99"
	if err := srv.Update([]*ir.Proxy{moved}); err != nil {
		t.Fatal(err)
	}
	waitReport(ctx, t, srv, p.Node, "no current proxy after an update", func(r translator.ProxyReport) bool { return r.Current == 0 })
	next := sotw.recv(resource.ListenerType)
	sotw.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resource.ListenerType, VersionInfo: lds.GetVersionInfo(), ResponseNonce: next.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: int32(codes.FailedPrecondition), Message: "listen tcp 192.0.2.99:8080: bind: cannot assign requested address"},
	})
	r = waitReport(ctx, t, srv, p.Node, "a rejection", func(r translator.ProxyReport) bool { return r.Rejection != nil })
	if !r.Rejection.AddressNotUsable || r.Current != 0 {
		t.Errorf("report = %+v (rejection %+v), want an unusable address and no current proxy", r, *r.Rejection)
	}
	delta.ack(delta.recv(resource.ListenerType))
	waitReport(ctx, t, srv, p.Node, "the delta proxy current", func(r translator.ProxyReport) bool { return r.Current == 1 })

	closeSotw()
	r = waitReport(ctx, t, srv, p.Node, "one proxy after the other disconnected", func(r translator.ProxyReport) bool { return r.Proxies == 1 })
	if r.Current != 1 || r.Rejection != nil || !slices.Equal(r.Addresses, []string{"192.0.2.10", "192.0.2.11"}) {
		t.Errorf("report = %+v, want the delta proxy alone, current, without the other's rejection", r)
	}
}

// TestServerProxyReportRejections checks that when proxies of one node reject the listeners
// for different reasons, every report names the same one, so that the Gateway's condition
// does not flip from one report to the next.
func TestServerProxyReportRejections(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(ctx, t)
	p := loadProxy(t, "testdata/http-basic.ir.yaml")
	if err := srv.Update([]*ir.Proxy{p}); err != nil {
		t.Fatal(err)
	}
	var proxies []*sotwClient
	for range 3 {
		c := newSotwClient(ctx, t, srv.Addr(), envoyNode(p.Node))
		c.ack(c.fetch(resource.ListenerType))
		proxies = append(proxies, c)
	}
	waitReport(ctx, t, srv, p.Node, "three current proxies", func(r translator.ProxyReport) bool { return r.Current == 3 })

	moved := loadProxy(t, "testdata/http-basic.ir.yaml")
	moved.Listeners[0].Address = "192.0.2.99"
	if err := srv.Update([]*ir.Proxy{moved}); err != nil {
		t.Fatal(err)
	}
	messages := []string{"c: unknown filter", "a: unknown filter", "b: unknown filter"}
	for i, c := range proxies {
		next := c.recv(resource.ListenerType)
		c.send(&discoveryv3.DiscoveryRequest{
			TypeUrl: resource.ListenerType, ResponseNonce: next.GetNonce(),
			ErrorDetail: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: messages[i]},
		})
	}
	waitReport(ctx, t, srv, p.Node, "the least rejection", func(r translator.ProxyReport) bool {
		return r.Rejection != nil && r.Rejection.Message == "a: unknown filter"
	})
	// The streams are kept in a map, iterated in a different order each time.
	for range 20 {
		if r := srv.ProxyReport(p.Node); r.Rejection == nil || r.Rejection.Message != "a: unknown filter" {
			t.Fatalf("report = %+v (rejection %+v), want the rejection \"a: unknown filter\" every time", r, r.Rejection)
		}
	}
}
