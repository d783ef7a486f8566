package router_test

import (
	"net/url"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

type matchCase struct {
	name   string
	method string
	host   string
	target string
	header []string // name, value pairs
	want   string   // route name, "" for no match
}

func runMatchCases(t *testing.T, tests []matchCase, match func(method, host, target string, header ...string) string) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			if got := match(method, tc.host, tc.target, tc.header...); got != tc.want {
				t.Errorf("%s %s%s %v: got route %q, want %q", method, tc.host, tc.target, tc.header, got, tc.want)
			}
		})
	}
}

// TestMatchPaths covers the path matches xds emits for Gateway API: exact, segment prefix,
// regex and the root prefix, on http-basic.
func TestMatchPaths(t *testing.T) {
	table := compileCase(t, "http-basic")
	const (
		exact  = "c1/default/web/rule/0/match/0"
		prefix = "c1/default/web/rule/0/match/1"
		regex  = "c1/default/web/rule/0/match/2"
		root   = "c1/default/web/rule/1/match/0"
	)
	host := "www.example.com"
	runMatchCases(t, []matchCase{
		{name: "exact", host: host, target: "/exact", want: exact},
		{name: "exact ignores the query", host: host, target: "/exact?a=b", want: exact},
		{name: "exact is not a prefix", host: host, target: "/exact/more", want: root},
		{name: "exact is case-sensitive", host: host, target: "/EXACT", want: root},
		{name: "segment prefix itself", host: host, target: "/prefix", want: prefix},
		{name: "segment prefix with slash", host: host, target: "/prefix/", want: prefix},
		{name: "segment prefix below", host: host, target: "/prefix/a/b?c", want: prefix},
		{name: "segment prefix is whole segments", host: host, target: "/prefixes", want: root},
		{name: "regex full match", host: host, target: "/items/42", want: regex},
		{name: "regex is anchored", host: host, target: "/items/42/x", want: root},
		{name: "regex ignores the query", host: host, target: "/items/7?x=1", want: regex},
		{name: "escaped path", host: host, target: "/ex%61ct", want: root},
		{name: "root", host: host, target: "/", want: root},
	}, func(method, host, target string, header ...string) string {
		return routeName(table, newRequest(method, host, target, header...))
	})
}

// TestMatchConditions covers headers, query parameters and methods, on http-matches.
func TestMatchConditions(t *testing.T) {
	table := compileCase(t, "http-matches")
	const (
		all     = "c1/default/api/rule/0/match/0"
		untyped = "c1/default/api/rule/1/match/0"
	)
	host := "api.example.com"
	good := []string{"X-Version", "1", "X-Tenant", "team-blue"}
	runMatchCases(t, []matchCase{
		{name: "everything", method: "POST", host: host, target: "/v1/x?debug=true&id=123", header: good, want: all},
		{name: "query order is free", method: "POST", host: host, target: "/v1?id=123&debug=true", header: good, want: all},
		{name: "escaped query value", method: "POST", host: host, target: "/v1?debug=%74rue&id=123", header: good, want: all},
		{name: "first query value counts", method: "POST", host: host, target: "/v1?debug=false&debug=true&id=123", header: good},
		{name: "query regex is anchored", method: "POST", host: host, target: "/v1?debug=true&id=1234", header: good},
		{name: "missing query parameter", method: "POST", host: host, target: "/v1?id=123", header: good},
		{name: "wrong method", method: "PUT", host: host, target: "/v1?debug=true&id=123", header: good},
		{name: "header value is case-sensitive", method: "POST", host: host, target: "/v1?debug=true&id=123",
			header: []string{"X-Version", "1", "X-Tenant", "TEAM-blue"}},
		{name: "header names are not", method: "POST", host: host, target: "/v1?debug=true&id=123",
			header: []string{"x-version", "1", "x-TENANT", "team-red"}, want: all},
		{name: "several values are joined", method: "POST", host: host, target: "/v1?debug=true&id=123",
			header: []string{"X-Version", "1", "X-Version", "1", "X-Tenant", "team-blue"}},
		{name: "missing header", method: "POST", host: host, target: "/v1?debug=true&id=123",
			header: []string{"X-Tenant", "team-blue"}},
		{name: "untyped header match is exact", host: host, target: "/", header: []string{"X-Untyped", "defaults-to-exact"}, want: untyped},
		{name: "no route", host: host, target: "/"},
	}, func(method, host, target string, header ...string) string {
		return routeName(table, newRequest(method, host, target, header...))
	})
}

// TestMatchOrder checks that the first matching route wins, in the order of the
// configuration, even over a more specific later one.
func TestMatchOrder(t *testing.T) {
	exactRoute := func(name, path string) *ir.Route {
		r := forward(name, path)
		r.Match.PathType = ir.PathExact
		return r
	}
	post := forward("post", "/api")
	post.Match.Method = "POST"
	table := compileProxy(t, httpProxy(80, &ir.VirtualHost{
		Name: "example.com", Domains: []string{"example.com"},
		Routes: []*ir.Route{
			exactRoute("exact", "/api/v1"),
			post,
			forward("prefix", "/api"),
			forward("root", "/"),
			forward("shadowed", "/api/v2"),
		},
	}))
	runMatchCases(t, []matchCase{
		{name: "exact first", host: "example.com", target: "/api/v1", want: "exact"},
		{name: "method before plain prefix", method: "POST", host: "example.com", target: "/api/v1/x", want: "post"},
		{name: "prefix", host: "example.com", target: "/api/v1/x", want: "prefix"},
		{name: "not a segment of the prefix", host: "example.com", target: "/apiv2", want: "root"},
		{name: "earlier prefix shadows", host: "example.com", target: "/api/v2", want: "prefix"},
	}, func(method, host, target string, header ...string) string {
		return routeName(table, newRequest(method, host, target, header...))
	})
}

// matcherConfig is one virtual host for "example.com" with routes named after their index.
func matcherConfig(routes ...*routev3.RouteMatch) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: "vh", Domains: []string{"example.com"}}
	for i, m := range routes {
		vh.Routes = append(vh.Routes, &routev3.Route{
			Name:  string(rune('a' + i)),
			Match: m,
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"},
			}},
		})
	}
	return &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{vh}}
}

func prefixMatch(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
}

func withHeaders(m *routev3.RouteMatch, hs ...*routev3.HeaderMatcher) *routev3.RouteMatch {
	m.Headers = hs
	return m
}

func withQuery(m *routev3.RouteMatch, qs ...*routev3.QueryParameterMatcher) *routev3.RouteMatch {
	m.QueryParameters = qs
	return m
}

func stringHeader(name string, sm *matcherv3.StringMatcher) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

func presentHeader(name string, present bool) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: present}}
}

func queryExact(name, value string) *routev3.QueryParameterMatcher {
	return &routev3.QueryParameterMatcher{Name: name, QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: exact(value)}}
}

func regexString(expr string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: expr}}}
}

// TestMatchEnvoyMatchers covers the matchers Envoy defines beyond what xds emits today: each
// route is the only route of its table, so that a miss is "".
func TestMatchEnvoyMatchers(t *testing.T) {
	folded := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "Bear"}, IgnoreCase: true}
	suffix := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".json"}}
	contains := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "MiD"}, IgnoreCase: true}
	inverted := stringHeader("x-env", exact("prod"))
	inverted.InvertMatch = true
	missingAsEmpty := stringHeader("x-empty", regexString("x?"))
	missingAsEmpty.TreatMissingHeaderAsEmpty = true
	presentInverted := presentHeader("x-debug", true)
	presentInverted.InvertMatch = true
	caseInsensitive := &routev3.RouteMatch{
		PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/API"},
		CaseSensitive: wrapperspb.Bool(false),
	}
	tests := []struct {
		name  string
		match *routev3.RouteMatch
		cases []matchCase
	}{{
		name:  "case-insensitive path",
		match: caseInsensitive,
		cases: []matchCase{
			{target: "/api/x", want: "a"}, {target: "/Api", want: "a"}, {target: "/apix"},
		},
	}, {
		name:  "exact path",
		match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/a b"}},
		cases: []matchCase{{target: "/a%20b", want: ""}, {target: "/a b"}},
	}, {
		name:  "ignore-case prefix header",
		match: withHeaders(prefixMatch("/"), stringHeader("authorization", folded)),
		cases: []matchCase{
			{target: "/", header: []string{"Authorization", "bearer x"}, want: "a"},
			{target: "/", header: []string{"Authorization", "Basic x"}},
		},
	}, {
		name:  "suffix and contains",
		match: withHeaders(prefixMatch("/"), stringHeader("accept", suffix), stringHeader("x-tag", contains)),
		cases: []matchCase{
			{target: "/", header: []string{"Accept", "a.json", "X-Tag", "amidst"}, want: "a"},
			{target: "/", header: []string{"Accept", "a.json", "X-Tag", "amist"}},
			{target: "/", header: []string{"Accept", "a.jsonp", "X-Tag", "mid"}},
		},
	}, {
		name:  "inverted value needs the header",
		match: withHeaders(prefixMatch("/"), inverted),
		cases: []matchCase{
			{target: "/", header: []string{"X-Env", "dev"}, want: "a"},
			{target: "/", header: []string{"X-Env", "prod"}},
			{target: "/"},
		},
	}, {
		name:  "absent header",
		match: withHeaders(prefixMatch("/"), presentHeader("x-debug", false)),
		cases: []matchCase{{target: "/", want: "a"}, {target: "/", header: []string{"X-Debug", ""}}},
	}, {
		name:  "inverted presence",
		match: withHeaders(prefixMatch("/"), presentInverted),
		cases: []matchCase{{target: "/", want: "a"}, {target: "/", header: []string{"X-Debug", "1"}}},
	}, {
		name:  "missing header as empty",
		match: withHeaders(prefixMatch("/"), missingAsEmpty),
		cases: []matchCase{{target: "/", want: "a"}, {target: "/", header: []string{"X-Empty", "x"}, want: "a"}, {target: "/", header: []string{"X-Empty", "y"}}},
	}, {
		name:  "no specifier means present",
		match: withHeaders(prefixMatch("/"), &routev3.HeaderMatcher{Name: "x-any"}),
		cases: []matchCase{{target: "/", header: []string{"X-Any", ""}, want: "a"}, {target: "/"}},
	}, {
		name: "pseudo-headers",
		match: withHeaders(prefixMatch("/"),
			stringHeader(":method", exact("DELETE")),
			stringHeader(":authority", exact("example.com")),
			stringHeader(":scheme", exact("http")),
			stringHeader(":path", regexString(`/p\?q=1`))),
		cases: []matchCase{
			{method: "DELETE", host: "example.com:8080", target: "/p?q=1", want: "a"},
			{method: "DELETE", host: "example.com", target: "/p?q=2"},
			{method: "GET", host: "example.com", target: "/p?q=1"},
		},
	}, {
		name: "query presence",
		match: withQuery(prefixMatch("/"),
			&routev3.QueryParameterMatcher{Name: "on", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}},
			&routev3.QueryParameterMatcher{Name: "any"}),
		cases: []matchCase{
			{target: "/?on&any=", want: "a"},
			{target: "/?any=1&on=", want: "a"},
			{target: "/?on=1"},
			{target: "/?o%6e=1&any", want: "a"},
		},
	}, {
		name: "query absence never matches",
		match: withQuery(prefixMatch("/"),
			&routev3.QueryParameterMatcher{Name: "off", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: false}}),
		cases: []matchCase{{target: "/"}, {target: "/?off=1"}},
	}, {
		name:  "query value with plus",
		match: withQuery(prefixMatch("/"), queryExact("q", "a b")),
		cases: []matchCase{{target: "/?q=a+b", want: "a"}, {target: "/?q=a%20b", want: "a"}, {target: "/?q=a%zz"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := mustCompile(t, matcherConfig(tc.match))
			for i := range tc.cases {
				if tc.cases[i].host == "" {
					tc.cases[i].host = "example.com"
				}
				tc.cases[i].name = tc.cases[i].target
			}
			runMatchCases(t, tc.cases, func(method, host, target string, header ...string) string {
				r := newRequest(method, host, "/", header...)
				r.URL.Path, r.URL.RawPath, r.URL.RawQuery = splitTarget(target)
				return routeName(table, r)
			})
		})
	}
}

// splitTarget splits a request target without decoding its path, so that tests can send
// paths httptest.NewRequest would reject.
func splitTarget(target string) (path, rawPath, rawQuery string) {
	path, rawQuery = target, ""
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			path, rawQuery = target[:i], target[i+1:]
			break
		}
	}
	if decoded, err := url.PathUnescape(path); err == nil && decoded != path {
		return decoded, path, rawQuery
	}
	return path, "", rawQuery
}
