package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// ServeHTTP serves the stream with a net/http Handler: it builds the *http.Request
// (Proto "HTTP/2.0", Body, ContentLength, Header, Trailer, RemoteAddr, TLS, and a context
// canceled when the stream is reset or the connection ends) and an http.ResponseWriter that
// implements http.Flusher and trailers (a declared "Trailer" field, or http.TrailerPrefix).
// A panic with http.ErrAbortHandler resets the stream, as net/http does.
func (s *Stream) ServeHTTP(h http.Handler) {
	r, err := s.request()
	if err != nil {
		_ = s.WriteHead(http.StatusBadRequest, nil)
		return
	}
	ctx, cancel := context.WithCancel(s.c.ctx)
	defer cancel()
	s.onCancel(cancel)
	r = r.WithContext(ctx)
	w := &responseWriter{s: s, header: make(http.Header), head: s.method == http.MethodHead}
	defer func() {
		if p := recover(); p != nil {
			if err, _ := p.(error); !errors.Is(err, http.ErrAbortHandler) && s.c.cfg.Logger != nil {
				s.c.cfg.Logger.Error("h2 http handler panic", "stream", s.id, "panic", p)
			}
			s.Reset(http2.ErrCodeInternal)
			return
		}
		w.finish()
	}()
	h.ServeHTTP(w, r)
}

// request builds the *http.Request of the stream.
func (s *Stream) request() (*http.Request, error) {
	r := &http.Request{
		Method:     s.method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     make(http.Header, len(s.fields)),
		Host:       s.authority,
		RemoteAddr: s.c.remoteAddr,
		TLS:        s.c.tlsState,
		RequestURI: s.path,
	}
	var cookies []string
	for _, f := range s.fields {
		if f.Name == "cookie" {
			// RFC 9113 8.2.3: cookie pairs may come in fields of their own.
			cookies = append(cookies, f.Value)
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		r.Header[k] = append(r.Header[k], f.Value)
	}
	if len(cookies) > 0 {
		r.Header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if r.Host == "" {
		r.Host = r.Header.Get("Host")
	}
	var err error
	if s.method == http.MethodConnect {
		r.URL = &url.URL{Host: s.authority}
		r.RequestURI = s.authority
	} else if r.URL, err = url.ParseRequestURI(s.path); err != nil {
		return nil, err
	}
	for _, v := range r.Header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				continue
			}
			if r.Trailer == nil {
				r.Trailer = make(http.Header)
			}
			r.Trailer[k] = nil
		}
	}
	delete(r.Header, "Trailer")
	switch {
	case !s.HasBody():
		r.Body, r.ContentLength = http.NoBody, 0
	default:
		r.Body, r.ContentLength = &requestBody{s: s, r: r}, s.contentLength
	}
	return r, nil
}

// requestBody is an *http.Request's Body: the stream's, with its trailers set into
// Request.Trailer at the end.
type requestBody struct {
	s      *Stream
	r      *http.Request
	closed bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.s.Read(p)
	if errors.Is(err, io.EOF) {
		for _, f := range b.s.Trailers() {
			k := textproto.CanonicalMIMEHeaderKey(f.Name)
			if b.r.Trailer == nil {
				b.r.Trailer = make(http.Header)
			}
			b.r.Trailer[k] = append(b.r.Trailer[k], f.Value)
		}
	}
	return n, err
}

// Close makes further reads fail; what the client still sends is discarded when the
// handler returns.
func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// responseWriter is the http.ResponseWriter of a stream served by a net/http Handler.
type responseWriter struct {
	s           *Stream
	header      http.Header
	status      int
	wroteHeader bool // the head was given to the stream
	written     int64
	declared    []string // trailer names the Trailer field declared
	head        bool     // a HEAD request: the body is counted, not sent
	fields      []Field
}

// Header is the response header map, trailers declared in it included.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader records the status; the head goes out with the first body bytes or at the
// end, so that a body that fits gets a content-length and a sniffed content-type as net/http
// gives it. A 1xx status (but 101) goes out at once as an informational head.
func (w *responseWriter) WriteHeader(code int) {
	switch {
	case w.status != 0 || code < 100 || code > 999 || code == http.StatusSwitchingProtocols:
	case code < 200:
		// An informational answer goes out at once with the header map as it is (as
		// net/http does); the final answer follows.
		_ = w.s.WriteInterim(code, w.headerFields())
	default:
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.wroteHeader {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.writeHead(-1)
	}
	if w.head {
		w.written += int64(len(p))
		return len(p), nil
	}
	n, err := w.s.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush sends the head and what was written.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.wroteHeader {
		w.writeHead(-1)
	}
	_ = w.s.Flush()
}

// FlushError is Flush with its error, for http.ResponseController.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.wroteHeader {
		w.writeHead(-1)
	}
	return w.s.Flush()
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && (status < 100 || status > 199)
}

// writeHead gives the status and the header map to the stream. length, when not -1, is
// the whole body's length, known because the handler returned.
func (w *responseWriter) writeHead(length int64) {
	w.wroteHeader = true
	for _, v := range w.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = textproto.TrimString(k); k != "" {
				w.declared = append(w.declared, http.CanonicalHeaderKey(k))
			}
		}
	}
	if _, ok := w.header["Date"]; !ok {
		w.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if _, ok := w.header["Content-Length"]; !ok && length >= 0 && bodyAllowed(w.status) {
		w.header.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	fields := w.headerFields()
	_ = w.s.WriteHead(w.status, fields)
	w.fields = fields
}

// headerFields returns the header map as the fields of a head, in w.fields' array.
func (w *responseWriter) headerFields() []Field {
	fields := w.fields[:0]
	for k, vs := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		lk := strings.ToLower(k)
		if connectionSpecific(lk) {
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) { // as net/http, an invalid value is not sent
				fields = append(fields, Field{Name: lk, Value: v})
			}
		}
	}
	return fields
}

// finish ends the response when the handler returns: the head if it is still unsent, and
// the trailers.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !w.wroteHeader {
		w.writeHead(0)
	}
	trailers := w.fields[:0]
	for _, k := range w.declared {
		for _, v := range w.header[k] {
			trailers = append(trailers, Field{Name: strings.ToLower(k), Value: v})
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vs {
				trailers = append(trailers, Field{Name: strings.ToLower(name), Value: v})
			}
		}
	}
	if len(trailers) > 0 {
		w.s.SetTrailers(trailers)
	}
}
