package xdsclient_test

import (
	"sync/atomic"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sotwOnlyADS serves state-of-the-world ADS only, as an older control plane does, and counts
// the delta streams it turns away.
type sotwOnlyADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	ads        serverv3.Server
	deltaTries atomic.Int32
}

func (s *sotwOnlyADS) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return s.ads.StreamAggregatedResources(stream)
}

// DeltaAggregatedResources answers as an unregistered method does.
func (s *sotwOnlyADS) DeltaAggregatedResources(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	s.deltaTries.Add(1)
	return status.Error(codes.Unimplemented, "method DeltaAggregatedResources not implemented")
}

// serve serves the ADS service alone on addr until the returned stop is called or the test
// ends.
func (s *sotwOnlyADS) serve(t *testing.T, addr string) (string, func()) {
	gs := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, s)
	return serveGRPC(t, addr, gs)
}

// TestSotWFallback checks that the client falls back to state of the world against a server
// without delta xDS, gets the whole configuration and updates, and after a reconnection
// goes straight to state of the world.
func TestSotWFallback(t *testing.T) {
	ctx := testContext(t)
	cp := newGenericControlPlane(ctx, serverv3.CallbackFuncs{})
	sotw := &sotwOnlyADS{ads: cp.ads}
	addr, stop := sotw.serve(t, "127.0.0.1:0")
	p := testProxy("10.0.0.1")
	cp.set(t, snapshot(t, "1", mustBuild(t, p)))
	rec := newRecorder()
	logs := startClient(ctx, t, addr, rec)

	got := rec.next(t).res
	if diff := diffResources(mustBuild(t, p), got); diff != "" {
		t.Errorf("applied configuration (-want +got):\n%s", diff)
	}
	if _, ok := logs.line("connected to xds server", "protocol=sotw"); !ok {
		t.Error("the client did not connect over state of the world")
	}

	stop()
	eventually(t, "the client to notice", func() bool {
		_, ok := logs.line("disconnected from xds server")
		return ok
	})
	sotw.serve(t, addr)
	cp.set(t, snapshot(t, "2", mustBuild(t, testProxy("10.0.0.2"))))
	c := rec.next(t)
	if got := endpointAddress(c.res); got != "10.0.0.2" {
		t.Errorf("endpoint address %s, want 10.0.0.2", got)
	}
	if n := sotw.deltaTries.Load(); n != 1 {
		t.Errorf("the client tried delta xDS %d times, want once", n)
	}
}
