package multicluster

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/strait-gw/strait/e2e/echo"
)

// healthWindow is how many consecutive requests must all succeed, from the expected
// cluster, once a failover has happened (its first answer from the next tier).
const healthWindow = 200

// testFailover: a route in us to the ServiceImport fo (exported by all three clusters, one
// pod each) is served by us, then by eu (same region) once us has no pods, then by ap
// (other region) once eu has none either. No request fails during a switch (from the scale
// to 0 until the next tier's first answer) nor in the health window after it: a request
// sent to the pod that just got SIGTERM, before the proxy knows, is refused there and goes
// to the next tier (the proxy's reconnect to another endpoint).
func (e *env) testFailover(t *testing.T) {
	for _, m := range clusterMeta {
		createEcho(t, e.clusters[m.name], "fo", 1, true)
	}
	us := e.clusters["us"]
	eventually(t, "the ServiceImport fo in us", func() bool {
		_, err := us.mcs.MulticlusterV1alpha1().ServiceImports("default").Get(t.Context(), "fo", metav1.GetOptions{})
		return err == nil
	})
	for _, m := range clusterMeta {
		waitDeployment(t, e.clusters[m.name], "fo", 1)
	}
	createRoute(t, us, route("failover", "failover.test", gwapiv1.HTTPRouteRule{BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{
		BackendObjectReference: gwapiv1.BackendObjectReference{
			Group: ptr.To(gwapiv1.Group(mcsv1alpha1.GroupName)), Kind: ptr.To(gwapiv1.Kind("ServiceImport")),
			Name: "fo", Port: ptr.To(gwapiv1.PortNumber(80)),
		},
	}}}}))
	e.waitServed(t, us, "failover.test", "/", "fo of us", func(r echo.Response) bool { return r.Cluster == "us" && r.Service == "fo" })
	e.checkAllFrom(t, us, "failover.test", "us", healthWindow)
	t.Logf("failover: %d requests served by us while us has pods", healthWindow)

	for _, step := range []struct{ drained, next string }{{"us", "eu"}, {"eu", "ap"}} {
		// During the switch, answers come from the drained tier or the next one only.
		l := e.startLoad(t.Context(), us, "failover.test", func(r echo.Response) string { return r.Cluster })
		retried := e.connectRetries(us)
		began := time.Now()
		scale(t, e.clusters[step.drained], "fo", 0)
		scaled := time.Since(began)
		e.waitServed(t, us, "failover.test", "/", "fo of "+step.next, func(r echo.Response) bool { return r.Cluster == step.next })
		switched := time.Since(began)
		res := l.stop()
		for c, n := range res.answers {
			if c != step.drained && c != step.next {
				t.Errorf("failover %s -> %s: %d answers from %s during the switch", step.drained, step.next, n, c)
			}
		}
		if res.failed != 0 {
			t.Errorf("failover %s -> %s: %d of %d requests failed during the switch (scale to 0 until %s's first answer, %v; first: %v), want 0",
				step.drained, step.next, res.failed, res.ok+res.failed, step.next, switched.Round(time.Millisecond), res.firstErr)
		}
		e.checkAllFrom(t, us, "failover.test", step.next, healthWindow)
		t.Logf("failover %s -> %s: scaled to 0 in %v, switched after %v; %d requests during the switch, %d failed (first: %v); then %d of %d served by %s; %d requests in all sent to another endpoint after a refused connection",
			step.drained, step.next, scaled.Round(time.Millisecond), switched.Round(time.Millisecond), res.ok+res.failed, res.failed, res.firstErr,
			healthWindow, healthWindow, step.next, e.connectRetries(us)-retried)
	}
}

// checkAllFrom sends n requests for host and fails unless every one is answered by cluster.
func (e *env) checkAllFrom(t *testing.T, c *cluster, host, from string, n int) {
	t.Helper()
	for i := range n {
		r, err := e.get(t.Context(), c, host, "/")
		if err != nil {
			t.Fatalf("%s through %s, request %d of %d: %v", host, c.Name, i+1, n, err)
		}
		if r.Cluster != from {
			t.Fatalf("%s through %s, request %d of %d: answered by %+v, want %s", host, c.Name, i+1, n, r.Identity, from)
		}
	}
}

// testBlueGreen: a route in us switches from blue to green and back while a load loop runs;
// no request fails.
func (e *env) testBlueGreen(t *testing.T) {
	us := e.clusters["us"]
	for _, name := range []string{"blue", "green"} {
		createEcho(t, us, name, 1, false)
	}
	for _, name := range []string{"blue", "green"} {
		waitDeployment(t, us, name, 1)
	}
	// As blue-green is done: green is checked through a preview route before the switch,
	// so that the switch never goes to a backend whose endpoints are not known yet.
	createRoute(t, us, route("bg", "bg.test", backends(backend("blue", 1))))
	createRoute(t, us, route("bg-preview", "preview.bg.test", backends(backend("green", 1))))
	e.waitServed(t, us, "bg.test", "/", "blue", func(r echo.Response) bool { return r.Service == "blue" })
	e.waitServed(t, us, "preview.bg.test", "/", "green, previewed", func(r echo.Response) bool { return r.Service == "green" })

	l := e.startLoad(t.Context(), us, "bg.test", func(r echo.Response) string { return r.Service })
	for _, to := range []string{"green", "blue"} {
		e.updateRoute(t, us, "bg", backends(backend(to, 1)))
		e.waitServed(t, us, "bg.test", "/", to, func(r echo.Response) bool { return r.Service == to })
	}
	res := l.stop()
	if res.failed != 0 {
		t.Errorf("blue-green: %d of %d requests failed during the switches (first: %v)", res.failed, res.ok+res.failed, res.firstErr)
	}
	if res.answers["green"] == 0 || res.answers["blue"] == 0 {
		t.Errorf("blue-green: load loop answers %v, want both blue and green", res.answers)
	}
	t.Logf("blue-green: blue -> green -> blue with %d requests in flight: %d failed, answers %v", res.ok+res.failed, res.failed, res.answers)
}

// testBadInput: a route with a backendRef to a missing Service gets ResolvedRefs False
// (BackendNotFound) and a 500 for that backend; one with an invalid regular expression gets
// Accepted False (UnsupportedValue); the other routes keep working.
func (e *env) testBadInput(t *testing.T) {
	us := e.clusters["us"]
	createRoute(t, us, route("bad-ref", "bad-ref.test", backends(backend("nope", 1))))
	bad := route("bad-regex", "bad-regex.test", backends(backend("podinfo", 1)))
	bad.Spec.Rules[0].Matches = []gwapiv1.HTTPRouteMatch{{Path: &gwapiv1.HTTPPathMatch{Type: ptr.To(gwapiv1.PathMatchRegularExpression), Value: ptr.To("/([a-z")}}}
	createRoute(t, us, bad)

	e.waitRouteParent(t, us, "bad-ref", func(p gwapiv1.RouteParentStatus, gen int64) bool {
		return condIs(p.Conditions, "ResolvedRefs", metav1.ConditionFalse, string(gwapiv1.RouteReasonBackendNotFound), gen) &&
			condTrue(p.Conditions, "Accepted", gen)
	})
	e.waitRouteParent(t, us, "bad-regex", func(p gwapiv1.RouteParentStatus, gen int64) bool {
		return condIs(p.Conditions, "Accepted", metav1.ConditionFalse, string(gwapiv1.RouteReasonUnsupportedValue), gen)
	})
	eventually(t, "a 500 for bad-ref.test", func() bool {
		return e.status(t, us, "bad-ref.test") == http.StatusInternalServerError
	})
	e.checkAllFrom(t, us, "ns.test", "us", 100)
	t.Logf("bad input: bad-ref ResolvedRefs False/BackendNotFound (500), bad-regex Accepted False/UnsupportedValue; 100 ns.test requests still served")
}

// status sends GET / with Host host to a cluster's Gateway and returns the status code, 0
// when the request fails.
func (e *env) status(t *testing.T, c *cluster, host string) int {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+c.gateway+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	r, err := e.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return r.StatusCode
}

// testFaults: with eu's kube-apiserver killed, us and ap keep working and take changes, and
// eu's Gateway keeps serving eu's last known backends; with the controller killed too, every
// proxy keeps serving; once both are back, changes are applied again.
func (e *env) testFaults(t *testing.T) {
	us, eu, ap := e.clusters["us"], e.clusters["eu"], e.clusters["ap"]
	const n = 100

	eu.KillAPIServer()
	eventually(t, "the controller to see eu stale", func() bool { return e.metric(`strait_cluster_stale{cluster="eu"}`) == "1" })
	createRoute(t, us, route("fault", "fault.test", backends(backend("podinfo", 1))))
	e.waitServed(t, us, "fault.test", "/", "a route created in us while eu is down", func(r echo.Response) bool { return r.Cluster == "us" })
	e.checkAllFrom(t, ap, "ns.test", "ap", n)
	e.checkAllFrom(t, eu, "ns.test", "eu", n)
	t.Logf("faults: eu's API server killed: new us route served; %d requests each through ap and eu served by their own clusters", n)

	e.killController()
	for _, m := range clusterMeta {
		e.checkAllFrom(t, e.clusters[m.name], "ns.test", m.name, n)
	}
	t.Logf("faults: controller killed too: %d requests through each of the %d Gateways served", n, len(clusterMeta))

	if err := eu.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.startController(t)
	e.updateRoute(t, us, "fault", backends(backend("podinfo-eu", 1)))
	e.waitServed(t, us, "fault.test", "/", "the changed route, to podinfo-eu", func(r echo.Response) bool { return r.Cluster == "eu" })
	createRoute(t, eu, route("after", "after.test", backends(backend("podinfo-ap", 1))))
	e.waitServed(t, eu, "after.test", "/", "a route created in eu after its return", func(r echo.Response) bool { return r.Cluster == "ap" })
	e.checkAllFrom(t, us, "fault.test", "eu", n)
	t.Logf("faults: eu's API server and the controller restarted: a us route change and a new eu route applied; %d requests checked", n)
}

// metric reads a sample of the controller's /metrics by its name and labels, "" when absent.
func (e *env) metric(sample string) string {
	for _, line := range e.metrics(e.admin) {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// metrics returns the lines of the /metrics page of the admin server at addr, none when it
// does not answer.
func (e *env) metrics(addr string) []string {
	resp, err := e.client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	return strings.Split(string(body), "\n")
}

// connectRetries sums strait_upstream_connect_retries_total over the clusters of c's proxy:
// requests it sent to another endpoint after failing to connect.
func (e *env) connectRetries(c *cluster) int {
	n := 0
	for _, line := range e.metrics(c.admin) {
		if strings.HasPrefix(line, "strait_upstream_connect_retries_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}
