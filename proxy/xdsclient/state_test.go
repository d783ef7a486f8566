package xdsclient_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/strait-gw/strait/translator/ir"
)

// deltaRequests records the delta requests a control plane receives.
type deltaRequests struct {
	mu       sync.Mutex
	acked    map[string]bool     // types with an ACK
	nacks    []string            // NACK messages
	subNames map[string][]string // names subscribed to, by type
	sent     map[string]int      // resources sent, by type
}

func newDeltaRequests() *deltaRequests {
	return &deltaRequests{acked: map[string]bool{}, subNames: map[string][]string{}, sent: map[string]int{}}
}

func (d *deltaRequests) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamDeltaRequestFunc: func(_ int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			switch {
			case req.GetErrorDetail() != nil:
				d.nacks = append(d.nacks, req.GetErrorDetail().GetMessage())
			case req.GetResponseNonce() != "":
				d.acked[req.GetTypeUrl()] = true
			}
			d.subNames[req.GetTypeUrl()] = append(d.subNames[req.GetTypeUrl()], req.GetResourceNamesSubscribe()...)
			return nil
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.sent[resp.GetTypeUrl()] += len(resp.GetResources())
		},
	}
}

func (d *deltaRequests) ackedAll(typeURLs ...string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range typeURLs {
		if !d.acked[u] {
			return false
		}
	}
	return true
}

func (d *deltaRequests) subscribed(typeURL string, names ...string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range names {
		if !slices.Contains(d.subNames[typeURL], n) {
			return false
		}
	}
	return true
}

func (d *deltaRequests) resourcesSent() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.sent)
}

func (d *deltaRequests) nackMessages() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.nacks)
}

// TestRouteAfterListener publishes the listeners before their route tables: the client
// subscribes to the route tables, acknowledges what arrived, and calls Apply only once the
// route tables are there too.
func TestRouteAfterListener(t *testing.T) {
	ctx := testContext(t)
	requests := newDeltaRequests()
	cp := newGenericControlPlane(ctx, requests.callbacks())
	p := testProxy("10.0.0.1")
	full := mustBuild(t, p)
	withoutRoutes := *full
	withoutRoutes.Routes = nil
	cp.set(t, snapshot(t, "1", &withoutRoutes))
	rec := newRecorder()
	startClient(ctx, t, cp.serve(t), rec)

	eventually(t, "the client to take everything but the route tables", func() bool {
		return requests.ackedAll(resource.ListenerType, resource.ClusterType, resource.EndpointType, resource.SecretType) &&
			requests.subscribed(resource.RouteType, "c1/default/gw/8080", "c1/default/gw/8443")
	})
	// Apply comes before the ACK of the response that completes a configuration.
	rec.none(t)

	cp.set(t, snapshot(t, "2", full))
	got := rec.next(t).res
	if diff := diffResources(full, got); diff != "" {
		t.Errorf("applied configuration (-want +got):\n%s", diff)
	}
}

// TestInvalidResource publishes a cluster that fails validation among valid resources: the
// client NACKs it by name, with the reason, and applies the rest.
func TestInvalidResource(t *testing.T) {
	ctx := testContext(t)
	requests := newDeltaRequests()
	cp := newGenericControlPlane(ctx, requests.callbacks())
	p := testProxy("10.0.0.1")
	res := mustBuild(t, p)
	broken := &clusterv3.Cluster{
		Name:                 "c1/default/broken/80",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(-time.Second),
	}
	withBroken := *res
	withBroken.Clusters = append(slices.Clone(res.Clusters), broken)
	cp.set(t, snapshot(t, "1", &withBroken))
	rec := newRecorder()
	startClient(ctx, t, cp.serve(t), rec)

	got := rec.next(t).res
	if diff := diffResources(res, got); diff != "" {
		t.Errorf("applied configuration (-want +got):\n%s", diff)
	}
	var nack string
	eventually(t, "the NACK", func() bool {
		nacks := requests.nackMessages()
		if len(nacks) > 0 {
			nack = nacks[0]
		}
		return nack != ""
	})
	if !strings.Contains(nack, `Cluster "c1/default/broken/80"`) || !strings.Contains(nack, "ConnectTimeout") {
		t.Errorf("NACK %q does not name the cluster and the reason", nack)
	}
}

// TestSubscriptionsFollowListeners removes the HTTPS listener, then brings it back: its
// route table and certificate leave the configuration with it and come back with it, over
// delta and over state of the world.
func TestSubscriptionsFollowListeners(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol.name, func(t *testing.T) {
			ctx := testContext(t)
			cp := newGenericControlPlane(ctx, serverv3.CallbackFuncs{})
			// A server without delta this time, rather than the client pretending.
			var addr string
			if protocol.name == "sotw" {
				addr, _ = (&sotwOnlyADS{ads: cp.ads}).serve(t, "127.0.0.1:0")
			} else {
				addr = cp.serve(t)
			}
			full := testProxy("10.0.0.1")
			httpOnly := testProxy("10.0.0.1")
			httpOnly.Listeners = httpOnly.Listeners[:1]
			cp.set(t, snapshot(t, "1", mustBuild(t, full)))
			rec := newRecorder()
			logs := startClient(ctx, t, addr, rec)
			if got := rec.next(t).res; len(got.Listeners) != 2 {
				t.Fatalf("got %d listeners, want 2", len(got.Listeners))
			}
			protocol.check(t, logs)

			for i, p := range []*ir.Proxy{httpOnly, full} {
				want := mustBuild(t, p)
				cp.set(t, snapshot(t, fmt.Sprint(i+2), want))
				if diff := diffResources(want, rec.next(t).res); diff != "" {
					t.Errorf("with %d listeners (-want +got):\n%s", len(p.Listeners), diff)
				}
			}
		})
	}
}

// TestDeltaResume reconnects to a control plane whose configuration did not change: the
// client resubscribes with the versions it holds, so the server sends nothing again, and
// Apply is not called.
func TestDeltaResume(t *testing.T) {
	ctx := testContext(t)
	cp := newGenericControlPlane(ctx, serverv3.CallbackFuncs{})
	addr, stop := serveGRPC(t, "127.0.0.1:0", adsServer(cp.ads))
	cp.set(t, snapshot(t, "1", mustBuild(t, testProxy("10.0.0.1"))))
	rec := newRecorder()
	logs := startClient(ctx, t, addr, rec)
	rec.next(t)

	stop()
	eventually(t, "the client to notice", func() bool {
		_, ok := logs.line("disconnected from xds server")
		return ok
	})
	// The same cache behind a new server, which sees only the new stream.
	requests := newDeltaRequests()
	serveGRPC(t, addr, adsServer(serverv3.NewServer(ctx, cp.cache, requests.callbacks())))
	eventually(t, "the client to resubscribe and acknowledge", func() bool {
		return requests.ackedAll(resource.ListenerType, resource.ClusterType)
	})
	rec.none(t)
	for typeURL, n := range requests.resourcesSent() {
		if n != 0 {
			t.Errorf("%s: %d resources sent again", typeURL, n)
		}
	}
}
