package xdsclient_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// TestDeltaFullConfiguration checks that the client gets a node's whole configuration
// (listeners, their route tables and certificate, the cluster and its endpoints) over delta
// xDS, in one Apply.
func TestDeltaFullConfiguration(t *testing.T) {
	ctx := testContext(t)
	p := testProxy("10.0.0.1")
	cp := startControlPlane(ctx, t, "127.0.0.1:0", p)
	rec := newRecorder()
	logs := startClient(ctx, t, cp.Addr(), rec)

	got := rec.next(t).res
	if diff := diffResources(mustBuild(t, p), got); diff != "" {
		t.Errorf("applied configuration (-want +got):\n%s", diff)
	}
	if len(got.Listeners) != 2 || len(got.Routes) != 2 || len(got.Clusters) != 1 || len(got.Endpoints) != 1 || len(got.Secrets) != 1 {
		t.Errorf("got %d listeners, %d routes, %d clusters, %d endpoints, %d secrets; want 2, 2, 1, 1, 1",
			len(got.Listeners), len(got.Routes), len(got.Clusters), len(got.Endpoints), len(got.Secrets))
	}
	if _, ok := logs.line("connected to xds server", "protocol=delta"); !ok {
		t.Error("the client did not connect over delta xDS")
	}
}

// TestEndpointUpdate checks that an update on the control plane's endpoint fast path reaches
// Apply with the new endpoints and everything else as it was.
func TestEndpointUpdate(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol.name, func(t *testing.T) { testEndpointUpdate(t, protocol) })
	}
}

func testEndpointUpdate(t *testing.T, protocol protocol) {
	ctx := testContext(t)
	cp := startControlPlane(ctx, t, "127.0.0.1:0", testProxy("10.0.0.1"))
	rec := newRecorder()
	logs := startClient(ctx, t, cp.Addr(), rec, protocol.opts...)
	before := rec.next(t).res
	protocol.check(t, logs)

	if err := cp.UpdateEndpoints([]*ir.Proxy{testProxy("10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	after := rec.next(t).res
	if got := endpointAddress(after); got != "10.0.0.2" {
		t.Errorf("endpoint address %s, want 10.0.0.2", got)
	}
	unchanged := func(r *xds.Resources) *xds.Resources {
		return &xds.Resources{Listeners: r.Listeners, Routes: r.Routes, Clusters: r.Clusters, Secrets: r.Secrets}
	}
	if diff := diffResources(unchanged(before), unchanged(after)); diff != "" {
		t.Errorf("an endpoint update changed other resources (-before +after):\n%s", diff)
	}
}

// TestApplyErrorNACKs checks that a configuration Apply rejects is NACKed with Apply's
// error, that the control plane sees the NACK, that it is not retried, and that the next
// version is applied.
func TestApplyErrorNACKs(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol.name, func(t *testing.T) { testApplyErrorNACKs(t, protocol) })
	}
}

func testApplyErrorNACKs(t *testing.T, protocol protocol) {
	ctx := testContext(t)
	withDomain := func(domain string) *ir.Proxy {
		p := testProxy("10.0.0.1")
		p.Listeners[0].Chains[0].HTTP.VirtualHosts[0].Domains = []string{domain}
		return p
	}
	cp := startControlPlane(ctx, t, "127.0.0.1:0", withDomain("one.example.com"))
	rec := newRecorder()
	rec.reject = func(res *xds.Resources) error {
		if slices.ContainsFunc(res.Routes, func(rc *routev3.RouteConfiguration) bool {
			return slices.Contains(rc.GetVirtualHosts()[0].GetDomains(), "bad.example.com")
		}) {
			return errors.New("no listener may serve bad.example.com")
		}
		return nil
	}
	logs := startClient(ctx, t, cp.Addr(), rec, protocol.opts...)
	if c := rec.next(t); c.err != nil {
		t.Fatalf("first configuration rejected: %v", c.err)
	}
	protocol.check(t, logs)

	if err := cp.Update([]*ir.Proxy{withDomain("bad.example.com")}); err != nil {
		t.Fatal(err)
	}
	if c := rec.next(t); c.err == nil {
		t.Fatal("Apply accepted the bad configuration")
	}
	nacks := map[string]string{"node": node, "type": "RouteConfiguration"}
	eventually(t, "the control plane to count the NACK", func() bool {
		return cp.metric(t, "strait_xds_nacks_total", nacks) == 1
	})
	if _, ok := cp.logs.line("xds client rejected configuration", "no listener may serve bad.example.com"); !ok {
		t.Error("the control plane did not log the NACK with Apply's error")
	}
	if _, ok := logs.line("NACK sent", "no listener may serve bad.example.com"); !ok {
		t.Error("the client did not log the NACK with its reason")
	}

	if err := cp.Update([]*ir.Proxy{withDomain("two.example.com")}); err != nil {
		t.Fatal(err)
	}
	// Were the rejected configuration retried, it would come before this one.
	c := rec.next(t)
	if c.err != nil || !strings.Contains(c.res.Routes[0].String(), "two.example.com") {
		t.Fatalf("after the NACK, Apply got %v (error %v), want the next version", c.res.Routes, c.err)
	}
	if n := cp.metric(t, "strait_xds_nacks_total", nacks); n != 1 {
		t.Errorf("%v NACKs, want 1", n)
	}
}

// TestControlPlaneRestart stops the control plane: the proxy keeps its configuration (no
// Apply, certainly not an empty one), reconnects when the control plane is back on the same
// address, does not apply again what it already runs, and gets the next update.
func TestControlPlaneRestart(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol.name, func(t *testing.T) { testControlPlaneRestart(t, protocol) })
	}
}

func testControlPlaneRestart(t *testing.T, protocol protocol) {
	ctx := testContext(t)
	cp := startControlPlane(ctx, t, "127.0.0.1:0", testProxy("10.0.0.1"))
	addr := cp.Addr()
	rec := newRecorder()
	logs := startClient(ctx, t, addr, rec, protocol.opts...)
	rec.next(t)
	protocol.check(t, logs)

	cp.stop()
	eventually(t, "the client to notice", func() bool {
		_, ok := logs.line("disconnected from xds server")
		return ok
	})
	// The stream broke before the client logged it, so any Apply it caused came first.
	rec.none(t)

	restarted := startControlPlane(ctx, t, addr, testProxy("10.0.0.1"))
	// Wait until the client has resubscribed and been answered (a new stream is always
	// sent the listeners and clusters, or over delta at least a response for each type).
	// Were it to apply the unchanged configuration again, it would do so before the update
	// below, which comes later on the same stream.
	eventually(t, "the client to reconnect", func() bool {
		return restarted.metric(t, "strait_xds_pushes_total", map[string]string{"type": "Listener"}) >= 1 &&
			restarted.metric(t, "strait_xds_pushes_total", map[string]string{"type": "Cluster"}) >= 1
	})
	if err := restarted.Update([]*ir.Proxy{testProxy("10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	c := rec.next(t)
	if got := endpointAddress(c.res); got != "10.0.0.2" {
		t.Errorf("first Apply after the restart has endpoint %s, want the update's 10.0.0.2", got)
	}
	if len(c.res.Listeners) != 2 {
		t.Errorf("Apply got %d listeners, want 2", len(c.res.Listeners))
	}
}
