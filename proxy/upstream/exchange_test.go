package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// exchangeGET sends a GET over an Exchange's connection and returns the body; the
// connection goes back to the pool.
func exchangeGET(t *testing.T, x *Exchange, fresh bool) (*Conn, string) {
	t.Helper()
	conn, err := x.Conn(fresh)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn.W, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := conn.W.Flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(conn.R, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	x.Responded(resp.StatusCode)
	x.Put(conn)
	return conn, string(body)
}

// TestExchange sends requests through the codec's interface: connections are pooled and
// reused, requests count in the statistics and against the breakers, and a retired pool
// closes its connections.
func TestExchange(t *testing.T) {
	b := newBackend(t, "b")
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x"), assignment("x", loc{eps: eps(b.addr())}))
	if !c.Codec() {
		t.Fatal("a plaintext HTTP/1.1 cluster is not for the codec")
	}
	var first *Conn
	for i := range 3 {
		x, err := c.Begin(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if x.Endpoint().Address() != b.addr() {
			t.Errorf("endpoint %s", x.Endpoint().Address())
		}
		conn, body := exchangeGET(t, &x, false)
		x.End()
		if body != "b" {
			t.Errorf("body %q", body)
		}
		if i == 0 {
			first = conn
		} else if conn != first || !conn.Reused {
			t.Errorf("request %d did not reuse the pooled connection", i)
		}
	}
	s := c.Stats()
	if s.Responses["2xx"] != 3 || s.RequestsActive != 0 || s.ConnectionsActive != 1 || s.Endpoints[0].Requests != 3 {
		t.Errorf("stats: %d 2xx, %d active, %d connections, %d endpoint requests; want 3, 0, 1, 3",
			s.Responses["2xx"], s.RequestsActive, s.ConnectionsActive, s.Endpoints[0].Requests)
	}

	// A new transport (max_connections, which bounds the idle pool, changed) retires the
	// pool: its idle connection closes, and the next request dials.
	c = install(t, m, edsCluster("x", func(cl *clusterv3.Cluster) {
		cl.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{MaxConnections: wrapperspb.UInt32(10), MaxRequests: wrapperspb.UInt32(1)}}}
	}), assignment("x", loc{eps: eps(b.addr())}))
	eventually(t, settle, "the retired pool's connection to close", func() bool { return c.Stats().ConnectionsActive == 0 })
	x, err := c.Begin(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Begin(context.Background(), time.Time{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("second request with max_requests 1: %v, want an overflow", err)
	}
	if conn, _ := exchangeGET(t, &x, false); conn.Reused {
		t.Error("a connection of the retired pool was reused")
	}
	x.End()
}

// TestIdlePoolTimeout drops connections idle past the timeout instead of reusing them.
func TestIdlePoolTimeout(t *testing.T) {
	var p idlePool
	old := &Conn{addr: "a", R: bufio.NewReader(strings.NewReader(""))}
	old.Conn = &closeRecorder{}
	if !p.put(old, 2, time.Minute) {
		t.Fatal("put refused")
	}
	old.idleAt = time.Now().Add(-2 * time.Minute)
	if got := p.get("a", time.Minute); got != nil {
		t.Error("a connection idle past the timeout was reused")
	}
	if !old.Conn.(*closeRecorder).closed {
		t.Error("the expired connection was not closed")
	}
	fresh := &Conn{addr: "a", Conn: &closeRecorder{}}
	p.put(fresh, 2, time.Minute)
	p.put(&Conn{addr: "a", Conn: &closeRecorder{}}, 2, time.Minute)
	if p.put(&Conn{addr: "a", Conn: &closeRecorder{}}, 2, time.Minute) {
		t.Error("the pool took more than its maximum")
	}
	p.close()
	if !fresh.Conn.(*closeRecorder).closed {
		t.Error("close left an idle connection open")
	}
}

// closeRecorder is a connection that only records being closed.
type closeRecorder struct {
	net.Conn
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

// TestBeginCanceled: a request waiting for a connection slot stops waiting when its context
// ends (an HTTP/2 stream reset), leaves the line, and takes no slot.
func TestBeginCanceled(t *testing.T) {
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x", func(c *clusterv3.Cluster) {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections: wrapperspb.UInt32(1), MaxPendingRequests: wrapperspb.UInt32(10)}}}
	}), assignment("x", loc{eps: eps(refusingAddr(t))}))
	held, err := c.Begin(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Begin(ctx, time.Time{})
		done <- err
	}()
	eventually(t, settle, "a request waiting for the slot", func() bool { return c.Stats().RequestsPending == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled wait: %v, want context.Canceled", err)
		}
	case <-time.After(settle):
		t.Fatal("still waiting for the slot after its context ended")
	}
	if s := c.Stats(); s.RequestsPending != 0 || s.RequestsActive != 1 {
		t.Errorf("after the cancel: %d pending, %d active; want 0, 1", s.RequestsPending, s.RequestsActive)
	}
	held.End()
	x, err := c.Begin(context.Background(), time.Time{})
	if err != nil {
		t.Fatalf("the slot after the first request ended: %v", err)
	}
	x.End()
}
