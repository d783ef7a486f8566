package router_test

import (
	"net/http"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/translator/ir"
)

type redirectCase struct {
	name     string
	request  *http.Request
	code     int
	location string
}

func checkRedirects(t *testing.T, table *router.Table, tests []redirectCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, p := table.Match(tc.request)
			if rt == nil || rt.Redirect == nil {
				t.Fatalf("%s%s: no redirect route (%+v)", tc.request.Host, tc.request.URL, rt)
			}
			if rt.Redirect.StatusCode != tc.code {
				t.Errorf("status = %d, want %d", rt.Redirect.StatusCode, tc.code)
			}
			if got := rt.Redirect.Location(tc.request, p); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
		})
	}
}

// redirectTo is a Gateway API PathPrefix rule with a RequestRedirect filter.
func redirectTo(prefix string, rd ir.Redirect) *ir.Route {
	return &ir.Route{Name: prefix, Match: ir.Match{PathType: ir.PathPrefix, Path: prefix}, Redirect: &rd}
}

func anyHost(routes ...*ir.Route) *ir.VirtualHost {
	return &ir.VirtualHost{Name: "any", Domains: []string{"*"}, Routes: routes}
}

// TestRedirectConformance replays the Gateway API conformance tests HTTPRouteRedirectPath,
// HTTPRouteRedirectPort, HTTPRouteRedirectScheme, HTTPRouteRedirectHostAndStatus,
// HTTPRouteRedirectPortAndScheme and HTTPRoute303/307/308Redirect (v1.6.3) through xds.Build.
// The conformance client sends the Gateway's address, port included, as the Host.
func TestRedirectConformance(t *testing.T) {
	replacePrefix := &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/replacement-prefix"}
	replaceFull := &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/replacement-full"}
	port80 := compileProxy(t, httpProxy(80, anyHost(
		// httproute-redirect-path.yaml
		redirectTo("/original-prefix", ir.Redirect{Path: replacePrefix}),
		redirectTo("/full", ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/full-path-replacement"}}),
		redirectTo("/path-and-host", ir.Redirect{Hostname: "example.org", Path: replacePrefix}),
		redirectTo("/path-and-status", ir.Redirect{Path: replacePrefix, StatusCode: 301}),
		redirectTo("/full-path-and-host", ir.Redirect{Hostname: "example.org", Path: replaceFull}),
		redirectTo("/full-path-and-status", ir.Redirect{Path: replaceFull, StatusCode: 301}),
		// httproute-redirect-port.yaml
		redirectTo("/port", ir.Redirect{Port: 8083}),
		redirectTo("/port-and-host", ir.Redirect{Hostname: "example.org", Port: 8083}),
		redirectTo("/port-and-status", ir.Redirect{Port: 8083, StatusCode: 301}),
		redirectTo("/port-and-host-and-status", ir.Redirect{Port: 8083, Hostname: "example.org", StatusCode: 302}),
		// httproute-redirect-scheme.yaml
		redirectTo("/scheme", ir.Redirect{Scheme: "https"}),
		redirectTo("/scheme-and-host", ir.Redirect{Scheme: "https", Hostname: "example.org"}),
		redirectTo("/scheme-and-status", ir.Redirect{Scheme: "https", StatusCode: 301}),
		redirectTo("/scheme-and-host-and-status", ir.Redirect{Scheme: "https", Hostname: "example.org", StatusCode: 302}),
		// httproute-redirect-host-and-status.yaml
		redirectTo("/hostname-redirect", ir.Redirect{Hostname: "example.org"}),
		redirectTo("/host-and-status", ir.Redirect{Hostname: "example.org", StatusCode: 301}),
		// httproute-303/307/308-redirect.yaml
		redirectTo("/see-other", ir.Redirect{StatusCode: 303}),
		redirectTo("/temporary", ir.Redirect{StatusCode: 307}),
		redirectTo("/permanent", ir.Redirect{StatusCode: 308}),
		// httproute-redirect-port-and-scheme.yaml, listener on port 80
		redirectTo("/scheme-nil-and-port-nil", ir.Redirect{Hostname: "example.org"}),
		redirectTo("/scheme-nil-and-port-80", ir.Redirect{Hostname: "example.org", Port: 80}),
		redirectTo("/scheme-nil-and-port-8080", ir.Redirect{Hostname: "example.org", Port: 8080}),
		redirectTo("/scheme-https-and-port-nil", ir.Redirect{Hostname: "example.org", Scheme: "https"}),
		redirectTo("/scheme-https-and-port-443", ir.Redirect{Hostname: "example.org", Scheme: "https", Port: 443}),
		redirectTo("/scheme-https-and-port-8443", ir.Redirect{Hostname: "example.org", Scheme: "https", Port: 8443}),
	)))
	const gw = "gw.test:80"
	get := func(path string) *http.Request { return newRequest("GET", gw, path) }
	checkRedirects(t, port80, []redirectCase{
		{"prefix", get("/original-prefix/lemon"), 302, "http://gw.test/replacement-prefix/lemon"},
		{"full path", get("/full/path/original"), 302, "http://gw.test/full-path-replacement"},
		{"path and host", get("/path-and-host"), 302, "http://example.org/replacement-prefix"},
		{"path and status", get("/path-and-status"), 301, "http://gw.test/replacement-prefix"},
		{"full path and host", get("/full-path-and-host"), 302, "http://example.org/replacement-full"},
		{"full path and status", get("/full-path-and-status"), 301, "http://gw.test/replacement-full"},
		{"port", get("/port"), 302, "http://gw.test:8083/port"},
		{"port and host", get("/port-and-host"), 302, "http://example.org:8083/port-and-host"},
		{"port and status", get("/port-and-status"), 301, "http://gw.test:8083/port-and-status"},
		{"port, host and status", get("/port-and-host-and-status"), 302, "http://example.org:8083/port-and-host-and-status"},
		{"scheme", get("/scheme"), 302, "https://gw.test/scheme"},
		{"scheme and host", get("/scheme-and-host"), 302, "https://example.org/scheme-and-host"},
		{"scheme and status", get("/scheme-and-status"), 301, "https://gw.test/scheme-and-status"},
		{"scheme, host and status", get("/scheme-and-host-and-status"), 302, "https://example.org/scheme-and-host-and-status"},
		{"hostname", get("/hostname-redirect"), 302, "http://example.org/hostname-redirect"},
		{"host and status", get("/host-and-status"), 301, "http://example.org/host-and-status"},
		{"303", newRequest("POST", gw, "/see-other"), 303, "http://gw.test/see-other"},
		{"307", get("/temporary"), 307, "http://gw.test/temporary"},
		{"308", get("/permanent"), 308, "http://gw.test/permanent"},
		{"80: scheme nil, port nil", get("/scheme-nil-and-port-nil"), 302, "http://example.org/scheme-nil-and-port-nil"},
		{"80: scheme nil, port 80", get("/scheme-nil-and-port-80"), 302, "http://example.org/scheme-nil-and-port-80"},
		{"80: scheme nil, port 8080", get("/scheme-nil-and-port-8080"), 302, "http://example.org:8080/scheme-nil-and-port-8080"},
		{"80: https, port nil", get("/scheme-https-and-port-nil"), 302, "https://example.org/scheme-https-and-port-nil"},
		{"80: https, port 443", get("/scheme-https-and-port-443"), 302, "https://example.org/scheme-https-and-port-443"},
		{"80: https, port 8443", get("/scheme-https-and-port-8443"), 302, "https://example.org:8443/scheme-https-and-port-8443"},
	})

	// The listener on port 8080: without a scheme or port, the listener's port stays.
	port8080 := compileProxy(t, httpProxy(8080, anyHost(
		redirectTo("/scheme-nil-and-port-nil", ir.Redirect{Hostname: "example.org"}),
		redirectTo("/scheme-nil-and-port-80", ir.Redirect{Hostname: "example.org", Port: 80}),
		redirectTo("/scheme-https-and-port-nil", ir.Redirect{Hostname: "example.org", Scheme: "https"}),
	)))
	checkRedirects(t, port8080, []redirectCase{
		{"8080: scheme nil, port nil", newRequest("GET", "gw.test:8080", "/scheme-nil-and-port-nil"), 302, "http://example.org:8080/scheme-nil-and-port-nil"},
		{"8080: scheme nil, port 80", newRequest("GET", "gw.test:8080", "/scheme-nil-and-port-80"), 302, "http://example.org/scheme-nil-and-port-80"},
		{"8080: https, port nil", newRequest("GET", "gw.test:8080", "/scheme-https-and-port-nil"), 302, "https://example.org/scheme-https-and-port-nil"},
	})

	// The HTTPS listener on port 443, requested as https://example.org/.
	port443 := compileProxy(t, httpProxy(443, anyHost(
		redirectTo("/scheme-nil-and-port-nil", ir.Redirect{Hostname: "example.org"}),
		redirectTo("/scheme-nil-and-port-443", ir.Redirect{Hostname: "example.org", Port: 443}),
		redirectTo("/scheme-nil-and-port-8443", ir.Redirect{Hostname: "example.org", Port: 8443}),
		redirectTo("/scheme-http-and-port-nil", ir.Redirect{Hostname: "example.org", Scheme: "http"}),
		redirectTo("/scheme-http-and-port-80", ir.Redirect{Hostname: "example.org", Scheme: "http", Port: 80}),
		redirectTo("/scheme-http-and-port-8080", ir.Redirect{Hostname: "example.org", Scheme: "http", Port: 8080}),
	)))
	tlsGet := func(path string) *http.Request { return newRequest("GET", "", "https://example.org"+path) }
	checkRedirects(t, port443, []redirectCase{
		{"443: scheme nil, port nil", tlsGet("/scheme-nil-and-port-nil"), 302, "https://example.org/scheme-nil-and-port-nil"},
		{"443: scheme nil, port 443", tlsGet("/scheme-nil-and-port-443"), 302, "https://example.org/scheme-nil-and-port-443"},
		{"443: scheme nil, port 8443", tlsGet("/scheme-nil-and-port-8443"), 302, "https://example.org:8443/scheme-nil-and-port-8443"},
		{"443: http, port nil", tlsGet("/scheme-http-and-port-nil"), 302, "http://example.org/scheme-http-and-port-nil"},
		{"443: http, port 80", tlsGet("/scheme-http-and-port-80"), 302, "http://example.org/scheme-http-and-port-80"},
		{"443: http, port 8080", tlsGet("/scheme-http-and-port-8080"), 302, "http://example.org:8080/scheme-http-and-port-8080"},
	})
}

// TestRedirectGolden checks the redirects of xds/testdata/redirect, including the prefix
// replacements with "/" and from the root.
func TestRedirectGolden(t *testing.T) {
	table := compileCase(t, "redirect")
	get := func(host, target string) *http.Request { return newRequest("GET", host, target) }
	checkRedirects(t, table, []redirectCase{
		{"https", get("example.com", "/secure/x?y=1"), 301, "https://example.com/secure/x?y=1"},
		{"https from another port", get("example.com:8080", "/secure"), 301, "https://example.com/secure"},
		{"full path keeps the query", get("example.com", "/old?a=1"), 302, "http://new.example.com/new?a=1"},
		{"prefix", get("example.com", "/v1/x?y"), 303, "http://example.com/v2/x?y"},
		{"prefix itself", get("example.com", "/v1"), 303, "http://example.com/v2"},
		{"prefix with slash", get("example.com", "/v1/"), 303, "http://example.com/v2/"},
		{"strip", get("example.com", "/strip/x"), 307, "http://example.com/x"},
		{"strip itself", get("example.com", "/strip"), 307, "http://example.com/"},
		{"strip with slash", get("example.com", "/strip/"), 307, "http://example.com/"},
		{"strip extra slashes", get("example.com", "/strip//x"), 307, "http://example.com/x"},
		{"from the root", get("example.com", "/x/y"), 308, "http://example.com/app/x/y"},
		{"root itself", get("example.com", "/"), 308, "http://example.com/app/"},
		{"escaped path stays escaped", get("example.com", "/a%2Fb"), 308, "http://example.com/app/a%2Fb"},
		{"default code", get("old.example.com:8080", "/x"), 302, "http://example.com:8080/x"},
	})
}

// TestRedirectEnvoyFields covers redirect fields xds does not emit today.
func TestRedirectEnvoyFields(t *testing.T) {
	redirect := func(name string, match *routev3.RouteMatch, a *routev3.RedirectAction) *routev3.Route {
		return &routev3.Route{Name: name, Match: match, Action: &routev3.Route_Redirect{Redirect: a}}
	}
	rc := &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*routev3.Route{
			redirect("strip", prefixMatch("/strip"), &routev3.RedirectAction{StripQuery: true}),
			redirect("own-query", prefixMatch("/own"), &routev3.RedirectAction{
				PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "moved?from=own"},
				StripQuery:           true,
			}),
			redirect("regex", prefixMatch("/users"), &routev3.RedirectAction{
				PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
					Pattern: &matcherv3.RegexMatcher{Regex: `^/users/([^/]+)/(\w+)$`}, Substitution: `/\2/\1\\$`,
				}},
			}),
			redirect("https", prefixMatch("/tls"), &routev3.RedirectAction{
				SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
				ResponseCode:           routev3.RedirectAction_TEMPORARY_REDIRECT,
			}),
			redirect("regex-prefix", &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{
				SafeRegex: &matcherv3.RegexMatcher{Regex: "/r/.*"},
			}}, &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/whole"}}),
			redirect("ftp", prefixMatch("/ftp"), &routev3.RedirectAction{
				SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "FTP"},
			}),
		},
	}}}
	table := mustCompile(t, rc)
	get := func(target string) *http.Request { return newRequest("GET", "h.test:8080", target) }
	checkRedirects(t, table, []redirectCase{
		{"strip query", get("/strip?a=1"), 301, "http://h.test:8080/strip"},
		{"path_redirect query wins", get("/own?a=1"), 301, "http://h.test:8080/moved?from=own"},
		{"regex groups", get("/users/ann/posts?x"), 301, `http://h.test:8080/posts/ann\$?x`},
		{"https_redirect", get("/tls"), 307, "https://h.test/tls"},
		{"prefix_rewrite on a regex match replaces the path", get("/r/a/b?q"), 301, "http://h.test:8080/whole?q"},
		{"scheme without a well-known port keeps the port", get("/ftp"), 301, "ftp://h.test:8080/ftp"},
	})
}
