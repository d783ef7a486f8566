package router_test

import (
	"strings"
	"testing"

	"github.com/strait-gw/strait/translator/ir"
)

// vhostTable has one virtual host per kind of domain, each with one route named after it.
func vhostTable(t *testing.T, withDefault bool) func(host string) string {
	t.Helper()
	domains := map[string][]string{
		"exact":       {"api.example.com"},
		"wild":        {"*.example.com"},
		"deeper":      {"*.eu.example.com"},
		"dash":        {"*-api.example.org"},
		"prefix":      {"api.*"},
		"prefix-long": {"api.internal.*"},
		"v6":          {"[::1]"},
	}
	if withDefault {
		domains["any"] = []string{"*"}
	}
	var vhosts []*ir.VirtualHost
	for name, ds := range domains {
		vhosts = append(vhosts, &ir.VirtualHost{Name: name, Domains: ds, Routes: []*ir.Route{forward(name, "/")}})
	}
	table := compileProxy(t, httpProxy(80, vhosts...))
	return func(host string) string { return routeName(table, newRequest("GET", host, "/")) }
}

// TestVirtualHostSelection checks Envoy's order: exact, longest suffix wildcard, longest
// prefix wildcard, "*"; case-insensitive, ports stripped.
func TestVirtualHostSelection(t *testing.T) {
	find := vhostTable(t, true)
	long := strings.Repeat("A", 300) + ".EXAMPLE.COM"
	tests := []struct{ host, want string }{
		{"api.example.com", "exact"},
		{"API.Example.COM", "exact"},
		{"api.example.com:8443", "exact"},
		{"api.example.com:", "prefix"}, // not a port: "api." prefixes it
		{"x.example.com", "wild"},
		{"X.EXAMPLE.com:80", "wild"},
		{"a.b.example.com", "wild"},
		{"api.x.example.com", "wild"}, // a suffix wildcard beats a prefix wildcard
		{long, "wild"},
		{"x.eu.example.com", "deeper"}, // the longest suffix wins
		{"eu.example.com", "wild"},
		{"example.com", "any"},
		{".example.com", "any"}, // a wildcard stands for one byte or more
		{"foo-api.example.org", "dash"},
		{"-api.example.org", "any"},
		{"api.foo", "prefix"},
		{"api.internal.x:9000", "prefix-long"}, // the longest prefix wins
		{"api.", "any"},
		{"[::1]:8080", "v6"},
		{"[::1]", "v6"},
		{"", "any"},
		{"other.test", "any"},
	}
	for _, tc := range tests {
		if got := find(tc.host); got != tc.want {
			t.Errorf("Host %q: got virtual host %q, want %q", tc.host, got, tc.want)
		}
	}
}

// TestVirtualHostNoDefault checks that without "*" an unknown host matches nothing.
func TestVirtualHostNoDefault(t *testing.T) {
	find := vhostTable(t, false)
	for _, host := range []string{"example.com", "", "api"} {
		if got := find(host); got != "" {
			t.Errorf("Host %q: got virtual host %q, want none", host, got)
		}
	}
	if got := find("b.example.com"); got != "wild" {
		t.Errorf("got %q, want wild", got)
	}
}

// TestVirtualHostParams checks what Match reports of the Host.
func TestVirtualHostParams(t *testing.T) {
	table := compileCase(t, "http-basic")
	for _, tc := range []struct{ host, wantHost, wantPort string }{
		{"www.example.com:8080", "www.example.com", "8080"},
		{"WWW.example.com", "WWW.example.com", ""},
		{"[2001:db8::1]:443", "[2001:db8::1]", "443"},
		{"[2001:db8::1]", "[2001:db8::1]", ""},
		{"www.example.com:99999999999", "www.example.com:99999999999", ""},
	} {
		_, p := table.Match(newRequest("GET", tc.host, "/"))
		if p.Host != tc.wantHost || p.Port != tc.wantPort {
			t.Errorf("Host %q: got host %q port %q, want %q %q", tc.host, p.Host, p.Port, tc.wantHost, tc.wantPort)
		}
	}
}
