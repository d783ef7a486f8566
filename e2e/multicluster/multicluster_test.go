package multicluster

import (
	"context"
	"math"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/translator"
)

// TestMultiCluster runs the scenarios on one shared fleet, in order. Each needs only what
// setup creates, so go test ./e2e/multicluster -run TestMultiCluster/Canary -v runs setup
// and that one scenario.
func TestMultiCluster(t *testing.T) {
	e := setup(t)
	t.Run("NorthSouth", e.testNorthSouth)
	t.Run("Status", e.testStatus)
	t.Run("Canary", e.testCanary)
	t.Run("Failover", e.testFailover)
	t.Run("BlueGreen", e.testBlueGreen)
	t.Run("BadInput", e.testBadInput)
	t.Run("Faults", e.testFaults)
}

// route is an HTTPRoute of the Gateway web for one hostname, one rule.
func route(name, host string, rule gwapiv1.HTTPRouteRule) *gwapiv1.HTTPRoute {
	return &gwapiv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwapiv1.HTTPRouteSpec{
			CommonRouteSpec: gwapiv1.CommonRouteSpec{ParentRefs: []gwapiv1.ParentReference{{Name: "web"}}},
			Hostnames:       []gwapiv1.Hostname{gwapiv1.Hostname(host)},
			Rules:           []gwapiv1.HTTPRouteRule{rule},
		},
	}
}

// backend is a Service backendRef on port 80.
func backend(name string, weight int32) gwapiv1.HTTPBackendRef {
	return gwapiv1.HTTPBackendRef{BackendRef: gwapiv1.BackendRef{
		BackendObjectReference: gwapiv1.BackendObjectReference{Name: gwapiv1.ObjectName(name), Port: ptr.To(gwapiv1.PortNumber(80))},
		Weight:                 ptr.To(weight),
	}}
}

func backends(refs ...gwapiv1.HTTPBackendRef) gwapiv1.HTTPRouteRule {
	return gwapiv1.HTTPRouteRule{BackendRefs: refs}
}

func createRoute(t *testing.T, c *cluster, r *gwapiv1.HTTPRoute) {
	t.Helper()
	if _, err := c.gw.GatewayV1().HTTPRoutes("default").Create(t.Context(), r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// updateRoute changes a route's rules with a fresh read, retrying conflicts with the
// status writer.
func (e *env) updateRoute(t *testing.T, c *cluster, name string, rule gwapiv1.HTTPRouteRule) {
	t.Helper()
	eventually(t, "update of route "+name, func() bool {
		r, err := c.gw.GatewayV1().HTTPRoutes("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		r.Spec.Rules = []gwapiv1.HTTPRouteRule{rule}
		_, err = c.gw.GatewayV1().HTTPRoutes("default").Update(t.Context(), r, metav1.UpdateOptions{})
		return err == nil
	})
}

// testNorthSouth: each cluster's Gateway, with the route ns setup created, serves that
// cluster's own podinfo pods.
func (e *env) testNorthSouth(t *testing.T) {
	const perCluster = 100
	for _, m := range clusterMeta {
		c := e.clusters[m.name]
		e.waitServed(t, c, "ns.test", "/", "podinfo", func(r echo.Response) bool { return r.Cluster == c.Name })
		pods := map[string]int{}
		for range perCluster {
			r, err := e.get(t.Context(), c, "ns.test", "/where")
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			if r.Cluster != c.Name || r.Service != "podinfo" || !strings.HasPrefix(r.Pod, "podinfo-") || r.Path != "/where" {
				t.Fatalf("%s's Gateway: answer %+v path %q, want a podinfo pod of %s", c.Name, r.Identity, r.Path, c.Name)
			}
			pods[r.Pod]++
		}
		if len(pods) != 2 {
			t.Errorf("%s: answers from pods %v, want both podinfo pods", c.Name, pods)
		}
		t.Logf("north-south %s: %d requests, all from %s, pods %v", c.Name, perCluster, c.Name, pods)
	}
}

// testStatus: the Gateway and the route ns read back Accepted, Programmed and ResolvedRefs
// True for their current generation, the ServiceExport podinfo Valid, Ready and without
// Conflict, and a Gateway no proxy runs for Accepted but not Programmed (Pending).
func (e *env) testStatus(t *testing.T) {
	checked := 0
	// Created first so that its status has the time to settle while the others are checked.
	ap := e.clusters["ap"]
	unproxied := createGatewayNamed(t, ap, "unproxied", gatewayPort+1)
	t.Cleanup(func() {
		_ = ap.gw.GatewayV1().Gateways("default").Delete(context.WithoutCancel(t.Context()), unproxied.Name, metav1.DeleteOptions{})
	})
	for _, m := range clusterMeta {
		c := e.clusters[m.name]
		var gw *gwapiv1.Gateway
		eventually(t, c.Name+": Gateway web Accepted and Programmed", func() bool {
			var err error
			gw, err = c.gw.GatewayV1().Gateways("default").Get(t.Context(), "web", metav1.GetOptions{})
			return err == nil && condTrue(gw.Status.Conditions, "Accepted", gw.Generation) && condTrue(gw.Status.Conditions, "Programmed", gw.Generation)
		})
		if len(gw.Status.Listeners) != 1 || !condTrue(gw.Status.Listeners[0].Conditions, "Accepted", gw.Generation) ||
			!condTrue(gw.Status.Listeners[0].Conditions, "ResolvedRefs", gw.Generation) || !condTrue(gw.Status.Listeners[0].Conditions, "Programmed", gw.Generation) {
			t.Errorf("%s: Gateway listeners %+v, want one Accepted, ResolvedRefs, Programmed", c.Name, gw.Status.Listeners)
		}
		if gw.Status.Listeners[0].AttachedRoutes < 1 {
			t.Errorf("%s: listener attachedRoutes %d, want at least the route ns", c.Name, gw.Status.Listeners[0].AttachedRoutes)
		}
		host := strings.Split(c.gateway, ":")[0]
		if len(gw.Status.Addresses) != 1 || gw.Status.Addresses[0].Value != host {
			t.Errorf("%s: Gateway addresses %+v, want %s", c.Name, gw.Status.Addresses, host)
		}
		r := e.waitRouteParent(t, c, "ns", func(p gwapiv1.RouteParentStatus, gen int64) bool {
			return condTrue(p.Conditions, "Accepted", gen) && condTrue(p.Conditions, "ResolvedRefs", gen)
		})
		var se *mcsv1alpha1.ServiceExport
		eventually(t, c.Name+": ServiceExport podinfo Valid, Ready, no Conflict", func() bool {
			var err error
			se, err = c.mcs.MulticlusterV1alpha1().ServiceExports("default").Get(t.Context(), "podinfo", metav1.GetOptions{})
			return err == nil && condIs(se.Status.Conditions, "Valid", metav1.ConditionTrue, "Valid", se.Generation) &&
				condIs(se.Status.Conditions, "Ready", metav1.ConditionTrue, "Exported", se.Generation) &&
				condIs(se.Status.Conditions, "Conflict", metav1.ConditionFalse, "NoConflicts", se.Generation)
		})
		checked += 3
		t.Logf("status %s: Gateway web generation %d Accepted/Programmed, route ns generation %d Accepted/ResolvedRefs, ServiceExport podinfo Valid/Ready (%s)",
			c.Name, gw.Generation, r.Generation, apimeta.FindStatusCondition(se.Status.Conditions, "Ready").Message)
	}
	// No proxy connects as ap/default/unproxied: translated and accepted, never Programmed.
	var gw *gwapiv1.Gateway
	eventually(t, "ap: Gateway unproxied Accepted, Programmed False (Pending)", func() bool {
		var err error
		gw, err = ap.gw.GatewayV1().Gateways("default").Get(t.Context(), unproxied.Name, metav1.GetOptions{})
		return err == nil && condTrue(gw.Status.Conditions, "Accepted", gw.Generation) &&
			condIs(gw.Status.Conditions, "Programmed", metav1.ConditionFalse, string(gwapiv1.GatewayReasonPending), gw.Generation)
	})
	checked++
	t.Logf("status ap: Gateway unproxied Programmed False: %s", apimeta.FindStatusCondition(gw.Status.Conditions, "Programmed").Message)
	t.Logf("status: %d objects checked", checked)
}

// waitRouteParent waits until the route's Strait parent status satisfies ok and returns the
// route.
func (e *env) waitRouteParent(t *testing.T, c *cluster, name string, ok func(p gwapiv1.RouteParentStatus, gen int64) bool) *gwapiv1.HTTPRoute {
	t.Helper()
	var r *gwapiv1.HTTPRoute
	eventually(t, c.Name+": status of route "+name, func() bool {
		var err error
		r, err = c.gw.GatewayV1().HTTPRoutes("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, p := range r.Status.Parents {
			if p.ControllerName == translator.ControllerName && string(p.ParentRef.Name) == "web" {
				return ok(p, r.Generation)
			}
		}
		return false
	})
	return r
}

func condTrue(conds []metav1.Condition, typ string, gen int64) bool {
	return condIs(conds, typ, metav1.ConditionTrue, "", gen)
}

// condIs says whether the condition typ has status and, if reason is set, reason, for
// generation gen.
func condIs(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) bool {
	c := apimeta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == status && (reason == "" || c.Reason == reason) && c.ObservedGeneration == gen
}

// testCanary: a route in us splits between us's podinfo and the mirror podinfo-eu 90/10,
// then 50/50; the share of eu answers stays within 5 sigma of the weight.
func (e *env) testCanary(t *testing.T) {
	us := e.clusters["us"]
	eventually(t, "the mirror Service podinfo-eu in us", func() bool {
		_, err := us.kube.CoreV1().Services("default").Get(t.Context(), "podinfo-eu", metav1.GetOptions{})
		return err == nil
	})
	createRoute(t, us, route("canary", "canary.test", backends(backend("podinfo", 90), backend("podinfo-eu", 10))))
	e.waitServed(t, us, "canary.test", "/", "an eu answer", func(r echo.Response) bool { return r.Cluster == "eu" })
	e.checkSplit(t, us, "canary.test", 0.1, 2000)

	e.updateRoute(t, us, "canary", backends(backend("podinfo", 50), backend("podinfo-eu", 50)))
	// Applied once a batch of 200 is within 5 sigma of 50/50 (90/10 gives 20 of 200, 50/50
	// between 65 and 135).
	eventually(t, "the 50/50 split", func() bool {
		eu, _ := e.split(t, us, "canary.test", 200)
		return withinSigma(eu, 200, 0.5, 5)
	})
	e.checkSplit(t, us, "canary.test", 0.5, 2000)
}

// split sends n requests and counts the answers from eu; any failure or an answer from a
// cluster other than us and eu fails the test.
func (e *env) split(t *testing.T, c *cluster, host string, n int) (eu, us int) {
	t.Helper()
	for range n {
		r, err := e.get(t.Context(), c, host, "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		switch r.Cluster {
		case "eu":
			eu++
		case "us":
			us++
		default:
			t.Fatalf("%s: answer from %+v, want us or eu", host, r.Identity)
		}
	}
	return eu, us
}

// checkSplit sends n requests and checks that eu's share is within 5 sigma of p.
func (e *env) checkSplit(t *testing.T, c *cluster, host string, p float64, n int) {
	t.Helper()
	eu, us := e.split(t, c, host, n)
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if !withinSigma(eu, n, p, 5) {
		t.Errorf("canary %.0f/%.0f: %d of %d from eu, want %.0f ± %.0f (5 sigma)", 100*(1-p), 100*p, eu, n, float64(n)*p, 5*sigma)
	}
	t.Logf("canary %.0f/%.0f: %d requests, us %d, eu %d (expected eu %.0f ± %.0f, 5 sigma)", 100*(1-p), 100*p, n, us, eu, float64(n)*p, 5*sigma)
}

func withinSigma(k, n int, p, sigmas float64) bool {
	mean := float64(n) * p
	return math.Abs(float64(k)-mean) <= sigmas*math.Sqrt(float64(n)*p*(1-p))
}

// load sends requests to a Gateway in a loop until stop is called. Only its goroutine
// writes result, and stop reads it after that goroutine has ended.
type load struct {
	cancel context.CancelFunc
	done   chan struct{}
	result loadResult
}

// loadResult is what a load loop saw: answers counted by the key startLoad was given, and
// failures.
type loadResult struct {
	answers    map[string]int
	ok, failed int
	firstErr   error
}

func (e *env) startLoad(ctx context.Context, c *cluster, host string, key func(echo.Response) string) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, done: make(chan struct{}), result: loadResult{answers: map[string]int{}}}
	go func() {
		defer close(l.done)
		res := &l.result
		for ctx.Err() == nil {
			r, err := e.get(ctx, c, host, "/")
			switch {
			case ctx.Err() != nil:
			case err != nil:
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
			default:
				res.ok++
				res.answers[key(r)]++
			}
		}
	}()
	return l
}

// stop ends the loop and returns what it saw.
func (l *load) stop() loadResult {
	l.cancel()
	<-l.done
	return l.result
}
