package router_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/translator/ir"
)

// manyHosts is 10,000 virtual hosts of one route each: three in four exact, the others
// "*.tenant-<i>.example.com". Its requests hit every host, wildcards two labels deep.
func manyHosts(tb testing.TB) (*router.Table, []*http.Request) {
	const hosts = 10_000
	var vhosts []*ir.VirtualHost
	var requests []*http.Request
	for i := range hosts {
		domain, host := fmt.Sprintf("app-%d.example.com", i), fmt.Sprintf("app-%d.example.com", i)
		if i%4 == 0 {
			domain, host = fmt.Sprintf("*.tenant-%d.example.com", i), fmt.Sprintf("a.b.tenant-%d.example.com:8443", i)
		}
		prefix := fmt.Sprintf("/api-%d", i)
		vhosts = append(vhosts, &ir.VirtualHost{
			Name: fmt.Sprintf("vh-%d", i), Domains: []string{domain},
			Routes: []*ir.Route{forward(fmt.Sprintf("route-%d", i), prefix)},
		})
		requests = append(requests, newRequest("GET", host, prefix+"/items?id=7"))
	}
	return compileProxy(tb, httpProxy(80, vhosts...)), requests
}

// manyRoutes is one virtual host of 200 routes in Gateway API order: exact paths, regexes,
// prefixes with header, query and method conditions, plain prefixes. Its requests hit
// routes from the first to the last.
func manyRoutes(tb testing.TB) (*router.Table, []*http.Request) {
	var routes []*ir.Route
	var requests []*http.Request
	add := func(r *ir.Route, req *http.Request) {
		routes = append(routes, r)
		requests = append(requests, req)
	}
	for i := range 50 {
		r := forward(fmt.Sprintf("exact-%d", i), fmt.Sprintf("/exact/%d", i))
		r.Match.PathType = ir.PathExact
		add(r, newRequest("GET", "bench.example.com", fmt.Sprintf("/exact/%d", i)))
	}
	for i := range 25 {
		r := forward(fmt.Sprintf("regex-%d", i), fmt.Sprintf(`/regex/%d/[0-9]+`, i))
		r.Match.PathType = ir.PathRegex
		add(r, newRequest("GET", "bench.example.com", fmt.Sprintf("/regex/%d/123", i)))
	}
	for i := range 25 {
		r := forward(fmt.Sprintf("conditions-%d", i), fmt.Sprintf("/cond/%d", i))
		r.Match.Method = "POST"
		r.Match.Headers = []ir.StringMatch{{Name: "x-tenant", Type: ir.MatchExact, Value: fmt.Sprint(i)}}
		r.Match.QueryParams = []ir.StringMatch{{Name: "v", Type: ir.MatchExact, Value: "2"}}
		add(r, newRequest("POST", "bench.example.com", fmt.Sprintf("/cond/%d/x?a=1&v=2", i), "X-Tenant", fmt.Sprint(i)))
	}
	for i := range 99 {
		add(forward(fmt.Sprintf("prefix-%d", i), fmt.Sprintf("/prefix/%d", i)),
			newRequest("GET", "bench.example.com", fmt.Sprintf("/prefix/%d/deeper/path", i)))
	}
	add(forward("root", "/"), newRequest("GET", "bench.example.com", "/nothing/else"))
	table := compileProxy(tb, httpProxy(80, &ir.VirtualHost{
		Name: "bench.example.com", Domains: []string{"bench.example.com"}, Routes: routes,
	}))
	return table, requests
}

// BenchmarkMatch measures Match over many hosts and over many routes of one host.
func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct {
		name  string
		setup func(testing.TB) (*router.Table, []*http.Request)
	}{
		{"10000-hosts-10000-routes", manyHosts},
		{"1-host-200-routes", manyRoutes},
	} {
		table, requests := bc.setup(b)
		check(b, table, requests)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if rt, _ := table.Match(requests[i]); rt == nil {
					b.Fatal("no match")
				}
				if i++; i == len(requests) {
					i = 0
				}
			}
		})
	}
}

// check verifies that request i matches route i, each route's only request.
func check(tb testing.TB, table *router.Table, requests []*http.Request) {
	tb.Helper()
	seen := map[string]bool{}
	for _, r := range requests {
		rt, _ := table.Match(r)
		if rt == nil || seen[rt.Name] {
			tb.Fatalf("%s%s: route %+v", r.Host, r.URL, rt)
		}
		seen[rt.Name] = true
	}
}

// TestMatchAllocs checks that matching allocates nothing, for every request of the
// benchmarks and for a mixed-case Host.
func TestMatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled regexp machines")
	}
	for _, setup := range []func(testing.TB) (*router.Table, []*http.Request){manyHosts, manyRoutes} {
		table, requests := setup(t)
		requests = append(requests, newRequest("GET", "APP-1.Example.COM", "/api-1"), newRequest("GET", "unknown", "/"))
		for _, r := range requests {
			if n := testing.AllocsPerRun(20, func() { table.Match(r) }); n != 0 {
				t.Errorf("%s%s: %v allocations per match", r.Host, r.URL, n)
			}
		}
	}
}
