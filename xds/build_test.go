package xds_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

var update = flag.Bool("update", false, "rewrite the golden testdata/*.xds.yaml files")

// golden is what a testdata/<case>.xds.yaml file holds: the resources Build returns and the
// proxyless variant's listeners and routes (its clusters and endpoints are Build's, named).
type golden struct {
	Listeners []any    `json:"listeners"`
	Routes    []any    `json:"routes"`
	Clusters  []any    `json:"clusters"`
	Endpoints []any    `json:"endpoints"`
	Secrets   []any    `json:"secrets"`
	Proxyless proxyles `json:"proxyless"`
}

type proxyles struct {
	Listeners []any    `json:"listeners"`
	Routes    []any    `json:"routes"`
	Clusters  []string `json:"clusters"`
}

// TestBuildGolden builds every testdata/<case>.ir.yaml and compares the resources with
// testdata/<case>.xds.yaml.
func TestBuildGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.ir.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".ir.yaml")
		t.Run(name, func(t *testing.T) {
			p := loadProxy(t, in)
			res, err := xds.Build(p)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			proxyless, err := xds.BuildProxyless(p, res)
			if err != nil {
				t.Fatalf("BuildProxyless: %v", err)
			}
			validateAll(t, res)
			validateAll(t, proxyless)

			g := golden{
				Listeners: toJSON(t, res.Listeners),
				Routes:    toJSON(t, res.Routes),
				Clusters:  toJSON(t, res.Clusters),
				Endpoints: toJSON(t, res.Endpoints),
				Secrets:   toJSON(t, res.Secrets),
				Proxyless: proxyles{
					Listeners: toJSON(t, proxyless.Listeners),
					Routes:    toJSON(t, proxyless.Routes),
					Clusters:  []string{},
				},
			}
			for _, c := range proxyless.Clusters {
				g.Proxyless.Clusters = append(g.Proxyless.Clusters, c.GetName())
			}
			got, err := yaml.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSuffix(in, ".ir.yaml") + ".xds.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./xds -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got; go test ./xds -update rewrites it):\n%s", out, diff)
			}
		})
	}
}

func loadProxy(t testing.TB, path string) *ir.Proxy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p ir.Proxy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &p
}

// validateAll checks every resource with Validate, independently of Build's own checks.
func validateAll(t *testing.T, r *xds.Resources) {
	t.Helper()
	check := func(name string, err error) {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, x := range r.Listeners {
		check(x.GetName(), x.Validate())
	}
	for _, x := range r.Routes {
		check(x.GetName(), x.Validate())
	}
	for _, x := range r.Clusters {
		check(x.GetName(), x.Validate())
	}
	for _, x := range r.Endpoints {
		check(x.GetClusterName(), x.Validate())
	}
	for _, x := range r.Secrets {
		check(x.GetName(), x.Validate())
	}
}

// toJSON renders resources in protojson, decoded so that YAML sorts their keys.
func toJSON[M proto.Message](t *testing.T, msgs []M) []any {
	t.Helper()
	out := []any{}
	for _, m := range msgs {
		data, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestBuildErrors checks that IR breaking its contract fails the build with an error that
// names the resource, instead of producing configuration a proxy would reject.
func TestBuildErrors(t *testing.T) {
	backend := &ir.Backend{Name: "c1/ns/svc/80", AppProtocol: ir.AppHTTP1}
	route := func(mut func(r *ir.Route)) *ir.Proxy {
		r := &ir.Route{
			Name:     "c1/ns/route/rule/0/match/0",
			Match:    ir.Match{PathType: ir.PathPrefix, Path: "/"},
			Backends: []*ir.WeightedBackend{{Backend: backend.Name, Weight: 1}},
		}
		mut(r)
		return &ir.Proxy{
			Node: "c1/ns/gw",
			Listeners: []*ir.Listener{{
				Name: "0.0.0.0:80", Address: "0.0.0.0", Port: 80, Protocol: ir.ProtocolHTTP,
				Chains: []*ir.FilterChain{{Name: "http", HTTP: &ir.RouteTable{
					Name:         "rt",
					VirtualHosts: []*ir.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: []*ir.Route{r}}},
				}}},
			}},
			Backends: []*ir.Backend{backend},
		}
	}
	tls := func(chains ...*ir.FilterChain) *ir.Proxy {
		return &ir.Proxy{Node: "c1/ns/gw", Listeners: []*ir.Listener{{
			Name: "0.0.0.0:443", Address: "0.0.0.0", Port: 443, Protocol: ir.ProtocolTLS, Chains: chains,
		}}}
	}
	cert := &ir.Certificate{Name: "c1/ns/cert", CertPEM: []byte("cert"), KeyPEM: []byte("key")}
	for _, tc := range []struct {
		name  string
		proxy *ir.Proxy
		want  []string // substrings of the error
	}{
		{"unknown backend", route(func(r *ir.Route) { r.Backends[0].Backend = "c1/ns/nope/80" }),
			[]string{`listener "0.0.0.0:80"`, `route table "rt"`, `route "c1/ns/route/rule/0/match/0"`, `unknown backend "c1/ns/nope/80"`}},
		{"invalid path regex", route(func(r *ir.Route) { r.Match = ir.Match{PathType: ir.PathRegex, Path: "/(a"} }),
			[]string{`route "c1/ns/route/rule/0/match/0"`, "invalid regular expression"}},
		{"invalid header regex", route(func(r *ir.Route) {
			r.Match.Headers = []ir.StringMatch{{Name: "x", Type: ir.MatchRegex, Value: "[z-a]"}}
		}), []string{`header "x"`, "invalid regular expression"}},
		{"two actions", route(func(r *ir.Route) { r.DirectResponse = &ir.DirectResponse{StatusCode: 404} }),
			[]string{"want exactly one of redirect, direct response and backends, got 2"}},
		{"no action", route(func(r *ir.Route) { r.Backends = nil }),
			[]string{"got 0"}},
		{"redirect status", route(func(r *ir.Route) {
			r.Backends, r.Redirect = nil, &ir.Redirect{StatusCode: 305}
		}), []string{"redirect: unsupported status code 305"}},
		{"prefix rewrite of an exact match", route(func(r *ir.Route) {
			r.Match = ir.Match{PathType: ir.PathExact, Path: "/a"}
			r.Rewrite = &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/b"}}
		}), []string{"ReplacePrefixMatch needs a PathPrefix match"}},
		{"mirror fraction", route(func(r *ir.Route) {
			r.Mirrors = []*ir.Mirror{{Backend: backend.Name, Numerator: 3, Denominator: 2}}
		}), []string{"invalid fraction 3/2"}},
		{"retry code", route(func(r *ir.Route) { r.Retry = &ir.Retry{Attempts: 2, Codes: []int{42}} }),
			[]string{"retry: invalid status code 42"}},
		{"direct response status", route(func(r *ir.Route) {
			r.Backends, r.DirectResponse = nil, &ir.DirectResponse{StatusCode: 42}
		}), []string{`route configuration "rt"`, "Status"}},
		{"invalid header name", route(func(r *ir.Route) {
			r.RequestHeaders = &ir.HeaderModifier{Set: []ir.Header{{Name: "bad\nname", Value: "v"}}}
		}), []string{`route configuration "rt"`}},
		{"duplicate backend", &ir.Proxy{Node: "n", Backends: []*ir.Backend{backend, backend}},
			[]string{`backend "c1/ns/svc/80": duplicate name`}},
		{"app protocol", &ir.Proxy{Node: "n", Backends: []*ir.Backend{{Name: "b", AppProtocol: "QUIC"}}},
			[]string{`cluster "b"`, `unknown app protocol "QUIC"`}},
		{"upstream TLS without roots", &ir.Proxy{Node: "n", Backends: []*ir.Backend{{Name: "b", TLS: &ir.UpstreamTLS{SNI: "b.example"}}}},
			[]string{`cluster "b"`, "neither CA certificates nor well-known CAs"}},
		{"two chains on a plaintext port", &ir.Proxy{Node: "n", Listeners: []*ir.Listener{{
			Name: "l", Address: "0.0.0.0", Port: 80, Protocol: ir.ProtocolHTTP,
			Chains: []*ir.FilterChain{{Name: "a"}, {Name: "b"}},
		}}}, []string{`listener "l"`, "needs exactly one chain, got 2"}},
		{"duplicate server name", tls(
			&ir.FilterChain{Name: "a", ServerNames: []string{"x.example"}, TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{cert}}, HTTP: &ir.RouteTable{Name: "a"}},
			&ir.FilterChain{Name: "b", ServerNames: []string{"x.example"}, TCP: &ir.TCPForward{Name: "t"}},
		), []string{`chains "a" and "b" both match server name "x.example"`}},
		{"HTTP on a TLS port without TLS", tls(&ir.FilterChain{Name: "a", HTTP: &ir.RouteTable{Name: "a"}}),
			[]string{`chain "a"`, "needs TLS termination"}},
		{"TLS without certificates", tls(&ir.FilterChain{Name: "a", TLS: &ir.TLSTermination{}, HTTP: &ir.RouteTable{Name: "a"}}),
			[]string{`chain "a"`, "without certificates"}},
		{"two certificates with one name", tls(
			&ir.FilterChain{Name: "a", ServerNames: []string{"a"}, TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{cert}}, HTTP: &ir.RouteTable{Name: "a"}},
			&ir.FilterChain{Name: "b", ServerNames: []string{"b"}, TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{{Name: cert.Name, CertPEM: []byte("other"), KeyPEM: []byte("key")}}}, HTTP: &ir.RouteTable{Name: "b"}},
		), []string{`certificate "c1/ns/cert": two different certificates share the name`}},
		{"two route tables with one name", tls(
			&ir.FilterChain{Name: "a", ServerNames: []string{"a"}, TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{cert}}, HTTP: &ir.RouteTable{Name: "rt"}},
			&ir.FilterChain{Name: "b", ServerNames: []string{"b"}, TLS: &ir.TLSTermination{Certificates: []*ir.Certificate{cert}}, HTTP: &ir.RouteTable{Name: "rt", VirtualHosts: []*ir.VirtualHost{{Name: "vh", Domains: []string{"*"}}}}},
		), []string{`route table "rt": two different tables share the name`}},
		{"chain with neither HTTP nor TCP", tls(&ir.FilterChain{Name: "a"}),
			[]string{`chain "a"`, "neither HTTP nor TCP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := xds.Build(tc.proxy)
			if err == nil {
				t.Fatalf("Build succeeded with %d listeners; want an error", len(res.Listeners))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// BenchmarkBuild builds a proxy with 10,000 routes over 100 virtual hosts and 1,000 backends.
func BenchmarkBuild(b *testing.B) {
	p := largeProxy(10_000, 1_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := xds.Build(p); err != nil {
			b.Fatal(err)
		}
	}
}

// largeProxy returns a proxy with one HTTP listener, the given number of routes spread over
// 100 virtual hosts, and backends with 2 localities of 5 endpoints each.
func largeProxy(routes, backends int) *ir.Proxy {
	p := &ir.Proxy{Node: "c1/ns/gw", Cluster: "c1"}
	for i := range backends {
		be := &ir.Backend{Name: fmt.Sprintf("c1/ns/svc-%d/80", i), AppProtocol: ir.AppHTTP1}
		for l, cluster := range []string{"c1", "c2"} {
			loc := &ir.Locality{Cluster: cluster, Region: "r1", Priority: uint32(l), Weight: 5}
			for e := range 5 {
				loc.Endpoints = append(loc.Endpoints, &ir.Endpoint{Address: fmt.Sprintf("10.%d.%d.%d", l, i/250, i%250+e), Port: 8080, Ready: true})
			}
			be.Localities = append(be.Localities, loc)
		}
		p.Backends = append(p.Backends, be)
	}
	table := &ir.RouteTable{Name: "c1/ns/gw/http"}
	const hosts = 100
	for h := range hosts {
		table.VirtualHosts = append(table.VirtualHosts, &ir.VirtualHost{
			Name: fmt.Sprintf("host-%d", h), Domains: []string{fmt.Sprintf("host-%d.example.com", h)},
		})
	}
	for i := range routes {
		vh := table.VirtualHosts[i%hosts]
		vh.Routes = append(vh.Routes, &ir.Route{
			Name: fmt.Sprintf("c1/ns/route-%d/rule/0/match/0", i),
			Match: ir.Match{
				PathType: ir.PathPrefix, Path: fmt.Sprintf("/api/v%d", i),
				Headers: []ir.StringMatch{{Name: "x-tenant", Type: ir.MatchExact, Value: "t"}},
			},
			Backends: []*ir.WeightedBackend{
				{Backend: p.Backends[i%backends].Name, Weight: 90},
				{Backend: p.Backends[(i+1)%backends].Name, Weight: 10},
			},
			RequestHeaders: &ir.HeaderModifier{Set: []ir.Header{{Name: "x-route", Value: "r"}}},
			Timeouts:       &ir.Timeouts{Request: 15_000_000_000},
			Retry:          &ir.Retry{Attempts: 2, Codes: []int{503}},
		})
	}
	p.Listeners = []*ir.Listener{{
		Name: "0.0.0.0:80", Address: "0.0.0.0", Port: 80, Protocol: ir.ProtocolHTTP,
		Chains: []*ir.FilterChain{{Name: "http", HTTP: table}},
	}}
	return p
}
