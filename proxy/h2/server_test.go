package h2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
)

// testServer serves h on a loopback listener until the test ends.
type testServer struct {
	srv  *Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func startServer(t *testing.T, cfg *Config, h Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: &Server{Config: cfg, Handler: h}, ln: ln, addr: ln.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				err := ts.srv.ServeConn(ctx, nc, nil)
				ts.mu.Lock()
				ts.errs = append(ts.errs, err)
				ts.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		cancel()
		ts.wg.Wait()
	})
	return ts
}

// client is an x/net/http2 Transport speaking h2c to ts, one connection unless the server
// closes it.
func (ts *testServer) client() *http.Client {
	// x/net's Transport, deprecated for net/http's own (the same code, bundled), is the
	// client the server must work with first.
	tr := &http2.Transport{ //nolint:staticcheck // see above
		AllowHTTP: true, //nolint:staticcheck // see above
		DialTLSContext: func( //nolint:staticcheck // see above
			ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, ts.addr)
		},
	}
	return &http.Client{Transport: tr}
}

func (ts *testServer) url(path string) string { return "http://" + ts.addr + path }

func TestGet(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		var ua string
		for _, f := range s.Fields() {
			if f.Name == "user-agent" {
				ua = f.Value
			}
		}
		_ = s.WriteHead(203, []Field{{"content-type", "text/plain"}, {"x-path", s.Path()}, {"x-method", s.Method()}, {"x-ua", ua}})
		_, _ = s.Write([]byte("hello "))
		_, _ = s.Write([]byte(s.Authority()))
	}))
	req, _ := http.NewRequest("GET", ts.url("/a/b?c=d"), nil)
	req.Header.Set("User-Agent", "tester/1")
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 203 || resp.ProtoMajor != 2 {
		t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
	}
	if got, want := string(body), "hello "+ts.addr; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	for k, want := range map[string]string{"Content-Type": "text/plain", "X-Path": "/a/b?c=d", "X-Method": "GET", "X-Ua": "tester/1"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		_ = s.WriteHead(200, nil)
		_, _ = io.WriteString(s, s.Path())
	}))
	c := ts.client()
	const n = 400 // more than MAX_CONCURRENT_STREAMS: the client queues the rest
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/stream/%d", i)
			resp, err := c.Get(ts.url(path))
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || string(body) != path {
				errs <- fmt.Errorf("%s: body %q: %w", path, body, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.errs) > 0 {
		t.Errorf("connections ended: %v (one connection expected to stay open)", ts.errs)
	}
}

// echo answers with the request body, streaming it back as it comes.
var echo = HandlerFunc(func(s *Stream) {
	_ = s.WriteHead(200, nil)
	buf := make([]byte, 10000)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
})

func TestPostLargerThanWindows(t *testing.T) {
	// Windows smaller than the body both ways: the client's defaults to the server (4 MiB
	// connection, 4 MiB stream in x/net; the body is larger) and ours to the client.
	ts := startServer(t, &Config{InitialWindowSize: 65535, ConnWindowSize: 100000}, echo)
	body := make([]byte, 5<<20+123)
	for i := range body {
		body[i] = byte(i * 7)
	}
	c := ts.client()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Post(ts.url("/echo"), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Error(err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(body) {
				t.Errorf("echo: %d bytes back, %d sent, or different", len(got), len(body))
			}
		}()
	}
	wg.Wait()
}

func TestTrailers(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		_, _ = io.Copy(io.Discard, s)
		var tr string
		for _, f := range s.Trailers() {
			tr += f.Name + "=" + f.Value + ";"
		}
		_ = s.WriteHead(200, []Field{{"trailer", "x-sum"}})
		_, _ = io.WriteString(s, "body")
		s.SetTrailers([]Field{{"x-sum", "42"}, {"x-got", tr}})
	}))
	req, _ := http.NewRequest("POST", ts.url("/"), io.NopCloser(strings.NewReader("some body")))
	req.Trailer = http.Header{"X-Client": nil}
	req.Trailer.Set("X-Client", "yes")
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "body" {
		t.Fatalf("body %q", body)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "42" {
		t.Errorf("trailer X-Sum %q", got)
	}
	if got := resp.Trailer.Get("X-Got"); got != "x-client=yes;" {
		t.Errorf("request trailers the handler saw: %q", got)
	}
}

func TestResetMidBody(t *testing.T) {
	gotErr := make(chan error, 1)
	started := make(chan struct{})
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		buf := make([]byte, 100)
		n, _ := io.ReadFull(s, buf)
		if n != 100 {
			gotErr <- fmt.Errorf("first read: %d bytes", n)
			return
		}
		close(started)
		<-s.Done()
		_, err := io.Copy(io.Discard, s)
		gotErr <- err
	}))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url("/upload"), pr)
	go func() { _, _ = pw.Write(make([]byte, 100)) }()
	done := make(chan error, 1)
	go func() {
		resp, err := ts.client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-started:
	case err := <-gotErr: // the handler gave up before started
		t.Fatal(err)
	}
	cancel()
	err := <-gotErr
	var se StreamError
	if !errors.As(err, &se) || !se.Remote || se.Code != http2.ErrCodeCancel {
		t.Fatalf("handler's read after the client's reset: %v, want a client reset CANCEL", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	_ = pw.Close()
}

func TestResetWhileWriting(t *testing.T) {
	// The client stops reading a large response and resets: the handler's blocked Write
	// (no credit) must fail, not hang.
	gotErr := make(chan error, 1)
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := s.Write(chunk); err != nil {
				gotErr <- err
				return
			}
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/big"), nil)
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = resp.Body.Close()
	var se StreamError
	if err := <-gotErr; !errors.As(err, &se) {
		t.Fatalf("handler's write after the reset: %v", err)
	}
}

func TestShutdownWithStreamsInFlight(t *testing.T) {
	release := make(chan struct{})
	var inFlight sync.WaitGroup
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		inFlight.Done()
		<-release
		_ = s.WriteHead(200, nil)
		_, _ = io.WriteString(s, "finished "+s.Path())
	}))
	c := ts.client()
	const n = 5
	inFlight.Add(n)
	results := make(chan string, n)
	for i := range n {
		go func() {
			resp, err := c.Get(ts.url(fmt.Sprintf("/%d", i)))
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			results <- string(b)
		}()
	}
	inFlight.Wait()
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	// New connections are refused once Shutdown began; the open one keeps its streams.
	close(release)
	got := map[string]bool{}
	for range n {
		got[<-results] = true
	}
	for i := range n {
		if want := fmt.Sprintf("finished /%d", i); !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, err := range ts.errs {
		if err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	}
}

func TestShutdownBoundedByContext(t *testing.T) {
	block := make(chan struct{})
	started := make(chan struct{})
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		close(started)
		select {
		case <-block:
		case <-s.Done():
		}
	}))
	defer close(block)
	errc := make(chan error, 1)
	go func() {
		resp, err := ts.client().Get(ts.url("/"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("the request whose connection was closed succeeded")
	}
}

func TestHandlerPanicResetsStream(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		if s.Path() == "/panic" {
			panic("boom")
		}
		_, _ = io.WriteString(s, "ok")
	}))
	c := ts.client()
	if _, err := c.Get(ts.url("/panic")); err == nil {
		t.Fatal("a panicking handler's stream was answered")
	}
	resp, err := c.Get(ts.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("after the panic: %q", b)
	}
}

func TestTLSALPN(t *testing.T) {
	certSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer certSrv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &Server{Handler: HandlerFunc(func(s *Stream) {
		st := s.TLS()
		if st == nil {
			_ = s.WriteHead(500, nil)
			return
		}
		_, _ = io.WriteString(s, "alpn="+st.NegotiatedProtocol+" scheme="+s.Scheme())
	})}
	served := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		tc := tls.Server(nc, &tls.Config{Certificates: certSrv.TLS.Certificates, NextProtos: []string{"h2"}})
		if err := tc.Handshake(); err != nil {
			served <- err
			return
		}
		served <- srv.ServeConn(context.Background(), tc, nil)
	}()
	pool := x509.NewCertPool()
	pool.AddCert(certSrv.Certificate())
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}} //nolint:staticcheck // x/net's client, as in client()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "alpn=h2 scheme=https" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	tr.CloseIdleConnections() //nolint:staticcheck // as above
	if err := <-served; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
}
