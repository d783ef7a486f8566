package proxy_test

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// startHandler serves h on a loopback port until the test ends.
func startHandler(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{port: ln.Addr().(*net.TCPAddr).Port, srv: &http.Server{Handler: h, ReadHeaderTimeout: time.Second}}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.stop)
	return b
}

// routeEnv serves one HTTPRoute rule with backends svc0, svc1... and returns the Gateway's
// port.
func routeEnv(t testing.TB, rule string, backends ...*backend) (int, *env) {
	t.Helper()
	port := freePort(t)
	manifests := gateway("web", "HTTP", port, "") + fmt.Sprintf(`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
  - %s
---
`, rule)
	for i, b := range backends {
		if i > 0 {
			manifests += "---\n"
		}
		manifests += service(fmt.Sprintf("svc%d", i), false, "", b)
	}
	return port, newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})
}

// TestRetry retries a 503 as the route's retry policy says, and a POST whose body was
// buffered as well; without a policy the 503 is the answer.
func TestRetry(t *testing.T) {
	var calls atomic.Int64
	flaky := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	port, _ := routeEnv(t, `{retry: {codes: [503], attempts: 2, backoff: 1ms}, backendRefs: [{name: svc0, port: 80}]}`, flaky)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 10 {
		if status, _ := get(t, client, url(port, "/"), "a", nil); status != http.StatusOK {
			t.Fatalf("status %d: the 503 was not retried", status)
		}
	}
	if calls.Load() != 20 {
		t.Errorf("backend saw %d calls for 10 requests, want 20 (one retry each)", calls.Load())
	}
}

// TestRequestTimeout answers 504 when the backend is slower than the route's timeout.
func TestRequestTimeout(t *testing.T) {
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	port, _ := routeEnv(t, `{timeouts: {request: 200ms}, backendRefs: [{name: svc0, port: 80}]}`, slow)
	start := time.Now()
	status, _ := get(t, &http.Client{Timeout: 5 * time.Second}, url(port, "/"), "a", nil)
	if status != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", status)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("the timeout answer took %v", elapsed)
	}
}

// TestRequestMirror mirrors every request to a second backend without waiting for it.
func TestRequestMirror(t *testing.T) {
	main := startEcho(t, "us", "main")
	var mirrored atomic.Int64
	release := make(chan struct{})
	mirror := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		mirrored.Add(1)
		<-release // a slow mirror must not delay the main request
	})
	defer close(release)
	port, _ := routeEnv(t, `{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: svc1, port: 80}}}], backendRefs: [{name: svc0, port: 80}]}`, main, mirror)
	client := &http.Client{Timeout: 2 * time.Second}
	for range 5 {
		if status, er := get(t, client, url(port, "/"), "a", nil); status != http.StatusOK || er.Pod != "main" {
			t.Fatalf("status %d from %q", status, er.Pod)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for mirrored.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if mirrored.Load() != 5 {
		t.Errorf("mirror saw %d requests, want 5", mirrored.Load())
	}
}
