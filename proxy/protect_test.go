package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange sends raw bytes on a new connection to the proxy and returns the status line
// of the answer, or "" when the proxy closed the connection without one.
func rawExchange(t *testing.T, port int, request string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// simpleEnv serves one route to one echo backend and returns the Gateway's port.
func simpleEnv(t *testing.T) int {
	t.Helper()
	port, _ := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, startEcho(t, "us", "web-1"))
	return port
}

// TestRequestSmuggling sends requests whose framing two parsers could read differently;
// the proxy must refuse them rather than pick one reading.
func TestRequestSmuggling(t *testing.T) {
	port := simpleEnv(t)
	for name, req := range map[string]string{
		"content-length and chunked": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"two content-lengths":        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
		"obfuscated chunked":         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
		"space before colon":         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	} {
		status := rawExchange(t, port, req)
		if !strings.HasPrefix(status, "HTTP/1.1 400") && !strings.HasPrefix(status, "HTTP/1.1 501") {
			t.Errorf("%s: answered %q, want the request refused (400 or 501)", name, status)
		}
	}
	if status := rawExchange(t, port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); status != "HTTP/1.1 200 OK" {
		t.Errorf("a well-formed request got %q", status)
	}
}

// TestOversizedHeaders refuses a request whose headers pass the limit.
func TestOversizedHeaders(t *testing.T) {
	port := simpleEnv(t)
	status := rawExchange(t, port, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	if !strings.HasPrefix(status, "HTTP/1.1 431") {
		t.Errorf("oversized headers: %q, want 431", status)
	}
}

// TestSlowloris holds a connection open sending a header byte at a time: the proxy closes
// it once the header timeout passes, and keeps serving others meanwhile.
func TestSlowloris(t *testing.T) {
	port := simpleEnv(t)
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := false
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\n")
	for time.Since(start) < 30*time.Second {
		if _, err := io.WriteString(conn, "X-A: b\r\n"); err != nil {
			closed = true
			break
		}
		client := &http.Client{Timeout: 5 * time.Second}
		if status, _ := get(t, client, url(port, "/"), "a", nil); status != http.StatusOK {
			t.Fatalf("other clients starved: status %d", status)
		}
		time.Sleep(time.Second)
	}
	if !closed {
		t.Fatal("a client that never finished its headers kept its connection for 30s")
	}
	t.Logf("slow client cut off after %v (header timeout 10s)", time.Since(start).Round(time.Second))
}
