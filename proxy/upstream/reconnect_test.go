package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// refusingAddr returns a loopback address whose port refuses connections: it was listened
// on a moment ago.
func refusingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// withOutlier turns outlier detection on: an endpoint is ejected after 3 consecutive 5xx
// (connect failures count as 503), whatever share of the endpoints that is.
func withOutlier(cl *clusterv3.Cluster) {
	cl.OutlierDetection = &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(3),
		MaxEjectionPercent: wrapperspb.UInt32(100),
		Interval:           durationpb.New(time.Hour),
	}
}

// TestExchangeReconnect sends requests through the codec's interface to a locality of two
// endpoints, one of which refuses connections: every request is answered by the other, and
// each refusal counts as a connect failure of the refusing endpoint.
func TestExchangeReconnect(t *testing.T) {
	live, dead := newBackend(t, "live"), refusingAddr(t)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x"), assignment("x", loc{eps: eps(dead, live.addr())}))
	for i := range 20 {
		x, err := c.Begin(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		_, body := exchangeGET(t, &x, false)
		if body != "live" || x.Endpoint().Address() != live.addr() {
			t.Errorf("request %d: answered %q by %s, want live by %s", i, body, x.Endpoint().Address(), live.addr())
		}
		x.End()
	}
	s := c.Stats()
	// Round robin sends every other request to the dead endpoint first.
	if s.ConnectFailures != 10 || s.ConnectRetries != 10 || s.Responses["error"] != 0 || s.Responses["2xx"] != 20 || s.RequestsActive != 0 {
		t.Errorf("stats: %d connect failures, %d connect retries, %d errors, %d 2xx, %d active; want 10, 10, 0, 20, 0",
			s.ConnectFailures, s.ConnectRetries, s.Responses["error"], s.Responses["2xx"], s.RequestsActive)
	}
	if d, l := endpointStats(t, c, dead), endpointStats(t, c, live.addr()); d.Failures != 10 || d.Active != 0 || l.Requests != 20 || l.Active != 0 {
		t.Errorf("dead endpoint: %d failures, %d active; live: %d requests, %d active; want 10, 0, 20, 0", d.Failures, d.Active, l.Requests, l.Active)
	}
}

// TestExchangeReconnectNextPriority has the only endpoint of priority 0 refuse connections:
// its requests go to priority 1, and outlier detection, fed with the connect failures,
// ejects it after 3, after which requests go to priority 1 directly.
func TestExchangeReconnectNextPriority(t *testing.T) {
	live, dead := newBackend(t, "live"), refusingAddr(t)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x", withOutlier), assignment("x",
		loc{zone: "us", eps: eps(dead)}, loc{zone: "eu", priority: 1, eps: eps(live.addr())}))
	for i := range 10 {
		x, err := c.Begin(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, body := exchangeGET(t, &x, false); body != "live" {
			t.Errorf("request %d: answered %q, want live", i, body)
		}
		x.End()
	}
	s := c.Stats()
	if s.ConnectFailures != 3 || s.ConnectRetries != 3 || s.Responses["error"] != 0 || s.Ejections["consecutive_5xx"] != 1 {
		t.Errorf("stats: %d connect failures, %d connect retries, %d errors, %d ejections; want 3, 3, 0, 1",
			s.ConnectFailures, s.ConnectRetries, s.Responses["error"], s.Ejections["consecutive_5xx"])
	}
	if d := endpointStats(t, c, dead); !d.Ejected || d.Failures != 3 {
		t.Errorf("dead endpoint: ejected %v after %d failures, want ejected after 3", d.Ejected, d.Failures)
	}
}

// TestExchangeReconnectBound has every endpoint refuse connections: a request tries each of
// them, up to three, then fails with a connect error, every refusal counted as a connect
// failure.
func TestExchangeReconnectBound(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d endpoints", n), func(t *testing.T) {
			addrs := make([]string, n)
			for i := range addrs {
				addrs[i] = refusingAddr(t)
			}
			m := newTestManager(t, Options{})
			c := install(t, m, edsCluster("x"), assignment("x", loc{eps: eps(addrs...)}))
			x, err := c.Begin(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = x.Conn(false)
			if !IsConnectError(err) {
				t.Fatalf("err = %v, want a connect error", err)
			}
			x.Failed(err)
			x.End()
			want := min(n, maxEndpointsTried)
			s := c.Stats()
			if s.ConnectFailures != uint64(want) || s.ConnectRetries != uint64(want-1) || s.Responses["error"] != 1 ||
				s.RequestsActive != 0 || s.ConnectionsActive != 0 {
				t.Errorf("stats: %d connect failures, %d connect retries, %d errors, %d active, %d connections; want %d, %d, 1, 0, 0",
					s.ConnectFailures, s.ConnectRetries, s.Responses["error"], s.RequestsActive, s.ConnectionsActive, want, want-1)
			}
			var tried, active uint64
			for _, e := range s.Endpoints {
				tried += e.Requests
				active += uint64(e.Active)
			}
			if tried != uint64(want) || active != 0 {
				t.Errorf("endpoints tried %d times with %d still active, want %d and 0", tried, active, want)
			}
		})
	}
}

// TestRoundTripReconnect does what TestExchangeReconnectNextPriority does through
// RoundTrip, with a GET and with a POST whose body must arrive whole at the endpoint that
// answers.
func TestRoundTripReconnect(t *testing.T) {
	var got []string
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+string(b))
		_, _ = io.WriteString(w, "live")
	}))
	t.Cleanup(live.Close)
	liveAddr, dead := live.Listener.Addr().String(), refusingAddr(t)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x"), assignment("x",
		loc{zone: "us", eps: eps(dead)}, loc{zone: "eu", priority: 1, eps: eps(liveAddr)}))
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("payload")
		}
		req, err := http.NewRequest(method, "http://placeholder/", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, ep, err := c.RoundTrip(req, nil)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "live" || ep.Address() != liveAddr {
			t.Errorf("%s: %d %q from %s, want 200 live from %s", method, resp.StatusCode, b, ep.Address(), liveAddr)
		}
	}
	if want := []string{"GET ", "POST payload"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the live endpoint got %q, want %q", got, want)
	}
	s := c.Stats()
	if s.ConnectFailures != 2 || s.ConnectRetries != 2 || s.Responses["error"] != 0 || s.RequestsActive != 0 {
		t.Errorf("stats: %d connect failures, %d connect retries, %d errors, %d active; want 2, 2, 0, 0",
			s.ConnectFailures, s.ConnectRetries, s.Responses["error"], s.RequestsActive)
	}
	if d := endpointStats(t, c, dead); d.Failures != 2 || d.Active != 0 {
		t.Errorf("dead endpoint: %d failures, %d active; want 2, 0", d.Failures, d.Active)
	}
}

// TestRoundTripClosedPooledConn stops an endpoint that holds a pooled connection of
// net/http's and at once sends a POST, which net/http will not send twice once written: the
// request's first write finds the connection closed and writes nothing (see reusedConn),
// net/http sends it on a new connection, which is refused, and the request goes to the
// other endpoint with its body whole. Without the check, net/http writes the POST to the
// closed connection now and then, when its read goroutine has not noticed the close yet.
func TestRoundTripClosedPooledConn(t *testing.T) {
	var got atomic.Int64
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); string(b) == "payload" {
			got.Add(1)
		}
	}))
	t.Cleanup(live.Close)
	for i := range 20 {
		stopping := newBackend(t, "stopping")
		m := newTestManager(t, Options{})
		c := install(t, m, edsCluster("x"), assignment("x",
			loc{zone: "us", eps: eps(stopping.addr())}, loc{zone: "eu", priority: 1, eps: eps(live.Listener.Addr().String())}))
		if status, body, _, err := get(t, c, nil); err != nil || status != http.StatusOK || body != "stopping" {
			t.Fatalf("round %d, before the stop: %d %q %v", i, status, body, err)
		}
		stopping.Close() // closes the pooled connection
		req, err := http.NewRequest(http.MethodPost, "http://placeholder/", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := c.RoundTrip(req, nil)
		if err != nil {
			t.Fatalf("round %d: POST after the stop: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got.Load() != 20 {
		t.Errorf("the live endpoint got %d POSTs with their body, want 20", got.Load())
	}
}

// TestHeldBody sends a body again from its start, up to maxReplayBody of it, and defers
// the transport's Close until the request is settled.
func TestHeldBody(t *testing.T) {
	closed := false
	body := &closeFunc{Reader: strings.NewReader(strings.Repeat("x", 10)), close: func() { closed = true }}
	req, err := http.NewRequest(http.MethodPost, "http://placeholder/", body)
	if err != nil {
		t.Fatal(err)
	}
	held := holdBody(req)
	var first [4]byte
	if n, _ := req.Body.Read(first[:]); n != 4 {
		t.Fatalf("read %d bytes", n)
	}
	_ = req.Body.Close()
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(again); string(b) != strings.Repeat("x", 10) || closed {
		t.Errorf("rewound body %q (closed %v), want the whole body, still open", b, closed)
	}
	held.release()
	if !closed {
		t.Error("a Close asked while held was not done on release")
	}

	big := holdBody(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", maxReplayBody+1))))
	if n, _ := io.Copy(io.Discard, big); n != maxReplayBody+1 || big.rewind() {
		t.Errorf("read %d bytes of a body past maxReplayBody, rewound %v; want all, false", n, big.rewind())
	}
}

// closeFunc is a reader whose Close calls close.
type closeFunc struct {
	io.Reader
	close func()
}

func (c *closeFunc) Close() error {
	c.close()
	return nil
}

// TestPickOther checks the endpoints a request goes to after failing to connect: another of
// its priority level while the level has one, the next level's once none is left, and none
// once all were tried.
func TestPickOther(t *testing.T) {
	eps := testEndpoints(3)
	eps[2].spec.priority = 1
	for _, pol := range benchPolicies {
		s := buildSnapshot(&clusterSpec{lb: pol.pol, overprovisioning: 140, panicThreshold: 50}, eps)
		for i := range 100 {
			h := uint64(i)
			if ep := s.pickOther(&h, eps[:1]); ep != eps[1] {
				t.Fatalf("%s: after %s, picked %v, want %s (same priority)", pol.name, eps[0].addr, ep, eps[1].addr)
			}
			if ep := s.pickOther(&h, eps[:2]); ep != eps[2] {
				t.Fatalf("%s: after both of priority 0, picked %v, want %s", pol.name, ep, eps[2].addr)
			}
			if ep := s.pickOther(&h, eps); ep != nil {
				t.Fatalf("%s: after every endpoint, picked %s", pol.name, ep.addr)
			}
		}
	}
}

// TestReusedConn checks the write check of net/http's pooled connections: a request that
// starts on a connection the upstream closed writes nothing, and a connection upgraded by a
// 101 answer is never checked (its peer may stop sending and still read).
func TestReusedConn(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   error
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", errPooledConnClosed},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n", nil},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		received := make(chan string, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			b := make([]byte, 64)
			n, _ := conn.Read(b)
			_, _ = io.WriteString(conn, tc.answer)
			_ = conn.(*net.TCPConn).CloseWrite() // stops sending, still reads
			rest, _ := io.ReadAll(conn)
			received <- string(b[:n]) + string(rest)
		}()
		socket, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn := &reusedConn{Conn: socket, peer: newPeeker(socket)}
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(tc.answer))
		if _, err := io.ReadFull(conn, b); err != nil {
			t.Fatal(err)
		}
		eventually(t, settle, "the upstream's end of sending to arrive", func() bool {
			closed, _ := newPeeker(socket).peek()
			return closed
		})
		_, err = io.WriteString(conn, "next")
		if !errors.Is(err, tc.want) {
			t.Errorf("after %q and the upstream's close: write error %v, want %v", strings.Fields(tc.answer)[1], err, tc.want)
		}
		_ = socket.Close()
		if got := <-received; (got == "GET / HTTP/1.1\r\n\r\nnext") != (tc.want == nil) {
			t.Errorf("after %q the upstream received %q", strings.Fields(tc.answer)[1], got)
		}
		_ = ln.Close()
	}
}

// TestPeekDoesNotAllocate: net/http's pooled connections are looked into before each
// request on them.
func TestPeekDoesNotAllocate(t *testing.T) {
	b := newBackend(t, "b")
	conn, err := net.Dial("tcp", b.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := newPeeker(conn)
	if allocs := testing.AllocsPerRun(100, func() { p.peek() }); allocs != 0 {
		t.Errorf("%v allocations per peek", allocs)
	}
}

// TestDialTCPReconnect opens TCP connections to a locality of two endpoints, one of which
// refuses connections: every connection reaches the other, and each refusal counts as a
// connect failure of the refusing endpoint.
func TestDialTCPReconnect(t *testing.T) {
	live, dead := newBackend(t, "live"), refusingAddr(t)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x"), assignment("x", loc{eps: eps(dead, live.addr())}))
	for i := range 10 {
		conn, err := c.DialTCP(context.Background(), nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if got := conn.RemoteAddr().String(); got != live.addr() {
			t.Errorf("connection %d went to %s, want %s", i, got, live.addr())
		}
		conn.Close()
	}
	s := c.Stats()
	// Round robin sends every other connection to the dead endpoint first.
	if s.ConnectFailures != 5 || s.ConnectRetries != 5 || s.TCPConnectionsActive != 0 {
		t.Errorf("stats: %d connect failures, %d connect retries, %d open; want 5, 5, 0",
			s.ConnectFailures, s.ConnectRetries, s.TCPConnectionsActive)
	}
	if d, l := endpointStats(t, c, dead), endpointStats(t, c, live.addr()); d.Failures != 5 || d.Active != 0 || l.Requests != 10 || l.Active != 0 {
		t.Errorf("dead endpoint: %d failures, %d active; live: %d requests, %d active; want 5, 0, 10, 0", d.Failures, d.Active, l.Requests, l.Active)
	}

	// With every endpoint refusing, the connection fails after trying each once.
	c = install(t, m, edsCluster("y"), assignment("y", loc{eps: eps(dead, refusingAddr(t))}))
	if _, err := c.DialTCP(context.Background(), nil); !IsConnectError(err) {
		t.Fatalf("all endpoints refusing: %v, want a connect error", err)
	}
	if s := c.Stats(); s.ConnectFailures != 2 || s.ConnectRetries != 1 {
		t.Errorf("stats: %d connect failures, %d connect retries; want 2, 1", s.ConnectFailures, s.ConnectRetries)
	}
}
