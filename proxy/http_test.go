package proxy_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// canaryClusters is us with a Gateway whose route splits podinfo 90/10 between us's backend
// and eu's (through the mirror Service podinfo-eu).
func canaryClusters(port int, us, eu *backend, usWeight, euWeight int) []filetest.Cluster {
	route := fmt.Sprintf(`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: podinfo, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [podinfo.local]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Route, value: canary-100%%}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: X-Served-By, value: strait}]}
    backendRefs:
    - {name: podinfo, port: 80, weight: %d}
    - {name: podinfo-eu, port: 80, weight: %d}
`, usWeight, euWeight)
	return []filetest.Cluster{
		{Name: "eu", Region: "eu-west", Network: "n", Manifests: service("podinfo", true, "", eu)},
		{Name: "us", Region: "us-east", Network: "n", Manifests: gateway("web", "HTTP", port, "") + "---\n" + service("podinfo", true, "", us) + route},
	}
}

// TestHTTPCanarySplit sends 2,000 requests through a 90/10 cross-cluster split. The count
// for eu is binomial (mean 200, standard deviation 13.4); five deviations either side make a
// false failure a one-in-a-million event.
func TestHTTPCanarySplit(t *testing.T) {
	us, eu := startEcho(t, "us", "podinfo-us-1"), startEcho(t, "eu", "podinfo-eu-1")
	port := freePort(t)
	newEnv(t, canaryClusters(port, us, eu, 90, 10))

	client := &http.Client{Timeout: 5 * time.Second}
	counts := map[string]int{}
	const requests = 2000
	for range requests {
		status, er := get(t, client, url(port, "/"), "podinfo.local", nil)
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		counts[er.Cluster]++
		if er.Headers["X-Route"][0] != "canary-100%" {
			t.Fatalf("request header modifier not applied: %v", er.Headers)
		}
	}
	t.Logf("split: %v", counts)
	if counts["us"]+counts["eu"] != requests {
		t.Fatalf("answers from unexpected backends: %v", counts)
	}
	if eu := counts["eu"]; eu < 133 || eu > 267 {
		t.Fatalf("eu got %d of %d, want 200 ± 67 for a 90/10 split", eu, requests)
	}

	req, _ := http.NewRequest(http.MethodGet, url(port, "/"), nil)
	req.Host = "podinfo.local"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Served-By") != "strait" {
		t.Errorf("response header modifier not applied: %v", resp.Header)
	}
	if status, _ := get(t, client, url(port, "/"), "unknown.local", nil); status != http.StatusNotFound {
		t.Errorf("unknown host: status %d, want 404", status)
	}
}

// TestConfigSwapUnderLoad changes the split back and forth while clients send requests
// without pause: no request may fail.
func TestConfigSwapUnderLoad(t *testing.T) {
	us, eu := startEcho(t, "us", "us-1"), startEcho(t, "eu", "eu-1")
	port := freePort(t)
	e := newEnv(t, canaryClusters(port, us, eu, 90, 10))

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, url(port, "/"), nil)
				req.Host = "podinfo.local"
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	for i := range 10 {
		if i%2 == 0 {
			e.update(canaryClusters(port, us, eu, 10, 90))
		} else {
			e.update(canaryClusters(port, us, eu, 90, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests across 10 configuration changes, %d failed", sent.Load(), failed.Load())
	if sent.Load() < 100 {
		t.Fatalf("only %d requests sent", sent.Load())
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during configuration changes", failed.Load(), sent.Load())
	}
}
