package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strait-gw/strait/proxy/http1"
	"github.com/strait-gw/strait/proxy/upstream"
)

// HTTP/2 requests on the fast path's routes: net/http's HTTP/2 server keeps the framing
// (flow control, SETTINGS, PING, GOAWAY on drain, stream resets and their rate limit, header
// list limits, max concurrent streams), and each stream is forwarded with the fast path's
// upstream exchange instead of httputil.ReverseProxy and http.Transport: the request head is
// written straight from the stream's header map onto a pooled HTTP/1.1 keep-alive connection
// and the response head is parsed into a reused field list, with no http.Request clone, no
// http.Response, no Transport goroutines and no per-request copy buffer.
//
// Which routes qualify is the fast path's decision (fastRoute). Requests that need what only
// the ReverseProxy path does keep it: gRPC (trailers, grpc-timeout), CONNECT (extended
// CONNECT included), and targets that are not in origin form.

// codecRequest reports whether an HTTP/2 request on a fast-path route can be forwarded by
// serveCodec.
func codecRequest(r *http.Request) bool {
	if r.Method == http.MethodConnect || isGRPC(r) || !strings.HasPrefix(r.RequestURI, "/") {
		return false
	}
	// The target goes upstream as it came: no byte may end the request line early.
	for i := range len(r.RequestURI) {
		if c := r.RequestURI[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// codecBodyBuffer is the size of the buffer a request body is read through on its way
// upstream (as chunks when its length is unknown).
const codecBodyBuffer = 16 << 10

var codecBodyPool = sync.Pool{New: func() any { b := make([]byte, codecBodyBuffer); return &b }}

// serveCodec forwards an HTTP/2 request, whose route ex.route the fast path serves, over the
// cluster's pooled HTTP/1.1 connections, and streams the answer back; it sets ex.cluster,
// ex.upstream and ex.status as RoundTrip would.
func (h *httpHandler) serveCodec(w http.ResponseWriter, r *http.Request, ex *exchange, start time.Time) {
	ex.cluster = ex.route.PickCluster(rand.Uint64())
	ex.attempts = 1
	x, deadline, err := h.p.beginExchange(r.Context(), ex, start)
	if err != nil {
		if r.Context().Err() != nil {
			ex.status = statusClientClosed // reset while waiting for a connection slot
			return
		}
		ex.status = upstreamStatus(err, ex.route)
		http.Error(w, http.StatusText(ex.status), ex.status)
		return
	}
	defer x.End()
	h.prepareCodec(r, ex)

	m := messagePool.Get().(*messages)
	defer func() {
		m.bw.Reset(nil)
		messagePool.Put(m)
	}()
	s := codecStream{h: h, w: w, r: r, ex: ex, resp: &m.resp}
	conn, stop, err := s.send(&x, deadline)
	ex.upstream = x.Endpoint().Address()
	if err != nil {
		if errors.Is(err, errClientGone) || r.Context().Err() != nil {
			ex.status = statusClientClosed // nobody reads an answer, and it says nothing of the upstream
			return
		}
		x.Failed(err)
		ex.status = upstreamStatus(err, ex.route)
		h.p.log.Debug("upstream error", "route", ex.route.Name, "error", err, "status", ex.status)
		http.Error(w, http.StatusText(ex.status), ex.status)
		return
	}
	reusable, err := s.respond(m.bw, &x, conn)
	if !stop() {
		reusable = false // the stream was reset: the connection's deadline is spent
	}
	if err != nil {
		_ = conn.Close()
		// Half a response went out: resetting the stream tells the client it is cut short,
		// as ReverseProxy does.
		h.p.log.Debug("response body", "route", ex.route.Name, "error", err)
		panic(http.ErrAbortHandler)
	}
	if !reusable {
		_ = conn.Close()
		return
	}
	if !deadline.IsZero() {
		_ = conn.SetDeadline(time.Time{})
	}
	x.Put(conn)
}

// prepareCodec turns the stream's header fields into the upstream request's, as rewrite does
// for ReverseProxy. The request is the handler's own: its header map is changed in place.
func (h *httpHandler) prepareCodec(r *http.Request, ex *exchange) {
	hd := r.Header
	// HTTP/2 has no connection-specific fields but TE (RFC 9113 8.2.2), and carries its
	// framing in frames: the HTTP/1.1 request gets framing of its own. The HTTP/2 server
	// answers Expect: 100-continue itself when the body is first read, and the body follows
	// the head upstream without waiting.
	for _, k := range [...]string{"Te", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade",
		"Expect", "Content-Length", "Host", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(hd, k)
	}
	// One array holds the three values; each slice is capped so that an Add copies it.
	xf := make([]string, 3)
	xf[0], xf[1], xf[2] = remoteIP(r.RemoteAddr), r.Host, "http"
	if r.TLS != nil {
		xf[2] = "https"
	}
	if xf[0] != "" {
		hd["X-Forwarded-For"] = xf[0:1:1]
	}
	hd["X-Forwarded-Host"] = xf[1:2:2]
	hd["X-Forwarded-Proto"] = xf[2:3:3]
	propagateTrace(hd)
	ex.cluster.RequestHeaders.Apply(hd)
	ex.route.RequestHeaders.Apply(hd)
}

// codecStream is one HTTP/2 request being forwarded over an HTTP/1.1 connection.
type codecStream struct {
	h    *httpHandler
	w    http.ResponseWriter
	r    *http.Request
	ex   *exchange
	resp *http1.Response
	// bodyCut says the upstream answered before taking the request's whole body (see
	// earlyAnswer): its connection is not reused.
	bodyCut bool
}

// send writes the request on a pooled connection and reads the response head into s.resp,
// with the fast path's rules for a pooled connection the upstream closed while it was idle
// (sendHead): a request without a body that can be sent twice is resent once on a
// new connection; another one goes only on a pooled connection that looks open.
//
// The client resetting the stream cancels the request's context, which wakes the
// connection's reads and writes (a deadline in the past) instead of leaving the exchange to
// the upstream. The returned stop ends that watch; false means it fired.
func (s *codecStream) send(x *upstream.Exchange, deadline time.Time) (*upstream.Conn, func() bool, error) {
	replayable := s.r.ContentLength == 0 && idempotent(s.r.Method)
	var stop func() bool
	conn, err := sendHead(x, deadline, replayable, func(conn *upstream.Conn) error {
		stop = context.AfterFunc(s.r.Context(), func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		err := s.writeRequest(conn)
		switch {
		case err == nil:
			err = s.readResponseHead(conn)
		case earlyAnswer(conn, err, deadline, s.readResponseHead):
			// The rest of the request's body stays unread: the stream ends without it.
			s.bodyCut, err = true, nil
		}
		if err != nil {
			stop()
			if s.r.Context().Err() != nil {
				return errors.Join(errClientGone, err)
			}
		}
		return err
	})
	return conn, stop, err
}

// writeRequest writes the request head and body on conn.
func (s *codecStream) writeRequest(conn *upstream.Conn) error {
	r, ex, w := s.r, s.ex, conn.W
	_, _ = w.WriteString(r.Method)
	_ = w.WriteByte(' ')
	if path, ok := ex.route.RewrittenPath(ex.params); ok {
		_, _ = w.WriteString(path)
		if r.URL.RawQuery != "" {
			_ = w.WriteByte('?')
			_, _ = w.WriteString(r.URL.RawQuery)
		}
	} else {
		_, _ = w.WriteString(r.RequestURI)
	}
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(ex.route.ForwardedHost(ex.params))
	_, _ = w.WriteString("\r\n")
	// The HTTP/2 server checked names and values (RFC 9113 8.2.1): none holds a CR or LF.
	for k, vs := range r.Header {
		for _, v := range vs {
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(v)
			_, _ = w.WriteString("\r\n")
		}
	}
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	switch {
	case !hasBody && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch):
		// An empty body where one is expected is said to be empty, as net/http's Transport
		// does: some servers refuse such a request without a length (411).
		_, _ = w.WriteString("Content-Length: 0\r\n")
	case hasBody && r.ContentLength > 0:
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.WriteString(strconv.FormatInt(r.ContentLength, 10))
		_, _ = w.WriteString("\r\n")
	case hasBody:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if hasBody {
		if err := s.writeBody(w, r.ContentLength < 0); err != nil {
			return err
		}
	}
	return w.Flush()
}

// writeBody copies the request body to w, as chunks when chunked. Each piece goes on at once:
// an upload is not held back waiting for the rest. A failure to read is the client's
// (errClientGone).
func (s *codecStream) writeBody(w *bufio.Writer, chunked bool) error {
	bp := codecBodyPool.Get().(*[]byte)
	defer codecBodyPool.Put(bp)
	buf := *bp
	for {
		n, rerr := s.r.Body.Read(buf)
		if n > 0 {
			if chunked {
				_, _ = w.WriteString(strconv.FormatInt(int64(n), 16))
				_, _ = w.WriteString("\r\n")
			}
			_, _ = w.Write(buf[:n])
			if chunked {
				_, _ = w.WriteString("\r\n")
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(rerr, io.EOF):
			if chunked {
				_, _ = w.WriteString("0\r\n\r\n")
			}
			return nil
		case rerr != nil:
			return errors.Join(errClientGone, rerr)
		}
	}
}

// readResponseHead reads the response head, passing interim (1xx) responses on to the
// client.
func (s *codecStream) readResponseHead(conn *upstream.Conn) error {
	return readFinalHead(conn, s.resp, s.r.Method == http.MethodHead, func() error {
		// WriteHeader with a 1xx status sends the header map as an interim response (103
		// Early Hints); the final response starts from an empty one again.
		s.resp.StripHopByHop()
		copyFields(s.w.Header(), &s.resp.Header)
		s.w.WriteHeader(s.resp.Status)
		clear(s.w.Header())
		return nil
	})
}

// respond writes the response whose head is in s.resp and streams its body through bw. It
// reports whether the upstream connection may carry another request; an error means the
// response was cut short after its head went out.
func (s *codecStream) respond(bw *bufio.Writer, x *upstream.Exchange, conn *upstream.Conn) (bool, error) {
	resp, ex, w := s.resp, s.ex, s.w
	ex.answered(x, resp)
	h := &resp.Header
	wh := w.Header()
	copyFields(wh, h)
	if resp.ContentLength >= 0 && (resp.Body == http1.Length || resp.Body == http1.NoBody) {
		wh["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	// What the upstream did not send, the proxy does not add: no Date, no sniffed type.
	if _, ok := wh["Date"]; !ok {
		wh["Date"] = nil
	}
	if _, ok := wh["Content-Type"]; !ok && resp.Body != http1.NoBody {
		wh["Content-Type"] = nil
	}
	w.WriteHeader(resp.Status)
	if resp.Body == http1.NoBody {
		return resp.KeepAlive && !s.bodyCut, nil
	}
	sw := &streamWriter{w: w, src: conn.R}
	sw.flusher, _ = w.(http.Flusher)
	bw.Reset(sw)
	err := http1.CopyBody(bw, conn.R, resp.Body, resp.ContentLength, http1.UntilClose)
	sw.last = true
	if err == nil {
		err = bw.Flush()
	}
	return err == nil && resp.KeepAlive && resp.Body != http1.UntilClose && !s.bodyCut, err
}

// copyFields adds an HTTP/1.1 head's fields to a header map. The values share one string
// and one array, and common names are not copied: a few allocations per head, not three per
// field.
func copyFields(dst http.Header, src *http1.Header) {
	n := 0
	for _, f := range src.Fields {
		n += len(f.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range src.Fields {
		b.Write(f.Value)
	}
	all := b.String()
	values := make([]string, len(src.Fields))
	for i, f := range src.Fields {
		values[i], all = all[:len(f.Value)], all[len(f.Value):]
		k, ok := commonFieldNames[string(f.Name)]
		if !ok {
			k = textproto.CanonicalMIMEHeaderKey(string(f.Name))
		}
		if vs, ok := dst[k]; ok {
			dst[k] = append(vs, values[i])
		} else {
			dst[k] = values[i : i+1 : i+1]
		}
	}
}

// commonFieldNames maps the response fields most backends send, as they spell them, to
// their canonical names.
var commonFieldNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept-Ranges", "Age", "Cache-Control", "Content-Encoding", "Content-Language",
		"Content-Range", "Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Link", "Location", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Vary", "Via", "X-Content-Type-Options", "X-Frame-Options"} {
		m[k], m[strings.ToLower(k)] = k, k
	}
	m["ETag"] = "Etag"
	return m
}()

// streamWriter writes a response body to an HTTP/2 stream, flushing it whenever the upstream
// has sent nothing more yet: what came so far goes on at once (a stream of events), while a
// body that is already there goes in as few frames as the stream's buffer allows.
type streamWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	src     *bufio.Reader
	last    bool // the body's end: the handler's return sends it with END_STREAM
}

// Write writes p to the stream.
func (f *streamWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil && !f.last && f.flusher != nil && f.src.Buffered() == 0 {
		f.flusher.Flush()
	}
	return n, err
}

// remoteIP is the IP of a remote address, "" if it has none.
func remoteIP(addr string) string {
	ip, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return ip
}
