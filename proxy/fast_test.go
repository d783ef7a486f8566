package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/proxy"
)

// rawBackend is an upstream that speaks raw bytes: serve runs per connection, with the
// connection's number (from 1).
type rawBackend struct {
	*backend
	conns atomic.Int32
}

func startRaw(t testing.TB, serve func(n int, conn net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{backend: &backend{port: ln.Addr().(*net.TCPAddr).Port, srv: &http.Server{ReadHeaderTimeout: time.Second}}}
	var wg sync.WaitGroup
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(rb.conns.Add(1))
			wg.Go(func() {
				defer conn.Close()
				serve(n, conn, bufio.NewReader(conn))
			})
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return rb
}

// readHead reads a request head as the raw backend sees it.
func readHead(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, req.Body)
	return req, nil
}

// client is one keep-alive connection to the proxy that sends raw requests.
type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialProxy(t *testing.T, port int) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
}

// read reads the final response to a request of method, skipping interim ones, and
// returns it with its body.
func (c *client) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp := c.readInterim(method)
	for resp.StatusCode < 200 {
		resp = c.readInterim(method)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(body)
}

// readInterim reads the next response head, interim or final.
func (c *client) readInterim(method string) *http.Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// TestFastPathFraming answers with every kind of response framing on one upstream
// connection, and checks that the client gets each body whole on one keep-alive connection.
func TestFastPathFraming(t *testing.T) {
	answers := map[string]string{
		"/length":  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
		"/head":    "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
		"/204":     "HTTP/1.1 204 No Content\r\n\r\n",
		"/304":     "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\nEtag: \"x\"\r\n\r\n",
		"/hints":   "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/close":   "HTTP/1.1 200 OK\r\n\r\nuntil the end",
	}
	up := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		for {
			req, err := readHead(br)
			if err != nil {
				return
			}
			_, _ = io.WriteString(conn, answers[req.URL.Path])
			if req.URL.Path == "/close" {
				return
			}
		}
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, up.backend)
	c := dialProxy(t, port)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
		length       int64
		chunked      bool
	}{
		{method: "GET", path: "/length", status: 200, body: "hello", length: 5},
		{method: "GET", path: "/chunked", status: 200, body: "abcde", length: -1, chunked: true},
		{method: "HEAD", path: "/head", status: 200, length: 42},
		{method: "GET", path: "/204", status: 204, length: -1},
		{method: "GET", path: "/304", status: 304, length: 7},
		{method: "GET", path: "/hints", status: 200, body: "ok", length: 2},
		{method: "GET", path: "/close", status: 200, body: "until the end", length: -1, chunked: true},
		{method: "GET", path: "/length", status: 200, body: "hello", length: 5},
	} {
		c.send(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.read(tc.method)
		if resp.StatusCode != tc.status || body != tc.body || resp.Close {
			t.Errorf("%s %s: %d %q (close %v), want %d %q on a kept connection", tc.method, tc.path, resp.StatusCode, body, resp.Close, tc.status, tc.body)
		}
		length := resp.Header.Get("Content-Length")
		if (tc.length >= 0 && length != fmt.Sprint(tc.length)) || (tc.length < 0 && length != "") {
			t.Errorf("%s %s: Content-Length %q, want %d", tc.method, tc.path, length, tc.length)
		}
		if chunked := len(resp.TransferEncoding) > 0; chunked != tc.chunked {
			t.Errorf("%s %s: chunked %v, want %v", tc.method, tc.path, chunked, tc.chunked)
		}
	}
	if n := up.conns.Load(); n != 2 {
		t.Errorf("upstream connections: %d, want 2 (one reused until the close-delimited body)", n)
	}
}

// TestFastPathHTTP10 answers an HTTP/1.0 client whose response has no length by closing
// the connection after the body, and keeps an HTTP/1.0 keep-alive connection open.
func TestFastPathHTTP10(t *testing.T) {
	up := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		for {
			req, err := readHead(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/chunked" {
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
				continue
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, up.backend)
	c := dialProxy(t, port)
	c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body := c.read("GET")
	if body != "ok" || resp.Close {
		t.Errorf("HTTP/1.0 keep-alive: %q, close %v", body, resp.Close)
	}
	c.send("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body = c.read("GET")
	if body != "hi" || !resp.Close || len(resp.TransferEncoding) > 0 {
		t.Errorf("HTTP/1.0 without a length: %q, close %v, %v; want the body then the connection closed", body, resp.Close, resp.TransferEncoding)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after a close-delimited answer: %v", err)
	}
}

// TestFastPathPipelining sends requests back to back, bodies included, in one write and
// gets the answers in order.
func TestFastPathPipelining(t *testing.T) {
	b := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, b)
	c := dialProxy(t, port)
	c.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /1 ", "POST /2 body", "POST /3 chunked", "GET /4 "} {
		if _, body := c.read("GET"); body != want {
			t.Errorf("got %q, want %q", body, want)
		}
	}
}

// TestFastPathForwarding checks what the upstream receives: forwarding headers, a new
// trace hop, hop-by-hop fields removed, and the Host without its port.
func TestFastPathForwarding(t *testing.T) {
	got := make(chan *http.Request, 1)
	b := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, b)
	c := dialProxy(t, port)
	c.send("GET /p?q=1 HTTP/1.1\r\nHost: web.example:8080\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: X-Private\r\nX-Private: s\r\n" +
		"Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n")
	resp, _ := c.read("GET")
	r := <-got
	for k, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  "web.example:8080",
		"X-Forwarded-Proto": "http",
		"X-Private":         "",
	} {
		if v := r.Header.Get(k); v != want {
			t.Errorf("upstream %s = %q, want %q", k, v, want)
		}
	}
	if tp := r.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-0af7651916cd43dd8448eb211c80319c-") || strings.Contains(tp, "b7ad6b7169203331") {
		t.Errorf("traceparent %q: want the same trace with the proxy's span", tp)
	}
	if r.Host != "web.example:8080" || r.RequestURI != "/p?q=1" { // the Host as the client sent it
		t.Errorf("upstream got Host %q target %q", r.Host, r.RequestURI)
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response fields forwarded: %v", resp.Header)
	}
}

// TestFastPathUpstreamReuse sends requests one after another on several client
// connections; they share one upstream connection.
func TestFastPathUpstreamReuse(t *testing.T) {
	up := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		for {
			if _, err := readHead(br); err != nil {
				return
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, up.backend)
	for range 3 {
		c := dialProxy(t, port)
		for range 5 {
			c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream connections: %d, want 1", n)
	}
}

// TestFastPathStaleUpstream has the upstream close each connection after one response,
// without saying so: a GET on the closed pooled connection is resent on a new one, a POST
// finds it closed before sending, and the client never sees a failure.
func TestFastPathStaleUpstream(t *testing.T) {
	up := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err != nil {
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Closing at once can race with the proxy's next write; wait for it to pool the
		// connection first, as an upstream idle timeout would.
		time.Sleep(50 * time.Millisecond)
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, up.backend)
	c := dialProxy(t, port)
	for i := range 4 {
		// A POST cannot be resent: the proxy checks the pooled connection before using it.
		req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
		if i%2 == 1 {
			req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"
		}
		c.send(req)
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := up.conns.Load(); n != 4 {
		t.Errorf("upstream connections: %d, want 4", n)
	}
}

// TestFastPathUpstreamDown answers 503 when the upstream refuses connections, and keeps
// the client's connection.
func TestFastPathUpstreamDown(t *testing.T) {
	b := startHandler(t, func(http.ResponseWriter, *http.Request) {})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, b)
	b.stop()
	c := dialProxy(t, port)
	for range 2 {
		c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, _ := c.read("GET"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	}
}

// TestFastPathHandover sends, on one connection, a request the fast path serves and then
// one only net/http serves (Expect: 100-continue): both are answered.
func TestFastPathHandover(t *testing.T) {
	b := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s", body)
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, b)
	c := dialProxy(t, port)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if resp := c.readInterim("POST"); resp.StatusCode != http.StatusContinue {
		t.Fatalf("status %d, want 100 Continue before the body is sent", resp.StatusCode)
	}
	c.send("body")
	if resp, body := c.read("POST"); resp.StatusCode != 200 || body != "body" {
		t.Fatalf("after 100 Continue: %d %q", resp.StatusCode, body)
	}
	c.send("GET /none HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("next request on the handed-over connection: %d", resp.StatusCode)
	}
}

// TestFastPathObservability checks the access log line and the request metric of a request
// the fast path served, and the 500 of a backend that did not resolve.
func TestFastPathObservability(t *testing.T) {
	b := startHandler(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	port := freePort(t)
	manifests := gateway("web", "HTTP", port, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: nowhere, port: 80}]
  - backendRefs: [{name: svc0, port: 80}]
---
` + service("svc0", false, "", b)
	var log safeBuffer
	reg := prometheus.NewRegistry()
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}}, func(o *proxy.Options) {
		o.AccessLog = slog.New(slog.NewJSONHandler(&log, nil))
		o.Registerer = reg
	})
	c := dialProxy(t, port)
	c.send("GET /tea?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.send("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("unresolved backend: status %d, want 500", resp.StatusCode)
	}
	var line struct {
		Method, Path, Protocol, Route, Cluster, Upstream, Client string
		Status, Attempts                                         int
	}
	if err := json.Unmarshal([]byte(strings.SplitN(log.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("access log %q: %v", log.String(), err)
	}
	if line.Method != "GET" || line.Path != "/tea" || line.Protocol != "HTTP/1.1" || line.Status != http.StatusTeapot ||
		line.Route == "" || line.Cluster == "" || line.Upstream != fmt.Sprintf("127.0.0.1:%d", b.port) || line.Attempts != 1 ||
		!strings.HasPrefix(line.Client, "127.0.0.1:") {
		t.Errorf("access log line %+v", line)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "strait_proxy_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					counted[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if counted["418"] != 1 || counted["500"] != 1 {
		t.Errorf("strait_proxy_requests_total by code: %v, want one 418 and one 500", counted)
	}
}

// safeBuffer is a bytes.Buffer for a writer and a reader on different goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFastPathDrainIdle stops a proxy with an idle keep-alive connection: the connection is
// closed without waiting for the drain timeout.
func TestFastPathDrainIdle(t *testing.T) {
	port, e := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, startEcho(t, "us", "web-1"))
	c := dialProxy(t, port)
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	start := time.Now()
	for _, stop := range e.stop {
		stop()
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection after the drain: %v, want it closed", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("idle connection closed after %v: the drain waited for it", d)
	}
}

// TestEarlyAnswer has the upstream answer 413 to a large upload after its head and close
// without reading the body: the client gets the 413 on both fast paths (HTTP/1.1, and
// HTTP/2 streams), not a 503, and an HTTP/1.1 client's connection then closes, the rest of
// its body unread. (Through net/http, whose Transport races the failed body write against
// reading the answer, the client gets the 413 or a 503.)
func TestEarlyAnswer(t *testing.T) {
	const answer = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n"
	up := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the end of the head
				_, _ = io.WriteString(conn, answer)
				return // closing with the body unread resets the connection
			}
		}
	})
	const size = 16 << 20
	port, _ := routeEnv(t, benchRoutes[0].rule, up.backend)
	c := dialProxy(t, port)
	c.send(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size))
	go func() { _, _ = c.conn.Write(make([]byte, size)) }() // fails once the proxy closes
	resp, body := c.read("POST")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too big\n" {
		t.Fatalf("answer %d %q, want the upstream's 413", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Error("the connection stays open with the request's body unread")
	}

	resp, data := h2Do(t, h2cClient(), "POST", url(port, "/upload"), bytes.NewReader(make([]byte, size)), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(data) != "too big\n" {
		t.Errorf("HTTP/2: answer %d %q, want the upstream's 413", resp.StatusCode, data)
	}
}
