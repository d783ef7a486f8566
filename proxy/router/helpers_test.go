package router_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// testdataDir holds the xds package's golden cases, whose IR the tests build.
const testdataDir = "../../xds/testdata"

// loadProxy reads testdata/<name>.ir.yaml like the xds golden test does.
func loadProxy(t testing.TB, name string) *ir.Proxy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, name+".ir.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p ir.Proxy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &p
}

// routeConfigs builds p with xds.Build and returns its route configurations by name.
func routeConfigs(t testing.TB, p *ir.Proxy) map[string]*routev3.RouteConfiguration {
	t.Helper()
	res, err := xds.Build(p)
	if err != nil {
		t.Fatalf("xds.Build: %v", err)
	}
	out := make(map[string]*routev3.RouteConfiguration)
	for _, rc := range res.Routes {
		out[rc.GetName()] = rc
	}
	return out
}

// compileCase compiles the only route configuration of a testdata case.
func compileCase(t testing.TB, name string) *router.Table {
	t.Helper()
	return compileProxy(t, loadProxy(t, name))
}

// compileProxy compiles the only route configuration xds.Build makes of p.
func compileProxy(t testing.TB, p *ir.Proxy) *router.Table {
	t.Helper()
	rcs := routeConfigs(t, p)
	if len(rcs) != 1 {
		t.Fatalf("want one route configuration, got %d", len(rcs))
	}
	for _, rc := range rcs {
		return mustCompile(t, rc)
	}
	panic("unreachable")
}

func mustCompile(t testing.TB, rc *routev3.RouteConfiguration) *router.Table {
	t.Helper()
	table, err := router.Compile(rc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return table
}

// httpProxy is an IR proxy with one plaintext HTTP listener on port serving vhosts; every
// backend the routes name exists.
func httpProxy(port uint32, vhosts ...*ir.VirtualHost) *ir.Proxy {
	p := &ir.Proxy{Node: "c1/default/gw", Cluster: "c1"}
	p.Listeners = []*ir.Listener{{
		Name: "0.0.0.0:80", Address: "0.0.0.0", Port: port, Protocol: ir.ProtocolHTTP,
		Chains: []*ir.FilterChain{{Name: "default/gw/http", HTTP: &ir.RouteTable{
			Name: "c1/default/gw/80", VirtualHosts: vhosts,
		}}},
	}}
	seen := map[string]bool{}
	addBackend := func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		p.Backends = append(p.Backends, &ir.Backend{
			Name:        name,
			Target:      ir.Target{Kind: ir.TargetService, Cluster: "c1", Namespace: "default", Name: "echo", Port: 80, From: "c1"},
			AppProtocol: ir.AppHTTP1,
		})
	}
	for _, vh := range vhosts {
		for _, r := range vh.Routes {
			for _, b := range r.Backends {
				addBackend(b.Backend)
			}
			for _, m := range r.Mirrors {
				addBackend(m.Backend)
			}
		}
	}
	return p
}

// backend is the backend the helpers' routes forward to.
const backend = "c1/default/echo/80"

// forward is a route to backend matching a path prefix.
func forward(name, prefix string) *ir.Route {
	return &ir.Route{
		Name:     name,
		Match:    ir.Match{PathType: ir.PathPrefix, Path: prefix},
		Backends: []*ir.WeightedBackend{{Backend: backend, Weight: 1}},
	}
}

// newRequest makes a server-side request for target ("/path?query" or an absolute URL) with
// the Host host and headers given as name, value pairs.
func newRequest(method, host, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if host != "" {
		r.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	if strings.HasPrefix(target, "https://") {
		r.TLS = &tls.ConnectionState{}
	}
	return r
}

// routeName returns the name of the route table matches for r, or "" for none.
func routeName(table *router.Table, r *http.Request) string {
	rt, _ := table.Match(r)
	if rt == nil {
		return ""
	}
	return rt.Name
}
