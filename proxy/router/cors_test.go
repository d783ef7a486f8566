package router_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/translator/ir"
)

type corsCase struct {
	name    string
	request *http.Request
	// preflight: the proxy answers the request itself with 200.
	preflight bool
	// valid lists acceptable values per header (whitespace ignored); absent headers must
	// not be set.
	valid  map[string][]string
	absent []string
}

// corsResponse is what the client sees: the preflight answer, or the cluster's answer (here
// empty) with the CORS response headers.
func corsResponse(t *testing.T, table *router.Table, r *http.Request) (preflight bool, h http.Header) {
	t.Helper()
	rt, _ := table.Match(r)
	if rt == nil || rt.CORS == nil {
		t.Fatalf("%s: no route with CORS (%+v)", r.URL, rt)
	}
	handled, status, h := rt.CORS.Preflight(r)
	if handled {
		if status != http.StatusOK {
			t.Errorf("preflight status = %d", status)
		}
		return true, h
	}
	h = http.Header{}
	rt.CORS.ResponseHeaders(r, h)
	return false, h
}

func checkCORS(t *testing.T, table *router.Table, tests []corsCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			preflight, h := corsResponse(t, table, tc.request)
			if preflight != tc.preflight {
				t.Errorf("answered by the proxy: %v, want %v", preflight, tc.preflight)
			}
			for name, valid := range tc.valid {
				got, ok := h[http.CanonicalHeaderKey(name)]
				if !ok {
					t.Errorf("%s missing; headers %v", name, h)
					continue
				}
				norm := func(s string) string { return strings.ReplaceAll(s, " ", "") }
				if !slices.ContainsFunc(valid, func(v string) bool { return norm(v) == norm(strings.Join(got, ",")) }) {
					t.Errorf("%s = %q, want one of %q", name, got, valid)
				}
			}
			for _, name := range tc.absent {
				if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("%s = %q, want it absent", name, v)
				}
			}
		})
	}
}

func corsRule(prefix string, c ir.CORS) *ir.Route {
	r := forward(prefix, prefix)
	r.CORS = &c
	return r
}

// TestCORSConformance replays the Gateway API conformance test HTTPRouteCORS (v1.6.3)
// through xds.Build.
func TestCORSConformance(t *testing.T) {
	table := compileProxy(t, httpProxy(80, anyHost(
		corsRule("/cors-1", ir.CORS{
			AllowOrigins:     []string{"https://www.foo.com", "https://*.bar.com"},
			AllowMethods:     []string{"GET", "OPTIONS"},
			AllowHeaders:     []string{"x-header-1", "x-header-2"},
			ExposeHeaders:    []string{"x-header-3", "x-header-4"},
			AllowCredentials: true,
			MaxAge:           3600,
		}),
		corsRule("/cors-2", ir.CORS{AllowOrigins: []string{"https://www.foo.com"}, AllowMethods: []string{"*"}}),
		corsRule("/cors-wildcard-origin", ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"PUT"}}),
		corsRule("/cors-wildcard-methods-headers", ir.CORS{
			AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true,
		}),
		corsRule("/cors-wildcard-methods-headers-unauth", ir.CORS{
			AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"},
		}),
	)))
	preflight := func(path, origin, method, headers string) *http.Request {
		h := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			h = append(h, "Access-Control-Request-Headers", headers)
		}
		return newRequest("OPTIONS", "gw", path, h...)
	}
	cors1 := map[string][]string{
		"access-control-allow-methods":     {"GET, OPTIONS", "OPTIONS, GET"},
		"access-control-allow-headers":     {"x-header-1, x-header-2", "x-header-2, x-header-1"},
		"access-control-expose-headers":    {"x-header-3, x-header-4", "x-header-4, x-header-3"},
		"access-control-max-age":           {"3600"},
		"access-control-allow-credentials": {"true"},
	}
	withOrigin := func(origin string) map[string][]string {
		out := map[string][]string{"access-control-allow-origin": {origin}}
		for k, v := range cors1 {
			out[k] = v
		}
		return out
	}
	checkCORS(t, table, []corsCase{{
		name:      "preflight from an exact origin",
		request:   preflight("/cors-1", "https://www.foo.com", "GET", "x-header-1, x-header-2"),
		preflight: true, valid: withOrigin("https://www.foo.com"),
	}, {
		name:      "preflight from a wildcard origin",
		request:   preflight("/cors-1", "https://www.bar.com", "GET", "x-header-1, x-header-2"),
		preflight: true, valid: withOrigin("https://www.bar.com"),
	}, {
		name:      "wildcard spans periods",
		request:   preflight("/cors-1", "https://xpto.www.bar.com", "GET", "x-header-1, x-header-2"),
		preflight: true, valid: withOrigin("https://xpto.www.bar.com"),
	}, {
		// Answered by the gateway, without CORS headers: xds.Build turns off
		// forward_not_matching_preflights.
		name:      "preflight from another origin",
		request:   preflight("/cors-1", "https://foobar.com", "GET", ""),
		preflight: true, absent: []string{"access-control-allow-origin"},
	}, {
		name:    "simple request from an exact origin",
		request: newRequest("GET", "gw", "/cors-1", "Origin", "https://www.foo.com", "Access-Control-Request-Method", "GET"),
		valid:   map[string][]string{"access-control-allow-origin": {"https://www.foo.com"}},
	}, {
		name:    "simple request from a wildcard origin",
		request: newRequest("GET", "gw", "/cors-1", "Origin", "https://www.bar.com"),
		valid:   map[string][]string{"access-control-allow-origin": {"https://www.bar.com"}},
	}, {
		name:    "simple request from another origin",
		request: newRequest("GET", "gw", "/cors-1", "Origin", "https://foobar.com"),
		absent:  []string{"access-control-allow-origin"},
	}, {
		name:      "any method",
		request:   preflight("/cors-2", "https://www.foo.com", "POST", ""),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-methods": {"POST", "*"},
			"access-control-allow-origin":  {"https://www.foo.com"},
		},
		absent: []string{"access-control-allow-credentials"},
	}, {
		name:      "any origin",
		request:   preflight("/cors-wildcard-origin", "https://foobar.com", "PUT", ""),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-origin":  {"https://foobar.com", "*"},
			"access-control-allow-methods": {"PUT"},
		},
		absent: []string{"access-control-allow-credentials"},
	}, {
		name:      "any origin with a port",
		request:   preflight("/cors-wildcard-origin", "https://foobar.com:12345", "PUT", ""),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-origin":  {"https://foobar.com:12345", "*"},
			"access-control-allow-methods": {"PUT"},
		},
		absent: []string{"access-control-allow-credentials"},
	}, {
		name:    "request from any origin with a port",
		request: newRequest("PUT", "gw", "/cors-wildcard-origin", "Origin", "https://foobar.com:12345"),
		valid:   map[string][]string{"access-control-allow-origin": {"https://foobar.com:12345", "*"}},
		absent:  []string{"access-control-allow-credentials"},
	}, {
		name:      "wildcards with credentials echo the request",
		request:   preflight("/cors-wildcard-methods-headers", "https://other.foo.com", "PUT", "x-header-1, x-header-2"),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-origin":      {"https://other.foo.com"},
			"access-control-allow-methods":     {"PUT"},
			"access-control-allow-headers":     {"x-header-1, x-header-2", "x-header-2, x-header-1"},
			"access-control-allow-credentials": {"true"},
			"vary":                             {"Origin"},
		},
	}, {
		name:      "wildcards without credentials",
		request:   preflight("/cors-wildcard-methods-headers-unauth", "https://other.foo.com", "PUT", "x-header-1, x-header-2"),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-origin":  {"https://other.foo.com", "*"},
			"access-control-allow-methods": {"PUT", "*"},
			"access-control-allow-headers": {"x-header-1, x-header-2", "x-header-2, x-header-1", "*"},
		},
		absent: []string{"access-control-allow-credentials"},
	}, {
		name:    "request with credentials",
		request: newRequest("GET", "gw", "/cors-wildcard-methods-headers", "Origin", "https://other.foo.com"),
		valid: map[string][]string{
			"access-control-allow-origin":      {"https://other.foo.com"},
			"access-control-allow-credentials": {"true"},
		},
	}, {
		name:    "request without credentials",
		request: newRequest("GET", "gw", "/cors-wildcard-methods-headers-unauth", "Origin", "https://other.foo.com"),
		valid:   map[string][]string{"access-control-allow-origin": {"https://other.foo.com", "*"}},
		absent:  []string{"access-control-allow-credentials"},
	}, {
		name:    "OPTIONS without a requested method is no preflight",
		request: newRequest("OPTIONS", "gw", "/cors-1", "Origin", "https://www.foo.com"),
		valid:   map[string][]string{"access-control-allow-origin": {"https://www.foo.com"}},
		absent:  []string{"access-control-allow-methods", "access-control-max-age"},
	}, {
		name:    "no origin",
		request: newRequest("GET", "gw", "/cors-1"),
		absent:  []string{"access-control-allow-origin", "vary"},
	}})
}

// TestCORSGolden checks xds/testdata/cors: a route without CORS has no policy.
func TestCORSGolden(t *testing.T) {
	table := compileCase(t, "cors")
	checkCORS(t, table, []corsCase{{
		name:    "port pattern",
		request: newRequest("OPTIONS", "api.example.com", "/api", "Origin", "http://localhost:3000", "Access-Control-Request-Method", "PUT"),
		valid: map[string][]string{
			"access-control-allow-origin":  {"http://localhost:3000"},
			"access-control-allow-methods": {"GET,POST,PUT"},
			"access-control-max-age":       {"600"},
		},
		preflight: true,
	}, {
		name:    "pattern is anchored",
		request: newRequest("GET", "api.example.com", "/api", "Origin", "https://a.example.org.evil"),
		absent:  []string{"access-control-allow-origin"},
	}})
	if rt, _ := table.Match(newRequest("GET", "api.example.com", "/other")); rt == nil || rt.CORS != nil {
		t.Errorf("route without CORS: %+v", rt)
	}
}

// TestCORSLevels checks that fields merge from route to virtual host and that
// forward_not_matching_preflights false answers unmatched preflights without allowing them.
func TestCORSLevels(t *testing.T) {
	policy := func(t *testing.T, p *corsv3.CorsPolicy) map[string]*anypb.Any {
		a, err := anypb.New(p)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*anypb.Any{wellknown.CORS: a}
	}
	rc := baseConfig()
	rc.VirtualHosts[0].TypedPerFilterConfig = policy(t, &corsv3.CorsPolicy{
		AllowOriginStringMatch:       []*matcherv3.StringMatcher{exact("https://a.test")},
		AllowMethods:                 "GET",
		MaxAge:                       "60",
		AllowCredentials:             wrapperspb.Bool(true),
		ForwardNotMatchingPreflights: wrapperspb.Bool(false),
	})
	rc.VirtualHosts[0].Routes[0].TypedPerFilterConfig = policy(t, &corsv3.CorsPolicy{
		AllowMethods:     "PATCH",
		AllowCredentials: wrapperspb.Bool(false),
	})
	table := mustCompile(t, rc)
	checkCORS(t, table, []corsCase{{
		name:      "merged",
		request:   newRequest("OPTIONS", "example.com", "/", "Origin", "https://a.test", "Access-Control-Request-Method", "PATCH"),
		preflight: true,
		valid: map[string][]string{
			"access-control-allow-origin":  {"https://a.test"},
			"access-control-allow-methods": {"PATCH"},
			"access-control-max-age":       {"60"},
		},
		absent: []string{"access-control-allow-credentials"},
	}, {
		name:      "unmatched preflight answered",
		request:   newRequest("OPTIONS", "example.com", "/", "Origin", "https://b.test", "Access-Control-Request-Method", "PATCH"),
		preflight: true,
		valid:     map[string][]string{"access-control-allow-methods": {"PATCH"}},
		absent:    []string{"access-control-allow-origin"},
	}})
}
