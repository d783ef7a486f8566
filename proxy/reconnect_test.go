package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/proxy"
)

// importEnv serves a route in us to the ServiceImport podinfo, exported by us (the
// backends usBackends, priority 0) and eu (euBackend, priority 1), and returns the
// Gateway's port, the proxy's metrics and its access log.
func importEnv(t *testing.T, euBackend *backend, usBackends ...*backend) (int, *prometheus.Registry, *safeBuffer) {
	t.Helper()
	port := freePort(t)
	route := `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: podinfo, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules:
  - backendRefs: [{group: multicluster.x-k8s.io, kind: ServiceImport, name: podinfo, port: 80}]
`
	reg := prometheus.NewRegistry()
	log := &safeBuffer{}
	newEnv(t, []filetest.Cluster{
		{Name: "eu", Region: "eu-west", Network: "n", Manifests: service("podinfo", true, "", euBackend)},
		{Name: "us", Region: "us-east", Network: "n", Manifests: gateway("web", "HTTP", port, "") + "---\n" + service("podinfo", true, "", usBackends...) + route},
	}, func(o *proxy.Options) {
		o.Registerer = reg
		o.AccessLog = slog.New(slog.NewJSONHandler(log, nil))
	})
	return port, reg, log
}

// upstreamMetric returns the sum of a strait_upstream_ counter or gauge over every cluster
// and label.
func upstreamMetric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == "strait_upstream_"+name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestReconnect stops the only endpoint of priority 0 of a ServiceImport, before the
// control plane or any health check knows: on the fast path (HTTP/1.1) and on HTTP/2
// (h2c), every request, a POST with a body too, is answered by priority 1, whose address the
// access log gives as the upstream, and the refused connections count as connect failures.
func TestReconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"fast path", &http.Client{Timeout: 5 * time.Second}},
		{"h2c", h2cClient()}, // HTTP/2 streams, forwarded by the codec too (serveCodec)
	} {
		t.Run(tc.name, func(t *testing.T) {
			us, eu := startEcho(t, "us", "us-1"), startEcho(t, "eu", "eu-1")
			port, reg, log := importEnv(t, eu, us)
			if status, er := get(t, tc.client, url(port, "/"), "podinfo.local", nil); status != http.StatusOK || er.Cluster != "us" {
				t.Fatalf("before us stopped: status %d from %q, want 200 from us", status, er.Cluster)
			}
			// Its access log line may come after its response: wait for it, so that it is not
			// taken for a line of the requests after us stopped.
			for wait := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "\n") && time.Now().Before(wait); {
				time.Sleep(10 * time.Millisecond)
			}
			// The proxy holds a pooled connection to us, which stopping closes: the first
			// request (a POST, which cannot be resent once sent) finds it closed, cannot
			// connect to us either, and goes to eu.
			us.stop()
			logged := len(log.String())
			for i := range 20 {
				method, body := http.MethodPost, "payload"
				if i%2 == 1 {
					method, body = http.MethodGet, ""
				}
				req, err := http.NewRequest(method, url(port, "/"), strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "podinfo.local"
				resp, err := tc.client.Do(req)
				if err != nil {
					t.Fatalf("%s %d: %v", method, i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var er echo.Response
				_ = json.Unmarshal(b, &er)
				if resp.StatusCode != http.StatusOK || er.Cluster != "eu" || er.Method != method {
					t.Fatalf("%s %d after us stopped: status %d, %s from %q, want 200 from eu", method, i, resp.StatusCode, er.Method, er.Cluster)
				}
			}
			// A line is written once its response went out: the last may come after it.
			var lines []string
			for wait := time.Now().Add(5 * time.Second); len(lines) < 20 && time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
				lines = strings.Split(strings.TrimSpace(log.String()[logged:]), "\n")
			}
			want := fmt.Sprintf("127.0.0.1:%d", eu.port)
			for _, l := range lines {
				var line struct{ Upstream string }
				if err := json.Unmarshal([]byte(l), &line); err != nil || line.Upstream != want {
					t.Fatalf("access log line %q after us stopped: upstream %q, want %s", l, line.Upstream, want)
				}
			}
			if len(lines) != 20 {
				t.Errorf("%d access log lines after us stopped, want 20", len(lines))
			}
			failures, retries := upstreamMetric(t, reg, "connect_failures_total"), upstreamMetric(t, reg, "connect_retries_total")
			if failures == 0 || retries != failures {
				t.Errorf("%v connect failures and %v connect retries, want as many, at least one", failures, retries)
			}
		})
	}
}

// TestNoResendAfterBody has the endpoint of priority 0 read a POST's head and body and
// close the connection without answering: the request reached a backend, so it is not sent
// to another endpoint, and the client gets the failure.
func TestNoResendAfterBody(t *testing.T) {
	var reached atomic.Int64
	dying := startRaw(t, func(_ int, conn net.Conn, br *bufio.Reader) {
		if _, err := readHead(br); err == nil {
			reached.Add(1)
		}
	})
	var other atomic.Int64
	eu := startHandler(t, func(w http.ResponseWriter, _ *http.Request) {
		other.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	port, _, _ := importEnv(t, eu, dying.backend)
	for _, client := range []*http.Client{{Timeout: 5 * time.Second}, h2cClient()} {
		req, err := http.NewRequest(http.MethodPost, url(port, "/"), strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "podinfo.local"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("a POST the backend took and dropped was answered 200")
		}
	}
	if reached.Load() != 2 || other.Load() != 0 {
		t.Errorf("the dying endpoint got %d POSTs and the other %d, want 2 and 0", reached.Load(), other.Load())
	}
}
