package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func reader(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 64) }

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		err       error
		body      Framing
		length    int64
		keepAlive bool
	}{
		{name: "simple", in: "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", body: NoBody, keepAlive: true},
		{name: "leading empty lines and bare LF", in: "\r\n\nGET / HTTP/1.1\nHost: x\n\n", body: NoBody, keepAlive: true},
		{name: "content-length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", body: Length, length: 5, keepAlive: true},
		{name: "same content-length twice", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", body: Length, length: 1, keepAlive: true},
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", body: Chunked, length: -1, keepAlive: true},
		{name: "connection close", in: "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", body: NoBody},
		{name: "HTTP/1.0", in: "GET / HTTP/1.0\r\n\r\n", body: NoBody},
		{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", body: NoBody, keepAlive: true},
		{name: "long field across the buffer", in: "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("v", 300) + "\r\n\r\n", body: NoBody, keepAlive: true},
		{name: "content-length and chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "differing content-lengths", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "signed content-length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "coding other than chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "chunked twice", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "space before colon", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", err: ErrAmbiguousFraming},
		{name: "obsolete folding", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", err: ErrMalformed},
		{name: "no Host in HTTP/1.1", in: "GET / HTTP/1.1\r\n\r\n", err: ErrMalformed},
		{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: ErrMalformed},
		{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", err: ErrMalformed},
		{name: "control character in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", err: ErrMalformed},
		{name: "bare CR in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", err: ErrMalformed},
		{name: "too large", in: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2000) + "\r\n\r\n", err: ErrHeaderTooLarge},
		{name: "cut short", in: "GET / HTTP/1.1\r\nHost: x\r\n", err: io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			err := ReadRequest(reader(tc.in), &req, 1024)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Body != tc.body || (tc.body != NoBody && req.ContentLength != tc.length) || req.KeepAlive != tc.keepAlive {
				t.Errorf("body %d length %d keep-alive %v, want %d %d %v", req.Body, req.ContentLength, req.KeepAlive, tc.body, tc.length, tc.keepAlive)
			}
		})
	}
}

// TestReadRequestPipelined reads requests sent back to back, reusing one Request.
func TestReadRequestPipelined(t *testing.T) {
	br := reader("GET /1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: c\r\n\r\n")
	var req Request
	for i, want := range []string{"/1 a", "/2 b", "/3 c"} {
		if err := ReadRequest(br, &req, 1024); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := string(req.Target) + " " + string(req.Host); got != want {
			t.Errorf("request %d: %q, want %q", i, got, want)
		}
		if req.Body == Length {
			var out strings.Builder
			w := bufio.NewWriter(&out)
			if err := CopyBody(w, br, req.Body, req.ContentLength, Length); err != nil {
				t.Fatal(err)
			}
			_ = w.Flush()
			if out.String() != "abc" {
				t.Errorf("body %q", out.String())
			}
		}
	}
	if err := ReadRequest(br, &req, 1024); !errors.Is(err, io.EOF) {
		t.Errorf("after the last request: %v, want io.EOF", err)
	}
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		head      bool
		body      Framing
		length    int64
		keepAlive bool
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", body: Length, length: 3, keepAlive: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", body: Chunked, length: -1, keepAlive: true},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\nabc", body: UntilClose, length: -1},
		{name: "HEAD keeps its length", in: "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n", head: true, body: NoBody, length: 30, keepAlive: true},
		{name: "204", in: "HTTP/1.1 204 No Content\r\n\r\n", body: NoBody, length: -1, keepAlive: true},
		{name: "304 keeps its length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", body: NoBody, length: 9, keepAlive: true},
		{name: "103", in: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", body: NoBody, length: -1, keepAlive: true},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na", body: Length, length: 1},
		{name: "no reason", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", body: Length, length: 0, keepAlive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp Response
			if err := ReadResponse(reader(tc.in), &resp, tc.head, 1024); err != nil {
				t.Fatal(err)
			}
			if resp.Body != tc.body || resp.ContentLength != tc.length || resp.KeepAlive != tc.keepAlive {
				t.Errorf("body %d length %d keep-alive %v, want %d %d %v", resp.Body, resp.ContentLength, resp.KeepAlive, tc.body, tc.length, tc.keepAlive)
			}
		})
	}
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
	} {
		var resp Response
		if err := ReadResponse(reader(in), &resp, false, 1024); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestHeader(t *testing.T) {
	var req Request
	in := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nX-A: 1\r\nx-a: 2\r\nTE: trailers\r\n\r\n"
	if err := ReadRequest(reader(in), &req, 1024); err != nil {
		t.Fatal(err)
	}
	if v, ok := req.Joined("X-A"); !ok || v != "1,2" {
		t.Errorf("Joined = %q %v", v, ok)
	}
	req.StripHopByHop()
	req.Set("X-A", "3")
	req.Add("X-B", "4")
	var out strings.Builder
	w := bufio.NewWriter(&out)
	req.Write(w, nil)
	_ = w.Flush()
	if want := "Host: x\r\nX-A: 3\r\nX-B: 4\r\n"; out.String() != want {
		t.Errorf("fields:\n%q\nwant\n%q", out.String(), want)
	}
}

// FuzzReadRequest reads arbitrary bytes as requests: it never panics, and what it accepts
// net/http reads the same way (method, target, Host, body framing), so that no server behind
// the proxy can read another request out of the same bytes.
func FuzzReadRequest(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	f.Add("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\nHost: x\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		var req Request
		if err := ReadRequest(bufio.NewReaderSize(strings.NewReader(in), 64), &req, 4096); err != nil {
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return // stricter than net/http elsewhere (Host syntax and the like) is fine
		}
		if std.Method != req.Method || std.RequestURI != string(req.Target) || std.Host != string(req.Host) {
			t.Fatalf("%q: read as %s %s (Host %q), net/http %s %s (Host %q)", in, req.Method, req.Target, req.Host, std.Method, std.RequestURI, std.Host)
		}
		chunked := len(std.TransferEncoding) > 0
		if chunked != (req.Body == Chunked) || (req.Body == Length && std.ContentLength != req.ContentLength) ||
			(req.Body == NoBody && std.ContentLength > 0) {
			t.Fatalf("%q: framing %d/%d, net/http chunked %v length %d", in, req.Body, req.ContentLength, chunked, std.ContentLength)
		}
	})
}

func BenchmarkReadRequest(b *testing.B) {
	in := "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"
	sr := strings.NewReader(in)
	br := bufio.NewReaderSize(sr, 4096)
	var req Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		sr.Reset(in)
		br.Reset(sr)
		if err := ReadRequest(br, &req, 64<<10); err != nil {
			b.Fatal(err)
		}
	}
}
