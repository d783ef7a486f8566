package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/provider/file/filetest"
)

// policyPod is an echo backend that counts the requests it serves, apart from its health
// checks; a sick pod fails both.
type policyPod struct {
	name          string
	port          int
	served, probe atomic.Int64
}

func startPolicyPod(t *testing.T, name string, sick bool) *policyPod {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &policyPod{name: name, port: ln.Addr().(*net.TCPAddr).Port}
	healthy := echo.Handler(echo.Identity{Cluster: "us", Namespace: "default", Pod: name})
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			p.probe.Add(1)
		} else {
			p.served.Add(1)
		}
		if sick {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		healthy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// TestRunBackendTrafficPolicy runs `strait run` on a config whose manifests hold
// BackendTrafficPolicies, so that each policy goes the whole way: file provider, translator,
// xDS, and the proxy's upstream clusters and routes.
//
//   - health: a Service of three pods, one of which answers 503 on its health path (and on
//     every other path). Its policy checks /healthz every 100ms; once the proxy has probed
//     the sick pod, no user request reaches it and none fails.
//   - hash: a Service of three pods with a Maglev policy hashing the x-user header. Each user's
//     200 requests all reach one pod (round robin, the default, would spread them over the
//     three), and different users are spread over more than one pod.
func TestRunBackendTrafficPolicy(t *testing.T) {
	health := []*policyPod{startPolicyPod(t, "health-0", false), startPolicyPod(t, "health-sick", true), startPolicyPod(t, "health-2", false)}
	hash := []*policyPod{startPolicyPod(t, "hash-0", false), startPolicyPod(t, "hash-1", false), startPolicyPod(t, "hash-2", false)}
	ports := func(pods []*policyPod) []int {
		var out []int
		for _, p := range pods {
			out = append(out, p.port)
		}
		return out
	}
	gatewayPort := freePortNumber(t)
	manifests := filetest.Gateway("web", "HTTP", gatewayPort, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: health, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [health.local]
  rules: [{backendRefs: [{name: health, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hash, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [hash.local]
  rules: [{backendRefs: [{name: hash, port: 80}]}]
---
apiVersion: strait.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: health, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: health}]
  healthCheck:
    active:
      type: HTTP
      http: {path: /healthz}
      interval: 100ms
      timeout: 1s
---
apiVersion: strait.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: hash, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: hash}]
  loadBalancer:
    type: Maglev
    consistentHash: {type: Header, header: {name: x-user}}
---
` + filetest.Service("health", false, "", ports(health)...) + "---\n" + filetest.Service("hash", false, "", ports(hash)...)

	path := filetest.Write(t, t.TempDir(), "127.0.0.1", []filetest.Cluster{{Name: "us", Region: "us-east", Manifests: manifests}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, done := startRun(ctx, t, path)
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(host, user string) (status int, pod string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", gatewayPort), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if user != "" {
			req.Header.Set("x-user", user)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Echo-Pod")
	}

	t.Run("health check takes the sick pod out of rotation", func(t *testing.T) {
		// New endpoints take no traffic before their first probe, except while none of the
		// Service's has a verdict (then all do, as in Envoy's panic mode). A probe starts only
		// after the verdict of the previous one is applied, so a second probe of every pod
		// means each has its verdict. Users send nothing before.
		waitFor(t, func() bool {
			return health[0].probe.Load() >= 2 && health[1].probe.Load() >= 2 && health[2].probe.Load() >= 2
		})
		served := map[string]int{}
		for range 200 {
			status, pod := get("health.local", "")
			if status != http.StatusOK {
				t.Fatalf("a user request failed with %d (pod %q)", status, pod)
			}
			served[pod]++
		}
		if n := health[1].served.Load(); n != 0 {
			t.Errorf("the sick pod served %d user requests", n)
		}
		if served["health-0"] == 0 || served["health-2"] == 0 {
			t.Errorf("requests by pod %v: want both healthy pods to serve", served)
		}
		if health[0].probe.Load() == 0 || health[2].probe.Load() == 0 {
			t.Errorf("healthy pods were not probed: %d, %d", health[0].probe.Load(), health[2].probe.Load())
		}
	})

	t.Run("maglev pins a header value to one pod", func(t *testing.T) {
		podOf := map[string]string{}
		for _, user := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} {
			pods := map[string]int{}
			for range 200 {
				status, pod := get("hash.local", user)
				if status != http.StatusOK {
					t.Fatalf("request for %s failed with %d", user, status)
				}
				pods[pod]++
			}
			if len(pods) != 1 {
				t.Errorf("%s's requests reached %d pods, want 1: %v", user, len(pods), pods)
			}
			for pod := range pods {
				podOf[user] = pod
			}
		}
		distinct := map[string]bool{}
		for _, pod := range podOf {
			distinct[pod] = true
		}
		if len(distinct) < 2 {
			t.Errorf("eight users all reached %v: the header is not what spreads them", podOf)
		}
		var total int64
		for _, p := range hash {
			total += p.served.Load()
		}
		if total != 8*200 {
			t.Errorf("hash pods served %d requests, want %d", total, 8*200)
		}
	})
	if t.Failed() {
		t.Logf("config:\n%s", strings.TrimSpace(manifests))
	}
}

// TestTranslatePoliciesExample translates examples/policies, which docs/policies.md walks
// through, and checks that both policies are accepted and shape their clusters.
func TestTranslatePoliciesExample(t *testing.T) {
	stdout, stderr, err := runStrait(t, "translate", "--config", "../../examples/policies/strait.yaml", "-o", "json")
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, stderr)
	}
	var out struct {
		Nodes map[string]struct {
			Clusters []struct {
				Name         string `json:"name"`
				LbPolicy     string `json:"lbPolicy"`
				HealthChecks []struct {
					HTTPHealthCheck struct {
						Path string `json:"path"`
					} `json:"httpHealthCheck"`
				} `json:"healthChecks"`
			} `json:"clusters"`
		} `json:"nodes"`
		Statuses []struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Status struct {
				Ancestors []struct {
					Conditions []struct {
						Type   string `json:"type"`
						Status string `json:"status"`
					} `json:"conditions"`
				} `json:"ancestors"`
			} `json:"status"`
		} `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	got := map[string]string{}
	for _, c := range out.Nodes["us/default/web"].Clusters {
		got[c.Name] = c.LbPolicy
		for _, hc := range c.HealthChecks {
			got[c.Name] += " " + hc.HTTPHealthCheck.Path
		}
	}
	for _, s := range out.Statuses {
		if s.Kind != "BackendTrafficPolicy" {
			continue
		}
		for _, a := range s.Status.Ancestors {
			for _, c := range a.Conditions {
				got[s.Name] += c.Type + "=" + c.Status
			}
		}
	}
	want := map[string]string{
		"us/default/podinfo/80":        "LEAST_REQUEST /healthz",
		"us/default/podinfo-sticky/80": "MAGLEV",
		"podinfo":                      "Accepted=True",
		"podinfo-sticky":               "Accepted=True",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clusters and policy statuses (-want +got):\n%s", diff)
	}
}
