package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRoundTripWeightedRoundRobin(t *testing.T) {
	m := newTestManager(t, Options{})
	bs := []*backend{newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")}
	cla := assignment("web", loc{eps: []lbEndpoint{{addr: bs[0].addr(), weight: 1}, {addr: bs[1].addr(), weight: 2}, {addr: bs[2].addr(), weight: 3}}})
	c := install(t, m, edsCluster("web"), cla)
	for range 600 {
		if status, _, _, err := get(t, c, nil); err != nil || status != http.StatusOK {
			t.Fatalf("status %d, error %v", status, err)
		}
	}
	// Whole periods of the smooth schedule: counts are exact.
	for i, want := range []int64{100, 200, 300} {
		if got := bs[i].hits.Load(); got != want {
			t.Errorf("backend %s (weight %d): %d requests, want %d", bs[i].name, i+1, got, want)
		}
	}
	if s := c.Stats(); s.Responses["2xx"] != 600 || s.RequestsActive != 0 {
		t.Errorf("stats: %d 2xx, %d active; want 600, 0", s.Responses["2xx"], s.RequestsActive)
	}
}

func TestRoundTripLocalityWeights(t *testing.T) {
	m := newTestManager(t, Options{})
	east, west := newBackend(t, "east"), newBackend(t, "west")
	c := install(t, m, edsCluster("split", func(c *clusterv3.Cluster) {
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
			LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
		}}
	}), assignment("split",
		loc{zone: "east", weight: 90, eps: eps(east.addr())},
		loc{zone: "west", weight: 10, eps: eps(west.addr())}))
	for range 100 {
		if _, _, _, err := get(t, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	if east.hits.Load() != 90 || west.hits.Load() != 10 {
		t.Errorf("east %d, west %d; want 90, 10", east.hits.Load(), west.hits.Load())
	}
}

// TestRoundTripLeastRequest holds 8 requests on one of four backends; the power of two
// choices then sends it a new request only when both draws land on it (1/16).
func TestRoundTripLeastRequest(t *testing.T) {
	m := newTestManager(t, Options{})
	release := make(chan struct{})
	slow := newBackend(t, "slow")
	var held sync.WaitGroup
	held.Add(8)
	slow.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Done()
			<-release
			return
		}
		slow.hits.Add(1)
	})
	others := []*backend{newBackend(t, "b"), newBackend(t, "c"), newBackend(t, "d")}
	c := install(t, m, edsCluster("lr", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST }),
		assignment("lr", loc{eps: eps(slow.addr(), others[0].addr(), others[1].addr(), others[2].addr())}))

	// Eight clients each send /hold until theirs lands on the slow backend, which keeps it.
	var clients sync.WaitGroup
	for range 8 {
		clients.Go(func() {
			for {
				req, _ := http.NewRequest(http.MethodGet, "http://x/hold", nil)
				resp, ep, err := c.RoundTrip(req, nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if ep.Address() == slow.addr() {
					return
				}
			}
		})
	}
	held.Wait()
	const n = 800
	for range n {
		if _, _, _, err := get(t, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	clients.Wait()
	if share := float64(slow.hits.Load()) / n; share > 0.11 {
		t.Errorf("the backend with 8 requests in flight got %.3f of new requests, want ~1/16", share)
	}
}

func TestRoundTripRingHashAffinity(t *testing.T) {
	m := newTestManager(t, Options{})
	var addrs []string
	for _, name := range []string{"a", "b", "c", "d"} {
		addrs = append(addrs, newBackend(t, name).addr())
	}
	c := install(t, m, edsCluster("sticky", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_RING_HASH }),
		assignment("sticky", loc{eps: eps(addrs...)}))
	seen := map[string]bool{}
	for key := range uint64(50) {
		h := key * 0x9e3779b97f4a7c15
		_, first, _, err := get(t, c, &h)
		if err != nil {
			t.Fatal(err)
		}
		seen[first] = true
		for range 5 {
			if _, again, _, _ := get(t, c, &h); again != first {
				t.Fatalf("hash %x went to %s, then %s", h, first, again)
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("50 hashes reached only %v", seen)
	}
}

// TestFailoverAfterOutlierDetection kills the priority 0 (local) backends. No request
// fails: one refused by a local backend goes to another endpoint (see reconnect). Each
// local backend refuses consecutive_gateway_failure (2) connections before it is ejected;
// from then on priority 0 has no health and priority 1 takes all requests, until
// base_ejection_time (30s) runs out.
func TestFailoverAfterOutlierDetection(t *testing.T) {
	m := newTestManager(t, Options{})
	local := []*backend{newBackend(t, "local-1"), newBackend(t, "local-2")}
	remote := []*backend{newBackend(t, "remote-1"), newBackend(t, "remote-2")}
	c := install(t, m, edsCluster("failover", func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			ConsecutiveGatewayFailure:          wrapperspb.UInt32(2),
			EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
			// Envoy's default (10%) would eject no more than one of these four endpoints.
			MaxEjectionPercent: wrapperspb.UInt32(100),
			BaseEjectionTime:   durationpb.New(30 * time.Second),
		}
	}), assignment("failover",
		loc{zone: "local", eps: eps(local[0].addr(), local[1].addr())},
		loc{zone: "remote", priority: 1, eps: eps(remote[0].addr(), remote[1].addr())}))

	for range 20 {
		if _, body, _, err := get(t, c, nil); err != nil || !strings.HasPrefix(body, "local") {
			t.Fatalf("healthy priority 0: got %q, %v", body, err)
		}
	}
	local[0].Close()
	local[1].Close()

	failures := 0
	for i := range 40 {
		_, body, _, err := get(t, c, nil)
		switch {
		case err != nil:
			failures++
		case !strings.HasPrefix(body, "remote"):
			t.Fatalf("request %d answered by %q", i, body)
		}
	}
	s := c.Stats()
	if failures != 0 || s.ConnectFailures != 4 || s.ConnectRetries != 4 {
		t.Errorf("after the local backends died: %d requests failed, %d connect failures, %d connect retries; want 0, 4, 4",
			failures, s.ConnectFailures, s.ConnectRetries)
	}
	if len(s.Priorities) != 2 || s.Priorities[0].Healthy != 0 || s.Priorities[1].Healthy != 100 {
		t.Errorf("priority load %+v, want 0/100", s.Priorities)
	}
	if s.Ejections["consecutive_gateway_failure"] != 2 {
		t.Errorf("ejections %v, want 2 for consecutive gateway failures", s.Ejections)
	}
}

func TestCircuitBreakers(t *testing.T) {
	release := make(chan struct{})
	blocking := newBackend(t, "blocking")
	var arrived sync.WaitGroup
	blocking.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release
	})
	withBreakers := func(conns, pending, requests uint32) func(*clusterv3.Cluster) {
		return func(c *clusterv3.Cluster) {
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
				MaxConnections:     wrapperspb.UInt32(conns),
				MaxPendingRequests: wrapperspb.UInt32(pending),
				MaxRequests:        wrapperspb.UInt32(requests),
			}}}
		}
	}
	m := newTestManager(t, Options{})
	var wg sync.WaitGroup
	defer func() {
		close(release)
		wg.Wait()
	}()

	// One connection, one pending request: a third concurrent request overflows.
	c := install(t, m, edsCluster("pending", withBreakers(1, 1, 100)), assignment("pending", loc{eps: eps(blocking.addr())}))
	arrived.Add(1)
	wg.Go(func() { _, _, _, _ = get(t, c, nil) })
	arrived.Wait()
	arrived.Add(1) // the pending request arrives once released
	wg.Go(func() { _, _, _, _ = get(t, c, nil) })
	eventually(t, settle, "a request pending", func() bool { return c.Stats().RequestsPending == 1 })
	_, _, _, err := get(t, c, nil)
	if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), "max_pending_requests") {
		t.Errorf("third request: %v, want a max_pending_requests overflow", err)
	}
	if s := c.Stats(); s.Breakers.PendingOverflow != 1 || s.RequestsActive != 2 {
		t.Errorf("stats %+v, %d active; want 1 pending overflow, 2 active", s.Breakers, s.RequestsActive)
	}

	// max_requests refuses at once.
	c2 := install(t, m, edsCluster("requests", withBreakers(10, 10, 1)), assignment("requests", loc{eps: eps(blocking.addr())}))
	arrived.Add(1)
	wg.Go(func() { _, _, _, _ = get(t, c2, nil) })
	eventually(t, settle, "a request in flight", func() bool { return c2.Stats().RequestsActive == 1 })
	if _, _, _, err := get(t, c2, nil); !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), "max_requests") {
		t.Errorf("second request: %v, want a max_requests overflow", err)
	}
}

// h2cBackend serves HTTP/2 with prior knowledge through golang.org/x/net/http2's own server
// (not net/http's bundled copy), answering with the protocol it saw.
func h2cBackend(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{} //nolint:staticcheck // SA1019: the point is to test against x/net's server, not net/http's.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.Proto) })
	var conns sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { srv.ServeConn(conn, &http2.ServeConnOpts{Handler: handler}) }) //nolint:staticcheck // SA1019: as above.
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func explicitHTTP2(c *clusterv3.Cluster) {
	opts, err := anypb.New(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		},
	}})
	if err != nil {
		panic(err)
	}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsName: opts}
}

// TestH2C sends a burst of concurrent requests to a cold HTTP/2 cluster: they are streams on
// one connection, dialed once, also when max_connections is 1 (the duplicate dials of the
// burst used to overflow it and fail the requests).
func TestH2C(t *testing.T) {
	for _, maxConns := range []uint32{0, 1} {
		m := newTestManager(t, Options{})
		c := install(t, m, edsCluster("grpc", explicitHTTP2, func(c *clusterv3.Cluster) {
			if maxConns > 0 {
				c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxConnections: wrapperspb.UInt32(maxConns)}}}
			}
		}), assignment("grpc", loc{eps: eps(h2cBackend(t))}))
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, proto, _, err := get(t, c, nil); err != nil || proto != "HTTP/2.0" {
					t.Errorf("max_connections %d: got %q, %v; want HTTP/2.0", maxConns, proto, err)
				}
			})
		}
		wg.Wait()
		// Streams share a connection.
		if s := c.Stats(); s.ConnectionsActive != 1 || !s.HTTP2 || s.Breakers.ConnectionsOverflow != 0 {
			t.Errorf("max_connections %d: %d connections (http2 %v), %d overflows; want 1, none",
				maxConns, s.ConnectionsActive, s.HTTP2, s.Breakers.ConnectionsOverflow)
		}
	}
}

// TestWebSocketUpgrade checks that a 101 response's body is the upgraded connection, both
// ways, and that the request stays in flight until it is closed.
func TestWebSocketUpgrade(t *testing.T) {
	ws := newBackend(t, "ws")
	ws.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo
	})
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("ws"), assignment("ws", loc{eps: eps(ws.addr())}))
	req, _ := http.NewRequest(http.MethodGet, "http://x/chat", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, _, err := c.RoundTrip(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not an io.ReadWriteCloser", resp.Body)
	}
	if _, err := io.WriteString(rw, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(rw).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	if active := c.Stats().RequestsActive; active != 1 {
		t.Errorf("%d requests active during the upgrade, want 1", active)
	}
	rw.Close()
	if active := c.Stats().RequestsActive; active != 0 {
		t.Errorf("%d requests active after close, want 0", active)
	}
}

func TestDialTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("tcp", func(c *clusterv3.Cluster) {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxConnections: wrapperspb.UInt32(1)}}}
	}), assignment("tcp", loc{eps: eps(ln.Addr().String())}))

	conn, err := c.DialTCP(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.(*net.TCPConn); !ok {
		t.Fatalf("DialTCP returned %T, want a plain *net.TCPConn", conn)
	}
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DialTCP(context.Background(), nil); !errors.Is(err, ErrOverflow) {
		t.Errorf("second connection: %v, want a max_connections overflow", err)
	}
	conn.Close()
	conn, err = c.DialTCP(context.Background(), nil)
	if err != nil {
		t.Fatalf("after closing the first connection: %v", err)
	}
	conn.Close()
}

// TestClientCancelDoesNotCount: a client that goes away says nothing about the upstream,
// but a deadline that runs out (the route's timeout) is the upstream's failure.
func TestClientCancelDoesNotCount(t *testing.T) {
	slow := newBackend(t, "slow")
	slow.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("slow", func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:                    wrapperspb.UInt32(1),
			ConsecutiveGatewayFailure:          wrapperspb.UInt32(1),
			EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
			MaxEjectionPercent:                 wrapperspb.UInt32(100),
		}
	}), assignment("slow", loc{eps: eps(slow.addr())}))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, _, _, err := getContext(ctx, t, c, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled request: %v", err)
	}
	if s := c.Stats(); s.Endpoints[0].Ejected || s.Responses["error"] != 0 {
		t.Fatalf("a canceled request counted against the upstream: %+v", s.Endpoints[0])
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, _, err := getContext(ctx, t, c, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed out request: %v", err)
	}
	if s := c.Stats(); !s.Endpoints[0].Ejected || s.Responses["error"] != 1 {
		t.Errorf("a timeout did not count as a gateway failure: %+v", s.Endpoints[0])
	}
}

// TestStateSurvivesUpdate ejects an endpoint, then updates the cluster: the cluster, the
// endpoint and its ejection stay; an endpoint that leaves and comes back starts afresh.
func TestStateSurvivesUpdate(t *testing.T) {
	bad := newBackend(t, "bad")
	bad.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	good := newBackend(t, "good")
	outlier := func(c *clusterv3.Cluster) {
		c.OutlierDetection = &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(1), MaxEjectionPercent: wrapperspb.UInt32(50)}
	}
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("web", outlier), assignment("web", loc{eps: eps(bad.addr(), good.addr())}))
	var goodEndpoint *Endpoint
	for range 4 {
		if _, body, ep, _ := get(t, c, nil); body == "good" {
			goodEndpoint = ep
		}
	}
	if !endpointStats(t, c, bad.addr()).Ejected {
		t.Fatal("the failing endpoint was not ejected")
	}

	third := newBackend(t, "third")
	cla := assignment("web", loc{eps: []lbEndpoint{{addr: bad.addr(), weight: 5}, {addr: good.addr(), weight: 2}, {addr: third.addr()}}})
	if c2 := install(t, m, edsCluster("web", outlier, func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_RANDOM }), cla); c2 != c {
		t.Fatal("the update replaced the cluster")
	}
	if !endpointStats(t, c, bad.addr()).Ejected {
		t.Error("the ejection did not survive the update")
	}
	for range 20 {
		_, body, ep, err := get(t, c, nil)
		if err != nil || body == "bad" {
			t.Fatalf("got %q, %v from an updated cluster with bad ejected", body, err)
		}
		if body == "good" && ep != goodEndpoint {
			t.Error("the update replaced the endpoint")
		}
	}

	install(t, m, edsCluster("web", outlier), assignment("web", loc{eps: eps(good.addr())}))
	install(t, m, edsCluster("web", outlier), assignment("web", loc{eps: eps(bad.addr(), good.addr())}))
	if endpointStats(t, c, bad.addr()).Ejected {
		t.Error("an endpoint that left and came back kept its ejection")
	}
}

func TestRemovedClusterCloses(t *testing.T) {
	m := newTestManager(t, Options{})
	b := newBackend(t, "b")
	c := install(t, m, edsCluster("old"), assignment("old", loc{eps: eps(b.addr())}))
	if _, _, _, err := get(t, c, nil); err != nil {
		t.Fatal(err)
	}
	if n := c.Stats().ConnectionsActive; n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
	if err := m.Update(nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if m.Cluster("old") != nil {
		t.Error("removed cluster still listed")
	}
	if _, _, _, err := get(t, c, nil); !errors.Is(err, ErrClusterClosed) {
		t.Errorf("request to a removed cluster: %v", err)
	}
	eventually(t, settle, "idle connections closed", func() bool { return c.Stats().ConnectionsActive == 0 })
}

// TestStageKeepsRemovedClusters: a staged update keeps removed clusters serving until they
// are retired, and one brought back meanwhile survives the retirement.
func TestStageKeepsRemovedClusters(t *testing.T) {
	m := newTestManager(t, Options{})
	b := newBackend(t, "b")
	blue := install(t, m, edsCluster("blue"), assignment("blue", loc{eps: eps(b.addr())}))
	green, greenCLA := edsCluster("green"), assignment("green", loc{eps: eps(b.addr())})

	retire, err := m.Stage([]*clusterv3.Cluster{green}, []*endpointv3.ClusterLoadAssignment{greenCLA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Cluster("blue") != blue || m.Cluster("green") == nil {
		t.Fatal("staged update: blue and green must both be reachable until retire")
	}
	if status, _, _, err := get(t, blue, nil); err != nil || status != 200 {
		t.Fatalf("request to a staged-out cluster: %d, %v", status, err)
	}
	retire()
	if m.Cluster("blue") != nil {
		t.Error("retired cluster still listed")
	}
	if _, _, _, err := get(t, blue, nil); !errors.Is(err, ErrClusterClosed) {
		t.Errorf("request to a retired cluster: %v", err)
	}

	// green is removed, then brought back before the first retire runs: it stays.
	retireGreen, err := m.Stage(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := m.Cluster("green")
	if _, err := m.Stage([]*clusterv3.Cluster{green}, []*endpointv3.ClusterLoadAssignment{greenCLA}, nil); err != nil {
		t.Fatal(err)
	}
	retireGreen()
	if m.Cluster("green") != kept {
		t.Fatal("a cluster brought back before retire was dropped")
	}
	if status, _, _, err := get(t, kept, nil); err != nil || status != 200 {
		t.Errorf("request to the kept cluster: %d, %v", status, err)
	}
}

func TestNoEndpoints(t *testing.T) {
	m := newTestManager(t, Options{})
	// No assignment yet: the cluster exists and refuses requests.
	c := install(t, m, edsCluster("empty"), nil)
	if _, _, _, err := get(t, c, nil); !errors.Is(err, ErrNoHealthyUpstream) {
		t.Errorf("got %v, want ErrNoHealthyUpstream", err)
	}
	if n := c.Stats().NoHealthyUpstream; n != 1 {
		t.Errorf("no healthy upstream counted %d times, want 1", n)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newTestManager(t, Options{Registerer: reg})
	b := newBackend(t, "b")
	c := install(t, m, edsCluster("web"), assignment("web", loc{eps: eps(b.addr())}))
	for range 3 {
		if _, _, _, err := get(t, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var requests float64
	for _, f := range families {
		if f.GetName() != "strait_upstream_requests_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cluster"] == "web" && labels["class"] == "2xx" {
				requests = metric.GetCounter().GetValue()
			}
		}
	}
	if requests != 3 {
		t.Errorf("strait_upstream_requests_total{cluster=web,class=2xx} = %v, want 3", requests)
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, proto := range []string{"http1", "h2c"} {
		b.Run(proto, func(b *testing.B) {
			m := newTestManager(b, Options{})
			var c *Cluster
			if proto == "h2c" {
				c = install(b, m, edsCluster("bench", explicitHTTP2), assignment("bench", loc{eps: eps(h2cBackend(b))}))
			} else {
				c = install(b, m, edsCluster("bench"), assignment("bench", loc{eps: eps(newBackend(b, "b").addr())}))
			}
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
				resp, _, err := c.RoundTrip(req, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
