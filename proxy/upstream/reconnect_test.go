package upstream

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
		x, err := c.Begin(time.Time{})
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
		x, err := c.Begin(time.Time{})
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

// TestExchangeReconnectBound has every endpoint refuse connections: a request tries three
// of them, then fails with a connect error.
func TestExchangeReconnectBound(t *testing.T) {
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("x"), assignment("x", loc{eps: eps(refusingAddr(t), refusingAddr(t), refusingAddr(t), refusingAddr(t))}))
	x, err := c.Begin(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Conn(false)
	if !IsConnectError(err) {
		t.Fatalf("err = %v, want a connect error", err)
	}
	x.Failed(err)
	x.End()
	s := c.Stats()
	if s.ConnectFailures != 3 || s.ConnectRetries != 2 || s.Responses["error"] != 1 || s.RequestsActive != 0 {
		t.Errorf("stats: %d connect failures, %d connect retries, %d errors, %d active; want 3, 2, 1, 0",
			s.ConnectFailures, s.ConnectRetries, s.Responses["error"], s.RequestsActive)
	}
	var tried, active uint64
	for _, e := range s.Endpoints {
		tried += e.Requests
		active += uint64(e.Active)
	}
	if tried != 3 || active != 0 {
		t.Errorf("endpoints tried %d times with %d still active, want 3 and 0", tried, active)
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
