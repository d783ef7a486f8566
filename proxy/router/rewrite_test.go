package router_test

import (
	"net/http"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/translator/ir"
)

type rewriteCase struct {
	name    string
	request *http.Request
	host    string // the Host forwarded
	target  string // the request target forwarded
}

func checkRewrites(t *testing.T, table *router.Table, tests []rewriteCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, p := table.Match(tc.request)
			if rt == nil || len(rt.Clusters) == 0 {
				t.Fatalf("%s: no forwarding route (%+v)", tc.request.URL, rt)
			}
			rt.RewriteRequest(tc.request, p)
			if got := tc.request.Host; got != tc.host {
				t.Errorf("Host = %q, want %q", got, tc.host)
			}
			if got := tc.request.URL.RequestURI(); got != tc.target {
				t.Errorf("target = %q, want %q", got, tc.target)
			}
		})
	}
}

func rewriteRule(prefix string, rw ir.Rewrite) *ir.Route {
	r := forward(prefix, prefix)
	r.Rewrite = &rw
	return r
}

// TestRewriteConformance replays the Gateway API conformance tests HTTPRouteRewritePath and
// HTTPRouteRewriteHost (v1.6.3) through xds.Build.
func TestRewriteConformance(t *testing.T) {
	prefix := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: v} }
	full := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplaceFullPath, Value: v} }
	paths := compileProxy(t, httpProxy(80, anyHost(
		rewriteRule("/prefix/one", ir.Rewrite{Path: prefix("/one")}),
		rewriteRule("/strip-prefix", ir.Rewrite{Path: prefix("/")}),
		rewriteRule("/full/one", ir.Rewrite{Path: full("/one")}),
		rewriteRule("/full/rewrite-path-and-modify-headers", ir.Rewrite{Path: full("/test")}),
		rewriteRule("/prefix/rewrite-path-and-modify-headers", ir.Rewrite{Path: prefix("/prefix")}),
	)))
	// The Host is forwarded as the client sent it, port included.
	get := func(target string) *http.Request { return newRequest("GET", "gw.test:80", target) }
	checkRewrites(t, paths, []rewriteCase{
		{"prefix", get("/prefix/one/two"), "gw.test:80", "/one/two"},
		{"strip prefix", get("/strip-prefix/three"), "gw.test:80", "/three"},
		{"strip whole prefix", get("/strip-prefix"), "gw.test:80", "/"},
		{"full path", get("/full/one/two"), "gw.test:80", "/one"},
		{"full path and headers", get("/full/rewrite-path-and-modify-headers/test"), "gw.test:80", "/test"},
		{"prefix and headers", get("/prefix/rewrite-path-and-modify-headers/one"), "gw.test:80", "/prefix/one"},
	})

	hosts := compileProxy(t, httpProxy(80, &ir.VirtualHost{
		Name: "rewrite.example", Domains: []string{"rewrite.example"},
		Routes: []*ir.Route{
			rewriteRule("/rewrite-host-and-modify-headers", ir.Rewrite{Hostname: "test.example.org"}),
			rewriteRule("/one", ir.Rewrite{Hostname: "one.example.org"}),
			rewriteRule("/", ir.Rewrite{Hostname: "example.org"}),
		},
	}))
	checkRewrites(t, hosts, []rewriteCase{
		{"host", newRequest("GET", "rewrite.example", "/one"), "one.example.org", "/one"},
		{"host of the rest", newRequest("GET", "rewrite.example:80", "/two"), "example.org", "/two"},
		{"host and headers", newRequest("GET", "rewrite.example", "/rewrite-host-and-modify-headers"), "test.example.org", "/rewrite-host-and-modify-headers"},
	})
}

// TestRewriteGolden checks the rewrites of xds/testdata/rewrite, Gateway API's
// ReplacePrefixMatch table among them.
func TestRewriteGolden(t *testing.T) {
	table := compileCase(t, "rewrite")
	get := func(target string) *http.Request { return newRequest("GET", "example.com:8080", target) }
	checkRewrites(t, table, []rewriteCase{
		{"host only", get("/host/x?q=1"), "internal.example.com", "/host/x?q=1"},
		{"full path keeps the query", get("/full/a/b?q=1&r"), "example.com:8080", `/replaced%5Cpath?q=1&r`},
		{"prefix and host", get("/prefix/one/two?x"), "one.example.com", "/one/two?x"},
		{"prefix itself", get("/prefix/one"), "one.example.com", "/one"},
		{"prefix with slash", get("/prefix/one/"), "one.example.com", "/one/"},
		{"strip", get("/strip-prefix/a/b"), "example.com:8080", "/a/b"},
		{"strip itself", get("/strip-prefix"), "example.com:8080", "/"},
		{"strip with slash", get("/strip-prefix/"), "example.com:8080", "/"},
		{"from the root", get("/x?y=%20"), "example.com:8080", "/app/x?y=%20"},
		{"root itself", get("/"), "example.com:8080", "/app/"},
		{"escapes are kept", get("/a%2Fb%20c"), "example.com:8080", "/app/a%2Fb%20c"},
	})
}

// TestRewriteRegex covers RE2 substitutions: groups, literal backslashes and dollars, and
// every match replaced.
func TestRewriteRegex(t *testing.T) {
	route := func(name, prefix string, rw *matcherv3.RegexMatchAndSubstitute) *routev3.Route {
		return &routev3.Route{Name: name, Match: prefixMatch(prefix), Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"},
			RegexRewrite:     rw,
		}}}
	}
	sub := func(re, s string) *matcherv3.RegexMatchAndSubstitute {
		return &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: re}, Substitution: s}
	}
	table := mustCompile(t, &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*routev3.Route{
			route("swap", "/swap", sub(`^/swap/(\w+)/(\w+)$`, `/\2/\1`)),
			route("all", "/all", sub(`o`, `0`)),
			route("literal", "/literal", sub(`^/literal`, `/\\$1\0`)),
		},
	}}})
	get := func(target string) *http.Request { return newRequest("GET", "h", target) }
	checkRewrites(t, table, []rewriteCase{
		{"groups", get("/swap/a/b?q"), "h", "/b/a?q"},
		{"every match", get("/all/foo/boo"), "h", "/all/f00/b00"},
		{"backslash, dollar and whole match", get("/literal/x"), "h", `/%5C$1/literal/x`},
	})
}
