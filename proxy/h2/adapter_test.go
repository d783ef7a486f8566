package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
)

// adapt serves every stream with a net/http Handler.
func adapt(h http.Handler) Handler {
	return HandlerFunc(func(s *Stream) { s.ServeHTTP(h) })
}

func TestServeHTTP(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Declared")
		w.Header().Set("X-Req", fmt.Sprintf("%s %s %s host=%s cl=%d proto=%s cookie=%q trailer=%q remote=%t",
			r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.ContentLength, r.Proto, r.Header.Get("Cookie"),
			r.Trailer.Get("X-Up"), r.RemoteAddr != ""))
		w.WriteHeader(201)
		_, _ = w.Write([]byte("got "))
		w.(http.Flusher).Flush()
		_, _ = w.Write(body)
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	})))
	req, _ := http.NewRequest("POST", ts.url("/p?q=1"), io.NopCloser(strings.NewReader("payload")))
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	req.Trailer = http.Header{"X-Up": {"t"}}
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 201 || string(body) != "got payload" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	want := fmt.Sprintf(`POST /p q=1 host=%s cl=-1 proto=HTTP/2.0 cookie="a=1; b=2" trailer="t" remote=true`, ts.addr)
	if got := resp.Header.Get("X-Req"); got != want {
		t.Errorf("request as the handler saw it:\n%s\nwant\n%s", got, want)
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date")
	}
	if got := resp.Trailer.Get("X-Declared"); got != "d" {
		t.Errorf("declared trailer %q", got)
	}
	if got := resp.Trailer.Get("X-Undeclared"); got != "u" {
		t.Errorf("trailer by prefix %q", got)
	}
}

func TestServeHTTPSmallBody(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody || r.ContentLength != 0 {
			t.Errorf("GET body %T, length %d", r.Body, r.ContentLength)
		}
		_, _ = io.WriteString(w, "<html>hi</html>")
	})))
	resp, err := ts.client().Get(ts.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "<html>hi</html>" || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%q, content-type %q", body, resp.Header.Get("Content-Type"))
	}
}

func TestServeHTTPContextCanceledOnReset(t *testing.T) {
	canceled := make(chan error, 1)
	started := make(chan struct{})
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		canceled <- r.Context().Err()
	})))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url("/wait"), nil)
	go func() {
		resp, err := ts.client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-started
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context: %v", err)
	}
}

func TestServeHTTPAbortHandler(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})))
	resp, err := ts.client().Get(ts.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err == nil {
		t.Fatal("an aborted response read as complete")
	}
}

func TestReverseProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Backend-Trailer")
		w.Header().Set("X-Backend", "yes")
		_, _ = fmt.Fprintf(w, "%s %s %s xff=%s", r.Method, r.URL.Path, b, r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Backend-Trailer", "tt")
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	ts := startServer(t, nil, adapt(httputil.NewSingleHostReverseProxy(u)))
	resp, err := ts.client().Post(ts.url("/through"), "text/plain", strings.NewReader("up"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if got, want := string(body), "POST /through up xff=127.0.0.1"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if resp.Header.Get("X-Backend") != "yes" || resp.Trailer.Get("X-Backend-Trailer") != "tt" {
		t.Fatalf("header %v trailer %v", resp.Header, resp.Trailer)
	}
}

func TestServeHTTPHeadAndInvalidValues(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Bad", "a\nb")
		w.Header().Set("X-Good", "ok")
		_, _ = io.WriteString(w, "a body HEAD must not carry")
	})))
	req, _ := http.NewRequest("HEAD", ts.url("/"), nil)
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if len(body) != 0 || resp.Header.Get("X-Good") != "ok" || resp.Header.Get("X-Bad") != "" {
		t.Fatalf("body %q, header %v", body, resp.Header)
	}
	// net/http's client drops a HEAD response's body itself: only a frame-level client sees
	// whether DATA was sent.
	c := dialRaw(t, ts)
	c.headers(1, true, ":method", "HEAD", ":scheme", "http", ":authority", "x", ":path", "/")
	if status, body := c.wantResponse(1); status != "200" || body != "" {
		t.Fatalf("HEAD on the wire: %s with body %q, want 200 and no DATA", status, body)
	}
}

// TestInterimResponse: WriteHeader with a 1xx status sends an informational head at once,
// with the header map as it is then; the final response follows on the same stream.
func TestInterimResponse(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		clear(w.Header())
		_, _ = io.WriteString(w, "final")
	})))
	var interim []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		interim = append(interim, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", ts.url("/"), nil)
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if len(interim) != 1 || interim[0] != "103 </style.css>; rel=preload" {
		t.Errorf("interim responses %q, want one 103 with its Link", interim)
	}
	if resp.StatusCode != 200 || string(body) != "final" || resp.Header.Get("Link") != "" {
		t.Errorf("final %d %q Link %q, want 200 \"final\" without the hint's field", resp.StatusCode, body, resp.Header.Get("Link"))
	}
}

// TestExpectContinue: a client that waits for 100 Continue before sending its body gets it
// once the handler reads the body.
func TestExpectContinue(t *testing.T) {
	ts := startServer(t, nil, adapt(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	})))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	// The client would send the body after an hour without a 100: the test would time out.
	client := &http.Client{Transport: &http.Transport{Protocols: &p, ExpectContinueTimeout: time.Hour}}
	got100 := false
	trace := &httptrace.ClientTrace{Got100Continue: func() { got100 = true }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		"PUT", ts.url("/"), strings.NewReader("the body"))
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !got100 || string(body) != "the body" {
		t.Errorf("100 Continue received: %v; body echoed %q", got100, body)
	}
}
