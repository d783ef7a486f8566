package router_test

import (
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/proxy/router"
)

// TestPickClusterDistribution checks weighted splits with a seeded source.
func TestPickClusterDistribution(t *testing.T) {
	table := compileCase(t, "weighted-backends")
	rnd := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	for _, tc := range []struct {
		path  string
		want  map[string]float64
		code  int
		total int
	}{
		{"/canary", map[string]float64{"c1/default/podinfo/80": 0.9, "c2/default/podinfo/80": 0.1}, 503, 2},
		{"/partial", map[string]float64{"c1/default/podinfo/80": 0.8, "strait/invalid-backend": 0.2}, 500, 2},
		{"/filters", map[string]float64{"c1/default/podinfo/80": 1}, 503, 1},
	} {
		rt, _ := table.Match(newRequest("GET", "app.example.com", tc.path))
		if rt == nil || len(rt.Clusters) != tc.total {
			t.Fatalf("%s: route %+v", tc.path, rt)
		}
		if rt.ClusterNotFoundResponseCode != tc.code {
			t.Errorf("%s: cluster not found code %d, want %d", tc.path, rt.ClusterNotFoundResponseCode, tc.code)
		}
		got := map[string]int{}
		for range n {
			got[rt.PickCluster(rnd.Uint64()).Name]++
		}
		for name, share := range tc.want {
			if s := float64(got[name]) / n; math.Abs(s-share) > 0.005 {
				t.Errorf("%s: %s got %.4f of the traffic, want %.2f", tc.path, name, s, share)
			}
		}
	}
}

// TestPickClusterWeights checks the exact mapping of samples to clusters, zero weights and
// all.
func TestPickClusterWeights(t *testing.T) {
	rc := baseConfig()
	firstAction(rc).ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
		Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "zero", Weight: wrapperspb.UInt32(0)},
			{Name: "three", Weight: wrapperspb.UInt32(3)},
			{Name: "none", Weight: wrapperspb.UInt32(0)},
			{Name: "one", Weight: wrapperspb.UInt32(1)},
			{Name: "last-zero"},
		},
		TotalWeight: wrapperspb.UInt32(4), //nolint:staticcheck // tests that a matching deprecated total_weight is accepted
	}}
	rt, _ := mustCompile(t, rc).Match(newRequest("GET", "example.com", "/"))
	var got []string
	for rnd := uint64(0); rnd < 8; rnd++ {
		got = append(got, rt.PickCluster(rnd).Name)
	}
	got = append(got, rt.PickCluster(math.MaxUint64).Name) // MaxUint64 % 4 == 3
	want := []string{"three", "three", "three", "one", "three", "three", "three", "one", "one"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("picks (-want +got):\n%s", diff)
	}
}

// TestMirrorSample checks that each mirror samples exactly its fraction of a uniform source.
func TestMirrorSample(t *testing.T) {
	rt, _ := compileCase(t, "mirror").Match(newRequest("GET", "example.com", "/"))
	want := []router.Mirror{
		{Cluster: "c1/default/shadow/80", Numerator: 100, Denominator: 100},
		{Cluster: "c2/default/shadow/80", Numerator: 25, Denominator: 100},
		{Cluster: "c1/default/shadow/80", Numerator: 5, Denominator: 10_000},
		{Cluster: "c2/default/shadow/80", Numerator: 333_333, Denominator: 1_000_000},
	}
	if diff := cmp.Diff(want, rt.Mirrors); diff != "" {
		t.Fatalf("mirrors (-want +got):\n%s", diff)
	}
	for _, m := range rt.Mirrors {
		sampled := 0
		for rnd := range uint64(m.Denominator) {
			if m.Sample(rnd + 7*uint64(m.Denominator)) {
				sampled++
			}
		}
		if sampled != int(m.Numerator) {
			t.Errorf("%+v: sampled %d", m, sampled)
		}
	}
}

// TestTimeoutsAndRetries checks xds/testdata/timeouts-retry.
func TestTimeoutsAndRetries(t *testing.T) {
	table := compileCase(t, "timeouts-retry")
	get := func(path string) *router.Route {
		rt, _ := table.Match(newRequest("GET", "example.com", path))
		return rt
	}
	for path, want := range map[string]time.Duration{
		"/request": 10 * time.Second, "/backend": 2 * time.Second, "/retry": 10 * time.Second,
		"/no-retry": 3 * time.Second, "/retry-errors": 0, "/": 0,
	} {
		if got := get(path).Timeout; got != want {
			t.Errorf("%s: timeout %v, want %v", path, got, want)
		}
	}
	retry := get("/retry").Retry
	want := &router.RetryPolicy{
		On:                   router.RetryConnectFailure | router.RetryRefusedStream | router.RetryReset | router.RetryRetriableStatusCodes,
		NumRetries:           3,
		PerTryTimeout:        2 * time.Second,
		RetriableStatusCodes: []int{500, 502, 503},
		BackOffBase:          100 * time.Millisecond,
		BackOffMax:           time.Second,
	}
	if diff := cmp.Diff(want, retry); diff != "" {
		t.Errorf("retry policy (-want +got):\n%s", diff)
	}
	for code, want := range map[int]bool{500: true, 502: true, 503: true, 504: false, 409: false, 200: false} {
		if got := retry.RetriableStatus(code); got != want {
			t.Errorf("RetriableStatus(%d) = %v", code, got)
		}
	}
	if errs := get("/retry-errors").Retry; errs == nil || errs.NumRetries != 1 || errs.RetriableStatus(503) ||
		errs.BackOffBase != 25*time.Millisecond || errs.BackOffMax != 250*time.Millisecond {
		t.Errorf("/retry-errors: %+v", errs)
	}
	for _, tc := range []struct {
		n    int
		rnd  uint64
		want time.Duration
	}{
		{0, uint64(250 * time.Millisecond), 50 * time.Millisecond}, // below the base, 100ms
		{1, uint64(250 * time.Millisecond), 50 * time.Millisecond},
		{1, uint64(150 * time.Millisecond), 150 * time.Millisecond}, // below 200ms
		{3, uint64(900 * time.Millisecond), 100 * time.Millisecond}, // below 800ms
		{9, uint64(999 * time.Millisecond), 999 * time.Millisecond}, // capped at 1s
		{60, uint64(3 * time.Second), 0},
	} {
		if got := retry.BackOff(tc.n, tc.rnd); got != tc.want {
			t.Errorf("BackOff(%d, %v) = %v, want %v", tc.n, time.Duration(tc.rnd), got, tc.want)
		}
	}
	if get("/no-retry").Retry != nil {
		t.Error("/no-retry has a retry policy")
	}
}

// TestRetryConditions checks Envoy's retry_on conditions beyond those xds emits.
func TestRetryConditions(t *testing.T) {
	rc := baseConfig()
	firstAction(rc).RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx, retriable-4xx,unavailable"}
	p := mustCompile(t, rc).Match
	rt, _ := p(newRequest("GET", "example.com", "/"))
	retry := rt.Retry
	if retry.NumRetries != 1 {
		t.Errorf("default num_retries = %d, want 1", retry.NumRetries)
	}
	if retry.On&router.RetryConnectFailure == 0 || retry.On&router.RetryReset == 0 {
		t.Errorf("5xx does not include connection failures: %b", retry.On)
	}
	for code, want := range map[int]bool{500: true, 599: true, 409: true, 404: false, 200: false} {
		if got := retry.RetriableStatus(code); got != want {
			t.Errorf("RetriableStatus(%d) = %v", code, got)
		}
	}
	for code, want := range map[int]bool{14: true, 13: false, 0: false} {
		if got := retry.RetriableGRPCStatus(code); got != want {
			t.Errorf("RetriableGRPCStatus(%d) = %v", code, got)
		}
	}
}

// TestDirectResponse checks xds/testdata/direct-response.
func TestDirectResponse(t *testing.T) {
	table := compileCase(t, "direct-response")
	rt, _ := table.Match(newRequest("GET", "example.com", "/teapot"))
	if diff := cmp.Diff(&router.DirectResponse{StatusCode: 418, Body: "I'm a teapot"}, rt.DirectResponse); diff != "" {
		t.Errorf("direct response (-want +got):\n%s", diff)
	}
	h := http.Header{}
	rt.ResponseHeaders.Apply(h)
	if h.Get("Content-Type") != "text/plain" || rt.PickCluster(0) != nil {
		t.Errorf("headers %v, cluster %v", h, rt.PickCluster(0))
	}
	rt, _ = table.Match(newRequest("GET", "example.com", "/other"))
	if rt.DirectResponse == nil || rt.DirectResponse.StatusCode != 500 || rt.DirectResponse.Body != "" {
		t.Errorf("unresolved: %+v", rt.DirectResponse)
	}
}

// TestHashKey checks xds/testdata/session-affinity: cookie (generated with a TTL or as a
// session cookie), header and no policy.
func TestHashKey(t *testing.T) {
	table := compileCase(t, "session-affinity")
	key := func(r *http.Request) (*router.Route, uint64, bool) {
		rt, _ := table.Match(r)
		k, ok := rt.HashKey(r)
		return rt, k, ok
	}

	// A new client gets a cookie; its next request, with the cookie, hashes alike.
	first := newRequest("GET", "example.com", "/cart")
	rt, k1, ok := key(first)
	cookie := rt.AffinityCookie(first)
	if !ok || cookie == nil {
		t.Fatalf("no hash (%v) or no cookie (%v) for a new client", ok, cookie)
	}
	if cookie.Name != "strait-session" || cookie.Path != "/" || cookie.MaxAge != 3600 || !cookie.HttpOnly || cookie.Value == "" {
		t.Errorf("cookie = %+v", cookie)
	}
	next := newRequest("GET", "example.com", "/cart", "Cookie", "other=1; "+cookie.String())
	_, k2, _ := key(next)
	if k1 != k2 {
		t.Errorf("hash changed once the cookie is set: %x, %x", k1, k2)
	}
	if c := rt.AffinityCookie(next); c != nil {
		t.Errorf("cookie set again: %v", c)
	}
	_, k3, _ := key(newRequest("GET", "example.com", "/cart", "Cookie", `strait-session="other"`))
	if k3 == k1 {
		t.Error("different cookies hash alike")
	}

	login := newRequest("GET", "example.com", "/login")
	rt, _, _ = key(login)
	if c := rt.AffinityCookie(login); c == nil || c.MaxAge != 0 || c.Name != "login-session" {
		t.Errorf("session cookie = %+v", c)
	}

	_, h1, ok1 := key(newRequest("GET", "example.com", "/api", "X-User", "ann", "X-User", "bob"))
	_, h2, ok2 := key(newRequest("GET", "example.com", "/api", "X-User", "bob", "X-User", "ann"))
	_, h3, _ := key(newRequest("GET", "example.com", "/api", "X-User", "ann"))
	if !ok1 || !ok2 || h1 != h2 || h1 == h3 {
		t.Errorf("header hashes: %x %x %x", h1, h2, h3)
	}
	if _, _, ok := key(newRequest("GET", "example.com", "/api")); ok {
		t.Error("hash without the header")
	}
	if _, _, ok := key(newRequest("GET", "example.com", "/static")); ok {
		t.Error("hash without a policy")
	}
}

// TestHashKeyPolicies checks the combination of several policies and terminal ones.
func TestHashKeyPolicies(t *testing.T) {
	header := func(name string, terminal bool) *routev3.RouteAction_HashPolicy {
		return &routev3.RouteAction_HashPolicy{Terminal: terminal, PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: name},
		}}
	}
	rc := baseConfig()
	firstAction(rc).HashPolicy = []*routev3.RouteAction_HashPolicy{
		header("x-a", true),
		{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: "u"}}},
		{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}},
	}
	table := mustCompile(t, rc)
	hash := func(r *http.Request) uint64 {
		rt, _ := table.Match(r)
		k, ok := rt.HashKey(r)
		if !ok {
			t.Fatalf("no hash for %v", r.URL)
		}
		return k
	}
	a1 := hash(newRequest("GET", "example.com", "/?u=1", "X-A", "x"))
	a2 := hash(newRequest("GET", "example.com", "/?u=2", "X-A", "x"))
	if a1 != a2 {
		t.Error("a terminal policy that hashed did not stop the others")
	}
	q1 := hash(newRequest("GET", "example.com", "/?u=1"))
	q2 := hash(newRequest("GET", "example.com", "/?u=2"))
	other := newRequest("GET", "example.com", "/?u=1")
	other.RemoteAddr = "198.51.100.7:999"
	if q1 == q2 || q1 == hash(other) {
		t.Error("query parameter and source IP are not both hashed")
	}
}
