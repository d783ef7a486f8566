package router_test

import (
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

// TestHeaderModifierConformance replays the header expectations of the conformance test
// HTTPRouteRewritePath ("rewrite-path-and-modify-headers").
func TestHeaderModifierConformance(t *testing.T) {
	route := forward("headers", "/")
	route.RequestHeaders = &ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Header-Set", Value: "set-overwrites-values"}},
		Add:    []ir.Header{{Name: "X-Header-Add", Value: "header-val-1"}, {Name: "X-Header-Add-Append", Value: "header-val-2"}},
		Remove: []string{"X-Header-Remove"},
	}
	table := compileProxy(t, httpProxy(80, anyHost(route)))
	r := newRequest("GET", "gw", "/", "X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Set", "set-val")
	rt, _ := table.Match(r)
	rt.PickCluster(0).RequestHeaders.Apply(r.Header)
	rt.RequestHeaders.Apply(r.Header)
	want := http.Header{
		"X-Header-Add":        {"header-val-1"},
		"X-Header-Add-Append": {"append-val-1", "header-val-2"},
		"X-Header-Set":        {"set-overwrites-values"},
	}
	if diff := cmp.Diff(want, r.Header); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}
}

// TestHeaderModifierGolden applies the modifiers of xds/testdata/header-modifiers and of the
// weighted backends' filters in xds/testdata/weighted-backends.
func TestHeaderModifierGolden(t *testing.T) {
	table := compileCase(t, "header-modifiers")
	r := newRequest("GET", "example.com", "/", "X-Env", "dev", "X-Trace", "client", "X-Internal", "1", "Cookie", "a=b")
	rt, _ := table.Match(r)
	rt.RequestHeaders.Apply(r.Header)
	want := http.Header{"X-Env": {"prod"}, "X-Trace": {"client", "gateway", "strait"}}
	if diff := cmp.Diff(want, r.Header); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}
	resp := http.Header{"X-Powered-By": {"php"}, "Cache-Control": {"max-age=60"}, "X-Cluster": {"c0"}}
	rt.ResponseHeaders.Apply(resp)
	want = http.Header{"Cache-Control": {"no-store"}, "X-Cluster": {"c0", "c1"}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("response headers (-want +got):\n%s", diff)
	}

	table = compileCase(t, "weighted-backends")
	r = newRequest("GET", "app.example.com", "/filters", "X-Debug", "1")
	rt, _ = table.Match(r)
	wc := rt.PickCluster(7)
	wc.RequestHeaders.Apply(r.Header)
	rt.RequestHeaders.Apply(r.Header)
	if diff := cmp.Diff(http.Header{"X-Backend": {"c1"}}, r.Header); diff != "" {
		t.Errorf("cluster request headers (-want +got):\n%s", diff)
	}
	resp = http.Header{"Server": {"nginx"}}
	wc.ResponseHeaders.Apply(resp)
	if diff := cmp.Diff(http.Header{"X-Served-By": {"c1"}}, resp); diff != "" {
		t.Errorf("cluster response headers (-want +got):\n%s", diff)
	}
}

func option(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

// TestHeaderModifierEnvoySemantics covers append actions, empty values, literal percent
// signs and the order of the route, virtual host and configuration levels.
func TestHeaderModifierEnvoySemantics(t *testing.T) {
	config := func(mostSpecificWins bool) *routev3.RouteConfiguration {
		rc := baseConfig()
		rc.MostSpecificHeaderMutationsWins = mostSpecificWins
		rc.RequestHeadersToAdd = []*corev3.HeaderValueOption{option("x-level", "config", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		vh := rc.VirtualHosts[0]
		vh.RequestHeadersToAdd = []*corev3.HeaderValueOption{option("x-level", "vhost", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		vh.RequestHeadersToRemove = []string{"x-gone"}
		route := vh.Routes[0]
		route.RequestHeadersToAdd = []*corev3.HeaderValueOption{
			option("x-level", "route", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			option("x-gone", "back", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			option("x-absent", "added", corev3.HeaderValueOption_ADD_IF_ABSENT),
			option("x-present", "kept", corev3.HeaderValueOption_ADD_IF_ABSENT),
			option("x-if-exists", "no", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			option("x-present", "replaced", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
			option("x-empty", "", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			{Header: &corev3.HeaderValue{Key: "x-kept-empty"}, KeepEmptyValue: true},
			{Header: &corev3.HeaderValue{Key: "x-percent", Value: "100%%"}, Append: wrapperspb.Bool(false)},
			{Header: &corev3.HeaderValue{Key: "x-raw", RawValue: []byte("bytes")}},
		}
		return rc
	}
	apply := func(rc *routev3.RouteConfiguration) http.Header {
		table := mustCompile(t, rc)
		r := newRequest("GET", "example.com", "/", "X-Present", "client", "X-Empty", "client")
		rt, _ := table.Match(r)
		rt.RequestHeaders.Apply(r.Header)
		return r.Header
	}
	want := http.Header{
		// Route first, then virtual host, then configuration: the outermost level wins,
		// and the virtual host's removal undoes the route's addition.
		"X-Level":      {"config"},
		"X-Absent":     {"added"},
		"X-Present":    {"replaced"},
		"X-Empty":      {"client"},
		"X-Kept-Empty": {""},
		"X-Percent":    {"100%"},
		"X-Raw":        {"bytes"},
	}
	if diff := cmp.Diff(want, apply(config(false))); diff != "" {
		t.Errorf("default order (-want +got):\n%s", diff)
	}
	want["X-Level"] = []string{"route"}
	want["X-Gone"] = []string{"back"}
	if diff := cmp.Diff(want, apply(config(true))); diff != "" {
		t.Errorf("most specific wins (-want +got):\n%s", diff)
	}
}
