package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// benchRoutes are the routes the proxy benchmarks compare: one the fast paths serve, and
// the same with a retry policy, which only net/http's ReverseProxy path serves.
var benchRoutes = []struct{ name, rule string }{
	{"fast path", `{backendRefs: [{name: svc0, port: 80}]}`},
	{"net/http", `{backendRefs: [{name: svc0, port: 80}], retry: {attempts: 1, codes: [503]}}`},
}

// benchUpstream starts the proxy benchmarks' minimal upstream: a small fixed answer per
// request (the proxy never pipelines), nothing allocated per request.
func benchUpstream(b testing.TB) *backend {
	return startRaw(b, func(_ int, conn net.Conn, br *bufio.Reader) {
		const answer = "HTTP/1.1 200 OK\r\nContent-Length: 36\r\n\r\nhello from the strait bench backend\n"
		for {
			if !skipHead(br) {
				return
			}
			if br.Buffered() == 0 {
				if _, err := io.WriteString(conn, answer); err != nil {
					return
				}
			}
		}
	}).backend
}

// BenchmarkHTTP1 sends keep-alive requests through the proxy to a minimal upstream, one at a
// time on one connection: the fast path, and net/http (the route has a retry policy, which
// only net/http serves). Client and upstream allocate nothing per request, so allocs/op are
// the proxy's.
func BenchmarkHTTP1(b *testing.B) {
	for _, bc := range benchRoutes {
		b.Run(bc.name, func(b *testing.B) {
			port, _ := routeEnv(b, bc.rule, benchUpstream(b))
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				if !skipResponse(br) {
					b.Fatal("no response")
				}
			}
		})
	}
}

// skipHead reads up to the end of a head.
func skipHead(br *bufio.Reader) bool {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(line) <= 2 {
			return true
		}
	}
}

var contentLength = []byte("Content-Length: ")

// skipResponse reads a response with a Content-Length body.
func skipResponse(br *bufio.Reader) bool {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(line) <= 2 {
			break
		}
		if bytes.HasPrefix(line, contentLength) {
			n = 0
			for _, c := range bytes.TrimSpace(line[len(contentLength):]) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return false
	}
	_, err := br.Discard(n)
	return err == nil
}
