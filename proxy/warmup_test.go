package proxy_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/proxy"
)

// TestReadyAfterFirstHealthCheck checks that a proxy is not ready while the first active
// health check of its endpoints is in flight (the endpoint would take no traffic yet), and
// is ready, with the endpoint serving, once the check answers.
func TestReadyAfterFirstHealthCheck(t *testing.T) {
	probed, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	be := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			select {
			case probed <- struct{}{}:
			default:
			}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	e := newEnv(t, []filetest.Cluster{{Name: "us"}}) // no Gateway yet, so no proxy
	port := freePort(t)
	e.update([]filetest.Cluster{{Name: "us", Manifests: gateway("web", "HTTP", port, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: svc0, port: 80}]}]
---
apiVersion: strait.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: health, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: svc0}]
  healthCheck:
    active: {type: HTTP, http: {path: /healthz}, interval: 10s, timeout: 30s}
---
` + service("svc0", false, "", be)}})

	px := proxy.New(proxy.Options{XDS: e.xds.Addr(), Node: "us/default/web", DrainTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- px.Start(ctx) }()
	t.Cleanup(func() {
		unblock()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})

	select {
	case <-probed:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend was never health checked")
	}
	select {
	case <-px.Ready():
		t.Fatal("the proxy is ready while its endpoint's first health check is in flight")
	default:
	}
	unblock()
	select {
	case <-px.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy never became ready after the health check passed")
	}
	if status, _ := get(t, &http.Client{Timeout: 5 * time.Second}, url(port, "/"), "", nil); status != http.StatusOK {
		t.Errorf("first request after ready: status %d, want 200 from the checked endpoint", status)
	}
}
