package router_test

import (
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/xds"
)

// fuzzTables compiles every route configuration of the xds golden cases, and tables with
// every kind of domain and matcher.
func fuzzTables(f *testing.F) []*router.Table {
	inputs, err := filepath.Glob(filepath.Join(testdataDir, "*.ir.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	var tables []*router.Table
	for _, in := range inputs {
		res, err := xds.Build(loadProxy(f, strings.TrimSuffix(filepath.Base(in), ".ir.yaml")))
		if err != nil {
			f.Fatal(err)
		}
		for _, rc := range res.Routes {
			tables = append(tables, mustCompile(f, rc))
		}
	}
	regexHeader := stringHeader("x-re", regexString(`a+b*`))
	regexHeader.InvertMatch = true
	tables = append(tables, mustCompile(f, matcherConfig(
		withHeaders(prefixMatch("/h"), regexHeader, stringHeader(":path", regexString(".*"))),
		withQuery(prefixMatch("/q"), queryExact("q", "a b")),
	)))
	table, _ := manyRoutes(f)
	return append(tables, table)
}

// FuzzMatch sends random hosts, targets and headers to compiled tables and acts on the
// route matched: nothing may panic, and a match must come with a consistent route.
func FuzzMatch(f *testing.F) {
	tables := fuzzTables(f)
	f.Add("GET", "example.com", "/", "x-version", "1")
	f.Add("POST", "api.example.com:80", "/v1/x?debug=true&id=123", "X-Tenant", "team-a")
	f.Add("OPTIONS", "API.EXAMPLE.COM", "/api?x=%zz", "Origin", "https://a.example.org")
	f.Add("GET", "[::1]:8080", "/strip-prefix//a%2F", "Cookie", `strait-session="x"; a`)
	f.Add("", ":", "", "", "")
	f.Add("PUT", "a.b.tenant-4.example.com:8443", "/redirect?#frag", ":authority", "\x00")
	f.Fuzz(func(t *testing.T, method, host, target, name, value string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: target}
		}
		r := &http.Request{
			Method: method, Host: host, URL: u, RemoteAddr: "192.0.2.1:1234",
			Header: http.Header{textproto.CanonicalMIMEHeaderKey(name): {value}, "Origin": {value}},
		}
		for _, table := range tables {
			rt, p := table.Match(r)
			if rt == nil {
				continue
			}
			exercise(t, rt, r, p)
		}
	})
}

// exercise calls every helper of rt for r, on copies of what they change.
func exercise(t *testing.T, rt *router.Route, r *http.Request, p router.Params) {
	actions := 0
	if rt.Redirect != nil {
		actions++
		if loc := rt.Redirect.Location(r, p); !strings.Contains(loc, "://") {
			t.Errorf("Location %q", loc)
		}
	}
	if rt.DirectResponse != nil {
		actions++
	}
	if len(rt.Clusters) > 0 {
		actions++
		wc := rt.PickCluster(uint64(len(r.Host)) * 0x9e3779b97f4a7c15)
		if wc == nil || wc.Weight == 0 {
			t.Errorf("picked %+v", wc)
		}
		clone := r.Clone(r.Context())
		rt.RewriteRequest(clone, p)
		wc.RequestHeaders.Apply(clone.Header)
		rt.RequestHeaders.Apply(clone.Header)
		_ = clone.URL.RequestURI()
	}
	if actions != 1 {
		t.Errorf("route %q has %d actions", rt.Name, actions)
	}
	for _, m := range rt.Mirrors {
		// A compiled mirror has a denominator (Sample divides by it) and mirrors nothing at 0%.
		if m.Sample(uint64(len(r.URL.Path))) && m.Numerator == 0 {
			t.Errorf("mirror %+v sampled at 0%%", m)
		}
	}
	rt.HashKey(r)
	rt.AffinityCookie(r)
	if rt.CORS != nil {
		rt.CORS.Preflight(r)
		rt.CORS.ResponseHeaders(r, http.Header{})
	}
	rt.ResponseHeaders.Apply(http.Header{})
}
