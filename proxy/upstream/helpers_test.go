package upstream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// backend is a loopback HTTP server that answers with its name and counts requests.
type backend struct {
	*httptest.Server
	name string
	hits atomic.Int64
}

func newBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.WriteString(w, b.name)
	}))
	t.Cleanup(b.Close)
	return b
}

// addr returns the backend's "127.0.0.1:port".
func (b *backend) addr() string { return b.Listener.Addr().String() }

// edsCluster is an EDS cluster as Strait's control plane builds them, changed by mods.
func edsCluster(name string, mods ...func(*clusterv3.Cluster)) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		}},
		ConnectTimeout: durationpb.New(time.Second),
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// loc is one LocalityLbEndpoints of a test assignment.
type loc struct {
	zone     string
	priority uint32
	weight   uint32 // 0: unset
	eps      []lbEndpoint
}

type lbEndpoint struct {
	addr   string
	weight uint32 // 0: unset
	health corev3.HealthStatus
}

func eps(addrs ...string) []lbEndpoint {
	out := make([]lbEndpoint, len(addrs))
	for i, a := range addrs {
		out[i] = lbEndpoint{addr: a}
	}
	return out
}

func assignment(cluster string, locs ...loc) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	for _, l := range locs {
		lle := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: l.zone}, Priority: l.priority}
		if l.weight > 0 {
			lle.LoadBalancingWeight = wrapperspb.UInt32(l.weight)
		}
		for _, e := range l.eps {
			host, port, _ := net.SplitHostPort(e.addr)
			p, _ := strconv.Atoi(port)
			lbe := &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
					}}},
				}},
				HealthStatus: e.health,
			}
			if e.weight > 0 {
				lbe.LoadBalancingWeight = wrapperspb.UInt32(e.weight)
			}
			lle.LbEndpoints = append(lle.LbEndpoints, lbe)
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla
}

func newTestManager(t testing.TB, opts Options) *Manager {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := NewManager(opts)
	t.Cleanup(m.Close)
	return m
}

// install updates m with one cluster and its assignment, failing the test on error.
func install(t testing.TB, m *Manager, c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment, secrets ...*tlsv3.Secret) *Cluster {
	t.Helper()
	var assignments []*endpointv3.ClusterLoadAssignment
	if cla != nil {
		assignments = append(assignments, cla)
	}
	if err := m.Update([]*clusterv3.Cluster{c}, assignments, secrets); err != nil {
		t.Fatalf("update: %v", err)
	}
	return m.Cluster(c.GetName())
}

// get sends a GET through c and returns the status, body and endpoint.
func get(t *testing.T, c *Cluster, hash *uint64) (int, string, *Endpoint, error) {
	t.Helper()
	return getContext(context.Background(), t, c, hash)
}

func getContext(ctx context.Context, t *testing.T, c *Cluster, hash *uint64) (int, string, *Endpoint, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://placeholder/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, ep, err := c.RoundTrip(req, hash)
	if err != nil {
		return 0, "", ep, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), ep, err
}

// settle bounds the wait for something that must happen soon (a health check verdict, a
// connection closing). It is generous because a loaded machine (-race, parallel packages)
// can be slow; only a failing test waits that long.
const settle = 10 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
