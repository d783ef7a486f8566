package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// h2Backend is an HTTP/1.1 upstream for the HTTP/2 tests. It never sends a Date, so a
// response with one had it added by net/http on the ReverseProxy path, not passed through
// by the codec path.
type h2Backend struct {
	*backend
	// canceled receives the path of each request whose context ended before its handler
	// did: the proxy closed the upstream connection.
	canceled chan string
	// started receives the path of each /slow, /hang or /hold request as it begins.
	started chan string
	// release lets /hold requests answer.
	release chan struct{}
	// hung and hungCanceled count the /hang requests, and those that went away.
	hung, hungCanceled atomic.Int64
}

// note sends path on ch unless ch is full: a flood of requests must not block handlers.
func note(ch chan string, path string) {
	select {
	case ch <- path:
	default:
	}
}

func startH2Backend(t *testing.T) *h2Backend {
	t.Helper()
	b := &h2Backend{canceled: make(chan string, 16), started: make(chan string, 16), release: make(chan struct{})}
	b.backend = startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		switch r.URL.Path {
		case "/echo", "/rewritten/echo":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			sum := sha256.Sum256(body)
			h := w.Header()
			h.Set("X-Seen-Proto", r.Proto)
			h.Set("X-Seen-Method", r.Method)
			h.Set("X-Seen-Path", r.URL.RequestURI())
			h.Set("X-Seen-Host", r.Host)
			h.Set("X-Seen-Length", strconv.Itoa(len(body)))
			h.Set("X-Seen-Sum", hex.EncodeToString(sum[:]))
			h.Set("X-Seen-Chunked", strconv.FormatBool(len(r.TransferEncoding) > 0))
			for k, vs := range r.Header {
				h["X-Seen-"+k] = vs
			}
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok")
		case "/large":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(n))
			}
			_, _ = w.Write(pattern(n))
		case "/early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "after hints")
		case "/slow":
			b.started <- r.URL.Path
			_, _ = io.WriteString(w, "first part\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				b.canceled <- r.URL.Path
			case <-time.After(20 * time.Second):
			}
		case "/hang":
			b.hung.Add(1)
			note(b.started, r.URL.Path)
			select {
			case <-r.Context().Done():
				b.hungCanceled.Add(1)
				note(b.canceled, r.URL.Path)
			case <-time.After(20 * time.Second):
			}
		case "/hold":
			b.started <- r.URL.Path
			select {
			case <-b.release:
				_, _ = io.WriteString(w, "held")
			case <-time.After(20 * time.Second):
			}
		case "/bighead":
			w.Header().Set("X-Big", strings.Repeat("x", 70<<10))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	return b
}

// pattern is n bytes that show where a body was cut or shifted.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26 + i/26%7)
	}
	return b
}

// h2cClient speaks HTTP/2 with prior knowledge, over one connection as long as its streams
// fit.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 20 * time.Second}
}

// h2Do sends a request and returns the response with its body read.
func h2Do(t *testing.T, client *http.Client, method, url string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "h2.local"
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s: answered over %s, want HTTP/2", method, url, resp.Proto)
	}
	return resp, data
}

// checkEcho checks what the backend saw of a request with this body, and that the answer
// came through the codec path (no Date added).
func checkEcho(t *testing.T, resp *http.Response, body []byte, proto string) {
	t.Helper()
	sum := sha256.Sum256(body)
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusOK:
		t.Errorf("status %d", resp.StatusCode)
	case h.Get("X-Seen-Proto") != "HTTP/1.1":
		t.Errorf("backend saw %q, want HTTP/1.1", h.Get("X-Seen-Proto"))
	case h.Get("X-Seen-Length") != strconv.Itoa(len(body)) || h.Get("X-Seen-Sum") != hex.EncodeToString(sum[:]):
		t.Errorf("backend saw a body of %s bytes (sum %s), want %d", h.Get("X-Seen-Length"), h.Get("X-Seen-Sum"), len(body))
	case h.Get("X-Seen-X-Forwarded-Proto") != proto || h.Get("X-Seen-X-Forwarded-For") != "127.0.0.1" ||
		h.Get("X-Seen-X-Forwarded-Host") != "h2.local":
		t.Errorf("forwarding headers: proto %q, for %q, host %q", h.Get("X-Seen-X-Forwarded-Proto"),
			h.Get("X-Seen-X-Forwarded-For"), h.Get("X-Seen-X-Forwarded-Host"))
	case len(h.Get("X-Seen-Traceparent")) != 55:
		t.Errorf("traceparent %q", h.Get("X-Seen-Traceparent"))
	case len(h.Values("Date")) != 0:
		t.Errorf("Date %q added: the request went through ReverseProxy", h.Get("Date"))
	}
}

// unsized hides a reader's length: the client sends the body without content-length.
type unsized struct{ io.Reader }

// TestH2Codec sends h2c streams of fast-path routes through the proxy to an HTTP/1.1
// backend: many concurrent streams on one connection with and without bodies (sized and
// unsized), large responses of both framings, interim responses, and streams the client
// resets before and during the response, after which the connection still serves.
func TestH2Codec(t *testing.T) {
	be := startH2Backend(t)
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, be.backend)
	client := h2cClient()
	base := url(port, "")

	t.Run("concurrent streams", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				for i := range 4 {
					body := pattern((g*4 + i) * 997 % 70000)
					var resp *http.Response
					switch i % 3 {
					case 0:
						body = nil
						resp, _ = h2Do(t, client, http.MethodGet, base+"/echo?g="+strconv.Itoa(g), nil, nil)
					case 1:
						resp, _ = h2Do(t, client, http.MethodPost, base+"/echo", bytes.NewReader(body), nil)
					case 2:
						resp, _ = h2Do(t, client, http.MethodPut, base+"/echo", unsized{bytes.NewReader(body)}, nil)
						if resp.Header.Get("X-Seen-Chunked") != strconv.FormatBool(len(body) > 0) {
							t.Errorf("unsized body of %d bytes: chunked upstream %s", len(body), resp.Header.Get("X-Seen-Chunked"))
						}
					}
					checkEcho(t, resp, body, "http")
				}
			})
		}
		wg.Wait()
	})

	t.Run("request line and host", func(t *testing.T) {
		resp, _ := h2Do(t, client, http.MethodDelete, base+"/echo?a=1&b=%20", nil, http.Header{"Cookie": {"a=1", "b=2"}})
		h := resp.Header
		if h.Get("X-Seen-Method") != "DELETE" || h.Get("X-Seen-Path") != "/echo?a=1&b=%20" || h.Get("X-Seen-Host") != "h2.local" {
			t.Errorf("backend saw %s %s, Host %s", h.Get("X-Seen-Method"), h.Get("X-Seen-Path"), h.Get("X-Seen-Host"))
		}
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			resp, _ := h2Do(t, client, method, base+"/echo", nil, nil)
			if cl, want := resp.Header.Values("X-Seen-Content-Length"), method == http.MethodPost; (len(cl) == 1 && cl[0] == "0") != want {
				t.Errorf("empty %s: backend saw Content-Length %q", method, cl)
			}
		}
		// HTTP/2 may split cookies into fields; HTTP/1.1 must get them as one (RFC 9113 8.2.3).
		if c := h.Values("X-Seen-Cookie"); len(c) != 1 || c[0] != "a=1; b=2" {
			t.Errorf("Cookie %q", c)
		}
	})

	t.Run("expect 100-continue", func(t *testing.T) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		waiting := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Protocols: &p, ExpectContinueTimeout: 10 * time.Second}}
		body := pattern(5000)
		resp, _ := h2Do(t, waiting, http.MethodPost, base+"/echo", bytes.NewReader(body), http.Header{"Expect": {"100-continue"}})
		checkEcho(t, resp, body, "http")
		if e := resp.Header.Get("X-Seen-Expect"); e != "" {
			t.Errorf("backend was sent Expect %q; the proxy answers it", e)
		}
	})

	t.Run("large responses", func(t *testing.T) {
		const n = 4<<20 + 123
		for _, q := range []string{"", "&chunked=1"} {
			resp, data := h2Do(t, client, http.MethodGet, base+"/large?n="+strconv.Itoa(n)+q, nil, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(data, pattern(n)) {
				t.Errorf("%q: status %d, %d bytes, want %d as sent", q, resp.StatusCode, len(data), n)
			}
			if want := int64(n); q == "" && resp.ContentLength != want {
				t.Errorf("content-length %d, want %d", resp.ContentLength, want)
			}
		}
	})

	t.Run("early hints", func(t *testing.T) {
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, base+"/early", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" || string(data) != "after hints" || resp.Header.Get("Link") != "" {
			t.Errorf("interim %q, final %d %q with Link %q", hints, resp.StatusCode, data, resp.Header.Get("Link"))
		}
	})

	t.Run("reset during the response", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/slow", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, be.started, "/slow", "the request to reach the backend")
		line := make([]byte, len("first part\n"))
		if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "first part\n" {
			t.Fatalf("first part: %q, %v", line, err)
		}
		cancel()
		resp.Body.Close()
		waitFor(t, be.canceled, "/slow", "the backend's request to go away after the client reset its stream")
	})

	t.Run("reset before the response", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/hang", nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitFor(t, be.started, "/hang", "the request to reach the backend")
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("client: %v, want canceled", err)
		}
		waitFor(t, be.canceled, "/hang", "the backend's request to go away after the client reset its stream")
	})

	// The same connection keeps serving after the resets.
	resp, _ := h2Do(t, client, http.MethodGet, base+"/echo", nil, nil)
	checkEcho(t, resp, nil, "http")
}

// waitFor waits up to 10 seconds for want on ch.
func waitFor(t *testing.T, ch chan string, want, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10s for %s", what)
	}
}

// TestH2CodecFailures answers HTTP/2 streams the upstream fails with 502 or 503, refuses a
// request whose header list is too large with 431, and keeps the connection serving.
func TestH2CodecFailures(t *testing.T) {
	be := startH2Backend(t)
	// A backend that reads the request and closes without answering.
	mute := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		_, _ = readHead(br)
	})
	closed := startH2Backend(t)
	closed.stop()
	port, _ := routeEnv(t, `{matches: [{path: {type: PathPrefix, value: /mute}}], backendRefs: [{name: svc1, port: 80}]}
  - matches: [{path: {type: PathPrefix, value: /closed}}]
    backendRefs: [{name: svc2, port: 80}]
  - backendRefs: [{name: svc0, port: 80}]`, be.backend, mute.backend, closed.backend)
	client := h2cClient()
	base := url(port, "")
	for _, path := range []string{"/mute", "/closed", "/bighead"} {
		resp, _ := h2Do(t, client, http.MethodGet, base+path, nil, nil)
		if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 502 or 503", path, resp.StatusCode)
		}
	}
	// Go's client keeps to the limit the proxy advertises; a raw one does not.
	raw := dialH2C(t, port)
	defer raw.close()
	if status := raw.status(t, 70, strings.Repeat("y", 1<<10)); status != "431" {
		t.Errorf("70 KiB of request headers: status %s, want 431", status)
	}
	resp, _ := h2Do(t, client, http.MethodGet, base+"/echo", nil, nil)
	checkEcho(t, resp, nil, "http")
}

// TestH2CodecRouteFeatures applies the route's rewrites and header modifiers to HTTP/2
// streams on the codec path, and leaves a route with a retry policy on the ReverseProxy
// path, which the fast path's eligibility decides.
func TestH2CodecRouteFeatures(t *testing.T) {
	be := startH2Backend(t)
	port, _ := routeEnv(t, `{matches: [{path: {type: PathPrefix, value: /api}}], backendRefs: [{name: svc0, port: 80}],
    filters: [{type: URLRewrite, urlRewrite: {hostname: backend.local, path: {type: ReplacePrefixMatch, replacePrefixMatch: /rewritten}}},
      {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Route, value: api}], remove: [X-Secret]}},
      {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Served-By, value: strait}]}}]}
  - matches: [{path: {type: PathPrefix, value: /retried}}]
    backendRefs: [{name: svc0, port: 80}]
    retry: {codes: [503], attempts: 2}`, be.backend)
	client := h2cClient()
	resp, _ := h2Do(t, client, http.MethodGet, url(port, "/api/echo?x=1"), nil, http.Header{"X-Secret": {"s"}})
	h := resp.Header
	if h.Get("X-Seen-Path") != "/rewritten/echo?x=1" || h.Get("X-Seen-Host") != "backend.local" ||
		h.Get("X-Seen-X-Route") != "api" || h.Get("X-Seen-X-Secret") != "" || h.Get("X-Served-By") != "strait" {
		t.Errorf("rewrite and modifiers: path %q, host %q, X-Route %q, X-Secret %q, X-Served-By %q", h.Get("X-Seen-Path"),
			h.Get("X-Seen-Host"), h.Get("X-Seen-X-Route"), h.Get("X-Seen-X-Secret"), h.Get("X-Served-By"))
	}
	if len(h.Values("Date")) != 0 {
		t.Error("the rewritten route went through ReverseProxy")
	}
	resp, _ = h2Do(t, client, http.MethodGet, url(port, "/retried"), nil, nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Date") == "" {
		t.Errorf("route with retries: status %d, Date %q; want the backend's 404 through ReverseProxy (which adds a Date)",
			resp.StatusCode, resp.Header.Get("Date"))
	}
}

// TestH2CodecTLS serves HTTP/2 over TLS (ALPN h2) on the codec path: concurrent streams with
// bodies, forwarded as https.
func TestH2CodecTLS(t *testing.T) {
	cert := newTestCert(t, "h2.local")
	be := startH2Backend(t)
	port := freePort(t)
	manifests := filetest.Gateway("web", "HTTPS", port, ", hostname: h2.local, tls: {certificateRefs: [{name: cert}]}") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: svc0, port: 80}]}]
---
` + cert.secret("cert") + "---\n" + service("svc0", false, "", be.backend)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: "h2.local", RootCAs: cert.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			body := pattern(g * 3001)
			resp, _ := h2Do(t, client, http.MethodPost, base+"/echo", bytes.NewReader(body), nil)
			checkEcho(t, resp, body, "https")
		})
	}
	wg.Wait()
	const n = 1 << 20
	if resp, data := h2Do(t, client, http.MethodGet, base+"/large?chunked=1&n="+strconv.Itoa(n), nil, nil); !bytes.Equal(data, pattern(n)) {
		t.Errorf("large response: status %d, %d bytes, want %d as sent", resp.StatusCode, len(data), n)
	}
}

// status sends one GET with n extra fields of this value on stream 1, in as many frames as
// it takes, and returns the response's :status.
func (c *h2cLoad) status(t *testing.T, n int, value string) string {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/echo"}, {":authority", "h2.local"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := range n {
		_ = enc.WriteField(hpack.HeaderField{Name: "x-big-" + strconv.Itoa(i), Value: value})
	}
	block := buf.Bytes()
	const frame = 16 << 10
	first := block[:min(frame, len(block))]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(block) <= frame})
	for rest := block[len(first):]; err == nil && len(rest) > 0; {
		part := rest[:min(frame, len(rest))]
		rest = rest[len(part):]
		err = c.fr.WriteContinuation(1, len(rest) == 0, part)
	}
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.readStatus(t, 1)
}

// readStatus reads frames, answering SETTINGS, until the response head of stream id, and
// returns its :status. A reset of the stream, a GOAWAY or a response on another stream fails
// the test.
func (c *h2cLoad) readStatus(t *testing.T, id uint32) string {
	t.Helper()
	status := ""
	c.dec.SetEmitFunc(func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no response on stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatal(err)
			}
			if f.StreamID != id {
				t.Fatalf("a response on stream %d, want one on %d", f.StreamID, id)
			}
			return status
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(c.fr.WriteSettingsAck)
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				t.Fatalf("stream %d reset (%v) instead of a response", id, f.ErrCode)
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v instead of a response", f.ErrCode)
		}
	}
}

// TestH2CodecResponseFields passes a backend's response fields to an HTTP/2 client as it
// sent them, whatever their case, repeated fields in order, without the hop-by-hop ones.
func TestH2CodecResponseFields(t *testing.T) {
	raw := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		for {
			if _, err := readHead(br); err != nil {
				return
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nETag: \"v1\"\r\n"+
				"x-custom: 1\r\nX-Custom: 2\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"+
				"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, raw.backend)
	resp, data := h2Do(t, h2cClient(), http.MethodGet, url(port, "/"), nil, nil)
	h := resp.Header
	if got := h.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie %q", got)
	}
	if got := h.Values("X-Custom"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("X-Custom %q", got)
	}
	if h.Get("Etag") != `"v1"` || h.Get("Content-Type") != "text/plain" || string(data) != "ok" {
		t.Errorf("ETag %q, Content-Type %q, body %q", h.Get("Etag"), h.Get("Content-Type"), data)
	}
	if h.Get("X-Hop") != "" || h.Get("Keep-Alive") != "" || h.Get("Date") != "" {
		t.Errorf("X-Hop %q, Keep-Alive %q, Date %q passed or added", h.Get("X-Hop"), h.Get("Keep-Alive"), h.Get("Date"))
	}
}

// TestH2CodecDrain stops a proxy while an HTTP/2 stream on the codec path is in flight: the
// client is told GOAWAY, and the stream still gets its whole answer.
func TestH2CodecDrain(t *testing.T) {
	be := startH2Backend(t)
	port, e := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, be.backend)
	c := dialH2C(t, port)
	defer c.close()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/hold"}, {":authority", "h2.local"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.write(func() error {
		return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
	})
	waitFor(t, be.started, "/hold", "the request to reach the backend")
	for _, stop := range e.stop {
		stop()
	}
	status, body, goAway := "", "", false
	c.dec.SetEmitFunc(func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for ended := false; !ended; {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after GOAWAY %v, status %q, body %q: %v", goAway, status, body, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goAway = true
			// The proxy waits for the stream; the backend answers only now.
			close(be.release)
		case *http2.HeadersFrame:
			if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatal(err)
			}
			ended = f.StreamEnded()
		case *http2.DataFrame:
			body += string(f.Data())
			ended = f.StreamEnded()
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(c.fr.WriteSettingsAck)
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		}
	}
	if !goAway || status != "200" || body != "held" {
		t.Errorf("GOAWAY %v, then status %q, body %q; want GOAWAY, then 200 held", goAway, status, body)
	}
}

// TestH2CodecRapidReset opens streams and resets each at once, as the HTTP/2 rapid reset
// attack does: every upstream request that got out is abandoned (its connection closed)
// rather than left running, and the connection goes on serving.
func TestH2CodecRapidReset(t *testing.T) {
	be := startH2Backend(t)
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, be.backend)
	c := dialH2C(t, port)
	defer c.close()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/hang"}, {":authority", "h2.local"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	const streams = 200
	for i := range uint32(streams) {
		c.write(func() error {
			err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*i + 1, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
			if err == nil {
				err = c.fr.WriteRSTStream(2*i+1, http2.ErrCodeCancel)
			}
			return err
		})
	}
	// A request after the flood answers: the connection still serves.
	buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/echo"}, {":authority", "h2.local"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	c.write(func() error {
		return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2*streams + 1, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
	})
	// A response on a reset stream fails the test.
	status := c.readStatus(t, 2*streams+1)
	if status != "200" {
		t.Errorf("status %s after the resets", status)
	}
	// Every request that reached the backend sees its connection go (within 10 seconds,
	// where they would otherwise hang for 20).
	deadline := time.Now().Add(10 * time.Second)
	for be.hungCanceled.Load() < be.hung.Load() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if hung, canceled := be.hung.Load(), be.hungCanceled.Load(); canceled < hung {
		t.Errorf("%d of %d reset requests that reached the backend were not abandoned", hung-canceled, hung)
	} else {
		t.Logf("%d of %d reset streams reached the backend, all abandoned", hung, streams)
	}
}
