package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait-gw/strait/e2e/echo"
)

// demoTestFailoverBound bounds how long after us's pods are killed failover.podinfo.local
// must answer from eu and ap. The proxy's outlier detection alone does it (the test keeps
// the EndpointSlices ready): it ejects an endpoint after 3 consecutive gateway failures,
// which the demo's and the test's requests make in well under a second.
const demoTestFailoverBound = 5 * time.Second

// TestDemo runs `strait demo` as a user would, with --quiet on free ports, and checks the
// routing it advertises through the Gateways it prints: the canary splits between us and
// eu, the failover host answers from us, each other Gateway from its own cluster. Then the
// u key kills us's pods, with EndpointSlices that stay ready so that only the proxy can
// notice, and failover.podinfo.local must answer from eu and ap within
// demoTestFailoverBound, every failure before that an honest 503. u again restores the pods
// on their ports; q quits cleanly, and the demo's directory is gone.
func TestDemo(t *testing.T) {
	run := startDemo(t, "--endpoint-delay", "-1s")
	us, eu, ap := run.gateways["us"], run.gateways["eu"], run.gateways["ap"]

	if got := httpStatus("http://" + run.admin + "/readyz"); got != http.StatusOK {
		t.Errorf("admin /readyz = %d, want 200", got)
	}

	// The canary: 90% us, 10% eu. 200 requests make a missing eu a one in a billion event.
	counts := map[string]int{}
	for range 200 {
		r, err := demoTestGet(us, demoCanaryHost)
		if err != nil {
			t.Fatalf("podinfo.local at the us Gateway: %v", err)
		}
		counts[r.Cluster]++
		if r.Namespace != "default" || !strings.HasPrefix(r.Pod, "podinfo-"+r.Cluster+"-") {
			t.Fatalf("podinfo.local answered from %+v", r.Identity)
		}
	}
	if counts["us"]+counts["eu"] != 200 || counts["eu"] < 4 || counts["eu"] > 50 {
		t.Errorf("podinfo.local: answers per cluster %v, want about 180 us and 20 eu", counts)
	}
	demoExpect(t, us, demoFailoverHost, 20, "us")
	demoExpect(t, eu, demoCanaryHost, 10, "eu")
	demoExpect(t, ap, demoCanaryHost, 10, "ap")

	// Kill us's pods with the key that does it.
	run.key("u")
	run.waitOutput("us: pods killed")
	for _, pod := range run.pods["us"] {
		if _, err := demoTestGet(pod, demoCanaryHost); err == nil {
			t.Errorf("killed pod %s still answers", pod)
		}
	}
	took, failures, seen := demoWaitAnswers(t, us, demoFailoverHost, demoTestFailoverBound, "eu", "ap")
	// eu and ap share the second priority equally: one missing from 20 answers is a one in
	// a million event.
	if seen["eu"] == 0 || seen["ap"] == 0 {
		t.Errorf("failover.podinfo.local after the failover: answers %v, want eu and ap", seen)
	}
	t.Logf("failover.podinfo.local answered from eu and ap %s after us's pods were killed; the test saw %v before",
		took.Round(time.Millisecond), failures)
	for reason := range failures {
		if reason != "HTTP 503" {
			t.Errorf("failover.podinfo.local failed with %s, want 503 (a connection refused)", reason)
		}
	}
	// The canary's us share has nowhere to go: a Service backend is that cluster's pods only.
	for range 20 {
		if r, err := demoTestGet(us, demoCanaryHost); err == nil && r.Cluster != "eu" {
			t.Fatalf("podinfo.local answered from %s while us's pods are down", r.Cluster)
		}
	}

	// Restore them on the same ports. The canary's us share comes back at once: with every
	// endpoint of a cluster ejected, the proxy balances over all of them (Envoy's panic
	// mode). The failover host comes back to us only when the ejection ends (30s).
	run.key("u")
	run.waitOutput("us: pods restored")
	for _, pod := range run.pods["us"] {
		if r, err := demoTestGet(pod, demoCanaryHost); err != nil || r.Cluster != "us" {
			t.Errorf("restored pod %s: %+v, %v", pod, r.Identity, err)
		}
	}
	if _, _, seen := demoWaitAnswers(t, us, demoCanaryHost, 10*time.Second, "us", "eu"); seen["us"] == 0 {
		t.Errorf("podinfo.local after the restore: answers %v, want mostly us", seen)
	}

	run.key("q")
	if err := run.wait(40 * time.Second); err != nil {
		t.Fatalf("demo: %v\n%s", err, run.output())
	}
	if out := run.output(); !strings.Contains(out, "Stopped after") {
		t.Errorf("no summary at exit:\n%s", out)
	}
	if _, err := os.Stat(run.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there: %v", run.dir, err)
	}
}

// TestDemoEndpointSlices checks the other half of a kill: after --endpoint-delay the
// cluster's EndpointSlices say its pods are not ready, and the us proxy's configuration
// follows; a restore makes them ready again.
func TestDemoEndpointSlices(t *testing.T) {
	run := startDemo(t, "--endpoint-delay", "200ms", "--rate", "1")
	usPods := func() map[string]string {
		health := map[string]string{}
		var cfg struct {
			Proxies map[string]struct {
				Endpoints []struct {
					ClusterName string `json:"clusterName"`
					Endpoints   []struct {
						LbEndpoints []struct {
							Endpoint struct {
								Address struct {
									SocketAddress struct {
										PortValue int `json:"portValue"`
									} `json:"socketAddress"`
								} `json:"address"`
							} `json:"endpoint"`
							HealthStatus string `json:"healthStatus"`
						} `json:"lbEndpoints"`
					} `json:"endpoints"`
				} `json:"endpoints"`
			} `json:"proxies"`
		}
		if err := json.Unmarshal([]byte(httpBody(t, "http://"+run.admin+"/debug/config")), &cfg); err != nil {
			t.Fatal(err)
		}
		for _, cla := range cfg.Proxies["us/default/web"].Endpoints {
			if cla.ClusterName != "import/default/podinfo/80" {
				continue
			}
			for _, loc := range cla.Endpoints {
				for _, ep := range loc.LbEndpoints {
					addr := fmt.Sprintf("127.0.0.1:%d", ep.Endpoint.Address.SocketAddress.PortValue)
					if slices.Contains(run.pods["us"], addr) {
						health[addr] = ep.HealthStatus
					}
				}
			}
		}
		return health
	}
	allHealth := func(want string) func() bool {
		return func() bool {
			h := usPods()
			for _, pod := range run.pods["us"] {
				if h[pod] != want && (want != "UNHEALTHY" || h[pod] != "") {
					return false
				}
			}
			return true
		}
	}
	if !allHealth("HEALTHY")() {
		t.Fatalf("us's pods at the start: %v", usPods())
	}
	run.key("u")
	run.waitOutput("us: EndpointSlices say the pods are not ready")
	waitFor(t, allHealth("UNHEALTHY"))
	run.key("u")
	run.waitOutput("us: pods restored")
	waitFor(t, allHealth("HEALTHY"))
}

// TestDemoBusyPort checks that a Gateway port given with --ports must be free, while a
// busy default port is replaced by a free one.
func TestDemoBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	_, _, err = runStrait(t, "demo", "--quiet", "--duration", "1s", "--admin-port", "0",
		"--ports", fmt.Sprintf("us=0,eu=%d,ap=0", port))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("eu Gateway: port %d is not free", port)) {
		t.Errorf("explicit busy port: err = %v", err)
	}

	var h demoPortHolder
	defer h.release()
	got, err := h.pick(port, false)
	if err != nil || got == port || got == 0 {
		t.Errorf("busy default port %d: picked %d, %v", port, got, err)
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "--rate must be between 1 and 500"},
		{[]string{"--ports", "mars=1"}, `unknown cluster "mars"`},
		{[]string{"--ports", "us=9000,eu=9000"}, "both ask for port 9000"},
		{[]string{"--duration", "-1s"}, "--duration must not be negative"},
	} {
		_, _, err := runStrait(t, append([]string{"demo"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("demo %v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestDemoStatsWindow checks that the table sums the whole seconds of the window only.
func TestDemoStatsWindow(t *testing.T) {
	s := newDemoStats()
	base := time.Unix(1000, 0)
	for sec := range 10 {
		at := base.Add(time.Duration(sec) * time.Second)
		s.record(at, demoCanaryHost, "us", "")
		s.record(at, demoCanaryHost, "eu", "")
		if sec == 8 {
			s.record(at, demoCanaryHost, "", "HTTP 503")
		}
	}
	w, total := s.window(base.Add(9*time.Second+500*time.Millisecond), demoCanaryHost)
	// Seconds 4 to 8: 10 answers and the error; second 9 is not over yet.
	if w.requests != 11 || w.answers["us"] != 5 || w.answers["eu"] != 5 || w.failed() != 1 {
		t.Errorf("window = %+v", w)
	}
	if total.requests != 21 || total.errors["HTTP 503"] != 1 {
		t.Errorf("total = %+v", total)
	}
	if w, _ := s.window(base.Add(time.Minute), demoCanaryHost); w.requests != 0 {
		t.Errorf("a minute later the window still has %d requests", w.requests)
	}
}

// TestDemoScreenFits checks that the live table fits an 80x24 terminal.
func TestDemoScreenFits(t *testing.T) {
	d := &demo{opts: demoOptions{rate: 20}, stats: newDemoStats(), start: time.Now(), admin: "127.0.0.1:9901", keys: true, out: io.Discard}
	for _, spec := range demoClusterSpecs {
		c := &demoCluster{demoClusterSpec: spec, gatewayPort: 65535, pods: []*demoPod{{}, {}}}
		d.clusters = append(d.clusters, c)
	}
	d.clusters[0].down, d.clusters[0].since = true, time.Now().Add(-time.Hour)
	d.clusters[1].since = time.Now().Add(-59 * time.Second)
	now := time.Now()
	// The most requests a window can count, all failed.
	for range demoMaxRate*demoWindow - 1 {
		d.stats.record(now.Add(-time.Second), demoFailoverHost, "", "HTTP 503")
	}
	d.stats.record(now.Add(-time.Second), demoFailoverHost, "", "timeout")
	for range demoEvents + 2 {
		d.event("us: cannot restore podinfo-us-1 on port 65535: listen tcp 127.0.0.1:65535: bind: address already in use")
	}
	d.live = true
	screen := regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`).ReplaceAllString(d.screen(now), "")
	lines := strings.Split(screen, "\n")
	if len(lines) > 24 {
		t.Errorf("%d lines:\n%s", len(lines), screen)
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			t.Errorf("line of %d characters: %q", len([]rune(l)), l)
		}
	}
}

// demoRun is a `strait demo` running in the test.
type demoRun struct {
	t        *testing.T
	out      *demoBuffer
	in       *io.PipeWriter
	done     chan error
	cancel   context.CancelFunc
	gateways map[string]string
	// pods are each cluster's pod addresses.
	pods  map[string][]string
	admin string
	dir   string
}

// startDemo runs `strait demo --quiet` on free ports with extra args and waits until it
// says it is ready; it reads the Gateways, admin address and directory from its output.
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	inR, inW := io.Pipe()
	run := &demoRun{t: t, out: &demoBuffer{}, in: inW, done: make(chan error, 1), cancel: cancel}
	cmd := newRootCommand()
	cmd.SetArgs(append([]string{"demo", "--quiet", "--duration", "90s", "--rate", "5",
		"--ports", "us=0,eu=0,ap=0", "--admin-port", "0"}, args...))
	cmd.SetIn(inR)
	cmd.SetOut(run.out)
	cmd.SetErr(run.out)
	go func() { run.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = inW.Close()
		_ = run.wait(40 * time.Second)
	})
	run.waitOutput("Ready.")

	out := run.output()
	run.gateways = map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(us|eu|ap)\s+\S+\s+gateway http://(127\.0\.0\.1:\d+)`).FindAllStringSubmatch(out, -1) {
		run.gateways[m[1]] = m[2]
	}
	run.pods = map[string][]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(us|eu|ap)\s.*pods (.*)$`).FindAllStringSubmatch(out, -1) {
		for _, pm := range regexp.MustCompile(`podinfo-\w+-\d+ (127\.0\.0\.1:\d+)`).FindAllStringSubmatch(m[2], -1) {
			run.pods[m[1]] = append(run.pods[m[1]], pm[1])
		}
	}
	if len(run.gateways) != 3 || len(run.pods["us"]) != demoPodsPerCluster {
		t.Fatalf("the demo did not print three Gateways and their pods:\n%s", out)
	}
	if m := regexp.MustCompile(`Admin: http://(127\.0\.0\.1:\d+)/readyz`).FindStringSubmatch(out); m != nil {
		run.admin = m[1]
	}
	if m := regexp.MustCompile(`Config: (\S+)/strait\.yaml`).FindStringSubmatch(out); m != nil {
		run.dir = m[1]
	}
	if run.admin == "" || run.dir == "" {
		t.Fatalf("the demo did not print its admin address and config:\n%s", out)
	}
	for cluster, addr := range run.gateways {
		if !strings.Contains(out, fmt.Sprintf("curl -H 'Host: podinfo.local' http://%s/", addr)) {
			t.Errorf("no curl command for the %s Gateway:\n%s", cluster, out)
		}
	}
	return run
}

// key types a key and Enter.
func (r *demoRun) key(k string) {
	r.t.Helper()
	if _, err := io.WriteString(r.in, k+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

func (r *demoRun) output() string { return r.out.String() }

// waitOutput waits until the output contains s, failing if the demo stops first.
func (r *demoRun) waitOutput(s string) {
	r.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !strings.Contains(r.output(), s) {
		select {
		case err := <-r.done:
			r.done <- err
			r.t.Fatalf("the demo stopped (%v) before printing %q:\n%s", err, s, r.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the demo did not print %q:\n%s", s, r.output())
		}
	}
}

// wait waits for the demo to return.
func (r *demoRun) wait(bound time.Duration) error {
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(bound):
		return fmt.Errorf("still running after %s", bound)
	}
}

// demoExpect sends n requests for host to the Gateway at addr and checks that every one
// is answered from one of the clusters.
func demoExpect(t *testing.T, addr, host string, n int, clusters ...string) {
	t.Helper()
	for range n {
		r, err := demoTestGet(addr, host)
		if err != nil {
			t.Fatalf("%s at %s: %v", host, addr, err)
		}
		if !slices.Contains(clusters, r.Cluster) {
			t.Fatalf("%s at %s answered from %s, want %v", host, addr, r.Cluster, clusters)
		}
	}
}

// demoWaitAnswers waits, up to bound, until 20 requests in a row for host at addr are
// answered from the clusters. It returns how long that took, up to the first of those
// answers, the failures seen before by reason, and those 20 answers by cluster.
func demoWaitAnswers(t *testing.T, addr, host string, bound time.Duration, clusters ...string) (took time.Duration, failures, seen map[string]int) {
	t.Helper()
	const inRow = 20
	start := time.Now()
	var first time.Time
	seen, failures = map[string]int{}, map[string]int{}
	var last string
	for n := 0; n < inRow; {
		if time.Since(start) > bound {
			t.Fatalf("%s at %s: no %d answers in a row from %v within %s; last: %s", host, addr, inRow, clusters, bound, last)
		}
		r, err := demoTestGet(addr, host)
		switch {
		case err != nil:
			last = err.Error()
			failures[demoErrorReason(err)]++
		case !slices.Contains(clusters, r.Cluster):
			last = "from " + r.Cluster
		default:
			if n == 0 {
				first = time.Now()
				clear(seen)
			}
			seen[r.Cluster]++
			n++
			continue
		}
		n = 0
		time.Sleep(20 * time.Millisecond)
	}
	return first.Sub(start), failures, seen
}

// demoTestClient sends the test's own requests: independent of the demo's client, with
// no connection reuse so that each request goes through the Gateway's routing afresh.
var demoTestClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// demoTestGet sends GET / with the Host header to the Gateway at addr, as the demo does but
// with the test's client, and checks that the backend saw that host.
func demoTestGet(addr, host string) (echo.Response, error) {
	r, err := demoRequest(context.Background(), demoTestClient, addr, host)
	if err == nil && r.Host != host {
		err = fmt.Errorf("the backend saw host %q, want %q", r.Host, host)
	}
	return r, err
}

// demoBuffer is a bytes.Buffer safe for concurrent use.
type demoBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *demoBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *demoBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
