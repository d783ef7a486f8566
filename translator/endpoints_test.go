package translator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

func TestEndpointSelection(t *testing.T) {
	notReady := testEndpoint("10.0.0.3")
	notReady.Conditions.Ready = testPtr(false)
	ready := testEndpoint("10.0.0.1")
	ready.Conditions.Ready = testPtr(true)
	terminating := testEndpoint("10.0.0.4")
	terminating.Conditions = discoveryv1.EndpointConditions{Ready: testPtr(true), Terminating: testPtr(true)}
	readyAgain := testEndpoint("10.0.0.3")
	readyAgain.Conditions.Ready = testPtr(true)
	notReadyAgain := testEndpoint("10.0.0.1")
	notReadyAgain.Conditions.Ready = testPtr(false)

	// Slice "a" carries both ports; the Service port's name picks http's target port.
	a := testSlice("default", "web", "web-a", "http", 8080,
		testEndpoint("10.0.0.2"), ready, notReady, terminating, testEndpoint("10.0.0.10"), discoveryv1.Endpoint{})
	a.Ports = append(a.Ports, discoveryv1.EndpointPort{Name: testPtr("metrics"), Port: testPtr(int32(9091))})
	// Slice "b" repeats three addresses, as while slices are replaced: each counts once, and
	// 10.0.0.1 and 10.0.0.3 are ready because one of their slices says so.
	b := testSlice("default", "web", "web-b", "http", 8080, readyAgain, testEndpoint("10.0.0.2"), notReadyAgain)
	v6 := testSlice("default", "web", "web-v6", "http", 8080, testEndpoint("fd00::1"))
	v6.AddressType = discoveryv1.AddressTypeIPv6
	fqdn := testSlice("default", "web", "web-fqdn", "http", 8080, testEndpoint("db.example.com"))
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	metricsOnly := testSlice("default", "web", "web-metrics", "metrics", 9091, testEndpoint("10.0.0.9"))
	otherService := testSlice("default", "api", "api-a", "http", 8080, testEndpoint("10.0.1.1"))

	tr := newTestTranslation(testCluster(Cluster{Name: "us", Region: "us-east", Zone: "us-east-1a"},
		testService("default", "web", nil, testPort("http", 80, ""), testPort("metrics", 9090, "")),
		testService("default", "single", nil, testPort("", 80, "")),
		testService("default", "api", nil, testPort("http", 80, "")),
		a, b, v6, fqdn, metricsOnly, otherService,
		testSlice("default", "single", "single-a", "", 8081, testEndpoint("10.0.2.1")),
	))

	backend, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("web", 80))
	if err != nil {
		t.Fatal(err)
	}
	if len(backend.Localities) != 1 {
		t.Fatalf("got %d localities, want 1", len(backend.Localities))
	}
	l := backend.Localities[0]
	if l.Cluster != "us" || l.Region != "us-east" || l.Zone != "us-east-1a" || l.Priority != 0 || l.Weight != 5 {
		t.Errorf("got locality %s %s/%s priority %d weight %d, want us us-east/us-east-1a priority 0 weight 5",
			l.Cluster, l.Region, l.Zone, l.Priority, l.Weight)
	}
	// 10.0.0.4 is terminating, and others are ready: it is left out (TestTerminatingEndpoints).
	want := "10.0.0.1:8080 10.0.0.10:8080 10.0.0.2:8080 10.0.0.3:8080 fd00::1:8080"
	if got := formatEndpoints(l.Endpoints); got != want {
		t.Errorf("got endpoints\n  %s\nwant\n  %s", got, want)
	}

	single, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("single", 80))
	if err != nil {
		t.Fatal(err)
	}
	if got := formatLocalities(single.Localities); got != "us:0:1" || formatEndpoints(single.Localities[0].Endpoints) != "10.0.2.1:8081" {
		t.Errorf("unnamed port: got %s %v, want one endpoint 10.0.2.1:8081", got, single.Localities)
	}
	metrics, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("web", 9090))
	if err != nil {
		t.Fatal(err)
	}
	// Slice b has no metrics port, so 10.0.0.3 is not ready there.
	want = "10.0.0.1:9091 10.0.0.10:9091 10.0.0.2:9091 10.0.0.3:9091(not ready) 10.0.0.9:9091"
	if got := formatEndpoints(metrics.Localities[0].Endpoints); got != want {
		t.Errorf("metrics port: got endpoints\n  %s\nwant\n  %s", got, want)
	}
}

// TestTerminatingEndpoints checks Kubernetes' semantics of terminating endpoints: one that
// still serves takes requests only when no endpoint of the backend, in any cluster, is
// ready; one that no longer serves never does.
func TestTerminatingEndpoints(t *testing.T) {
	endpoint := func(addr string, c discoveryv1.EndpointConditions) discoveryv1.Endpoint {
		e := testEndpoint(addr)
		e.Conditions = c
		return e
	}
	yes, no := testPtr(true), testPtr(false)
	ready := discoveryv1.EndpointConditions{Ready: yes}
	notReady := discoveryv1.EndpointConditions{Ready: no, Serving: no}
	serving := discoveryv1.EndpointConditions{Ready: no, Serving: yes, Terminating: yes}
	gone := discoveryv1.EndpointConditions{Ready: no, Serving: no, Terminating: yes}
	// Before Kubernetes had the serving condition, readiness stood for it.
	servingUnknown := discoveryv1.EndpointConditions{Ready: yes, Terminating: yes}
	goneUnknown := discoveryv1.EndpointConditions{Ready: no, Terminating: yes}

	exported := map[string]string{ExportLabel: "true"}
	cluster := func(name, region string, eps ...discoveryv1.Endpoint) *ClusterResources {
		return testCluster(Cluster{Name: name, Region: region, Network: "n"},
			testService("default", "api", exported, testPort("http", 80, "")),
			testSlice("default", "api", "api-1", "http", 8080, eps...))
	}
	tests := []struct {
		name     string
		clusters []*ClusterResources
		// want is "cluster:priority:weight endpoints" per locality.
		want string
	}{
		{
			name: "ready endpoints left: terminating ones get nothing",
			clusters: []*ClusterResources{cluster("us", "r1",
				endpoint("10.0.0.1", ready), endpoint("10.0.0.2", serving), endpoint("10.0.0.3", gone),
				endpoint("10.0.0.4", notReady), endpoint("10.0.0.5", servingUnknown), endpoint("10.0.0.6", goneUnknown))},
			want: "us:0:2 10.0.0.1:8080 10.0.0.4:8080(not ready)",
		},
		{
			name: "nothing ready: terminating ones that serve are the last resort",
			clusters: []*ClusterResources{cluster("us", "r1",
				endpoint("10.0.0.2", serving), endpoint("10.0.0.3", gone), endpoint("10.0.0.4", notReady),
				endpoint("10.0.0.5", servingUnknown), endpoint("10.0.0.6", goneUnknown))},
			want: "us:0:3 10.0.0.2:8080 10.0.0.4:8080(not ready) 10.0.0.5:8080",
		},
		{
			name: "another cluster ready: failover, not the terminating endpoints",
			clusters: []*ClusterResources{
				cluster("us", "r1", endpoint("10.0.0.2", serving), endpoint("10.0.0.3", gone)),
				cluster("eu", "r1", endpoint("10.1.0.1", ready)),
			},
			want: "eu:0:1 10.1.0.1:8080",
		},
		{
			name: "no cluster ready: every cluster's terminating endpoints that serve",
			clusters: []*ClusterResources{
				cluster("us", "r1", endpoint("10.0.0.2", serving), endpoint("10.0.0.3", gone)),
				cluster("eu", "r2", endpoint("10.1.0.1", serving), endpoint("10.1.0.2", notReady)),
			},
			want: "us:0:1 10.0.0.2:8080 eu:1:2 10.1.0.1:8080 10.1.0.2:8080(not ready)",
		},
		{
			name: "a slice being replaced says ready: ready",
			clusters: []*ClusterResources{testCluster(Cluster{Name: "us", Region: "r1", Network: "n"},
				testService("default", "api", exported, testPort("http", 80, "")),
				testSlice("default", "api", "api-1", "http", 8080, endpoint("10.0.0.1", serving), endpoint("10.0.0.2", ready)),
				testSlice("default", "api", "api-2", "http", 8080, endpoint("10.0.0.1", ready), endpoint("10.0.0.2", gone)))},
			want: "us:0:2 10.0.0.1:8080 10.0.0.2:8080",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslation(tc.clusters...)
			b, err := resolveTestRef(tr, "us", "HTTPRoute", testImportRef("api", 80))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range b.Localities {
				got = append(got, formatLocalities([]*ir.Locality{l})+" "+formatEndpoints(l.Endpoints))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

// formatEndpoints renders endpoints as "address:port" with "(not ready)" marks.
func formatEndpoints(eps []*ir.Endpoint) string {
	var out []string
	for _, e := range eps {
		s := fmt.Sprintf("%s:%d", e.Address, e.Port)
		if !e.Ready {
			s += "(not ready)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// formatLocalities renders localities as "cluster:priority:weight".
func formatLocalities(ls []*ir.Locality) string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%s:%d:%d", l.Cluster, l.Priority, l.Weight))
	}
	return strings.Join(out, " ")
}

// multiClusterInput has Service default/api in four clusters: use1 and use2 in region us-east,
// euw in eu-west, all on network corp, and onprem in us-east on network dc. use1 has one
// endpoint, use2 two, euw one, onprem one. Every cluster but use1 exports it; use1 does when
// use1Exports is set.
func multiClusterInput(use1Exports bool) []*ClusterResources {
	exported := map[string]string{ExportLabel: "true"}
	cluster := func(info Cluster, export bool, addrs ...string) *ClusterResources {
		var labels map[string]string
		if export {
			labels = exported
		}
		var eps []discoveryv1.Endpoint
		for _, a := range addrs {
			eps = append(eps, testEndpoint(a))
		}
		return testCluster(info,
			testService("default", "api", labels, testPort("http", 80, "")),
			testSlice("default", "api", "api-1", "http", 8080, eps...))
	}
	return []*ClusterResources{
		cluster(Cluster{Name: "euw", Region: "eu-west", Zone: "eu-west-1a", Network: "corp"}, true, "10.3.0.1"),
		cluster(Cluster{Name: "onprem", Region: "us-east", Network: "dc"}, true, "192.168.0.1"),
		cluster(Cluster{Name: "use1", Region: "us-east", Zone: "us-east-1a", Network: "corp"}, use1Exports, "10.1.0.1"),
		cluster(Cluster{Name: "use2", Region: "us-east", Zone: "us-east-1b", Network: "corp"}, true, "10.2.0.1", "10.2.0.2"),
	}
}

func TestServiceImportLocalities(t *testing.T) {
	tests := []struct {
		name        string
		use1Exports bool
		from        string
		// want is "cluster:priority:weight" per locality.
		want            string
		wantUnreachable string
	}{
		{name: "own cluster, same region, other region", use1Exports: true, from: "use1", want: "use1:0:1 use2:1:2 euw:2:1", wantUnreachable: "onprem"},
		{name: "own cluster not exporting: same region moves up to 0", from: "use1", want: "use2:0:2 euw:1:1", wantUnreachable: "onprem"},
		{name: "no cluster of the same region: the others move up to 1", use1Exports: true, from: "euw", want: "euw:0:1 use1:1:1 use2:1:2", wantUnreachable: "onprem"},
		{name: "another network sees only itself", use1Exports: true, from: "onprem", want: "onprem:0:1", wantUnreachable: "euw use1 use2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTranslation(multiClusterInput(tc.use1Exports)...)
			b, err := resolveTestRef(tr, tc.from, "HTTPRoute", testImportRef("api", 80))
			if err != nil {
				t.Fatal(err)
			}
			if got := formatLocalities(b.Localities); got != tc.want {
				t.Errorf("got localities %s, want %s", got, tc.want)
			}
			if got := strings.Join(tr.idx.unreachableClusters(b.Target), " "); got != tc.wantUnreachable {
				t.Errorf("got unreachable clusters %q, want %q", got, tc.wantUnreachable)
			}
		})
	}

	// A mirror of a cluster on another network does not resolve: its endpoints are out of reach
	// (TestUnreachableBackends has more).
	tr := newTestTranslation(multiClusterInput(true)...)
	if b, err := resolveTestRef(tr, "use1", "HTTPRoute", testRef("api-onprem", 80)); err == nil || err.Reason != string(gwapiv1.RouteReasonBackendNotFound) {
		t.Errorf("mirror of onprem: got backend %v error %v, want BackendNotFound", b, err)
	}
	l := func() *ir.Locality {
		b, _ := resolveTestRef(tr, "use1", "HTTPRoute", testRef("api-use2", 80))
		return b.Localities[0]
	}()
	if l.Cluster != "use2" || l.Region != "us-east" || l.Zone != "us-east-1b" || l.Priority != 0 {
		t.Errorf("mirror of use2: got locality %+v, want use2 us-east/us-east-1b at priority 0 (compacted from same region)", l)
	}
}

// TestUnreachableBackends checks that a backend none of whose endpoints the route's cluster can
// reach (they are on another network, and the east-west tunnel does not exist yet) fails to
// resolve with a message saying so, instead of resolving to a backend without endpoints, and
// that a ServiceImport some reachable cluster serves still resolves.
func TestUnreachableBackends(t *testing.T) {
	exported := map[string]string{ExportLabel: "true"}
	service := func(name string, port int32) *corev1.Service {
		return testService("default", name, exported, testPort("http", port, ""))
	}
	slice := func(svc, addr string) *discoveryv1.EndpointSlice {
		return testSlice("default", svc, svc+"-1", "http", 8080, testEndpoint(addr))
	}
	// Routes are in us. eu and ap are on other networks, lab on none; west shares us's network.
	// Input.Clusters is sorted by name.
	tr := newTestTranslation(
		testCluster(Cluster{Name: "ap", Network: "net-c"}, service("api", 80), slice("api", "10.3.0.1")),
		testCluster(Cluster{Name: "eu", Network: "net-b"},
			service("api", 80), slice("api", "10.2.0.1"),
			service("mixed", 80), slice("mixed", "10.2.0.2"),
			service("other-port", 80), slice("other-port", "10.2.0.3")),
		testCluster(Cluster{Name: "lab"}, service("lab", 80), slice("lab", "10.4.0.1")),
		testCluster(Cluster{Name: "us", Network: "net-a"}),
		testCluster(Cluster{Name: "west", Network: "net-a"},
			service("mixed", 80), slice("mixed", "10.1.0.1"),
			service("other-port", 9090), slice("other-port", "10.1.0.2")),
	)
	tests := []struct {
		name string
		ref  gwapiv1.BackendObjectReference
		// wantErr is the BackendNotFound message; wantLocalities the backend's otherwise.
		wantErr        string
		wantLocalities string
	}{
		{
			name:    "mirror of a cluster on another network",
			ref:     testRef("api-eu", 80),
			wantErr: "Service default/api-eu: cluster eu is on network net-b, not reachable from cluster us until the east-west tunnel exists",
		},
		{
			name:    "mirror of a cluster on the unnamed network",
			ref:     testRef("lab-lab", 80),
			wantErr: "Service default/lab-lab: cluster lab is on the unnamed network, not reachable from cluster us until the east-west tunnel exists",
		},
		{
			name:           "mirror of a cluster on the same network",
			ref:            testRef("mixed-west", 80),
			wantLocalities: "west:0:1",
		},
		{
			name:    "ServiceImport exported only on other networks",
			ref:     testImportRef("api", 80),
			wantErr: "ServiceImport default/api is exported with port 80 only by clusters on other networks (ap on network net-c, eu on network net-b), not reachable from cluster us until the east-west tunnel exists",
		},
		{
			name:           "ServiceImport a reachable cluster serves",
			ref:            testImportRef("mixed", 80),
			wantLocalities: "west:0:1",
		},
		{
			// west exports other-port, but not with port 80: nothing reachable serves it.
			name:    "ServiceImport whose reachable exporter lacks the port",
			ref:     testImportRef("other-port", 80),
			wantErr: "ServiceImport default/other-port is exported with port 80 only by clusters on other networks (eu on network net-b), not reachable from cluster us until the east-west tunnel exists",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := resolveTestRef(tr, "us", "HTTPRoute", tc.ref)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("got backend %s with localities %q, want BackendNotFound", b.Name, formatLocalities(b.Localities))
				}
				if err.Type != string(gwapiv1.RouteConditionResolvedRefs) || err.Reason != string(gwapiv1.RouteReasonBackendNotFound) || err.Msg != tc.wantErr {
					t.Errorf("got %s/%s %q\nwant ResolvedRefs/BackendNotFound %q", err.Type, err.Reason, err.Msg, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := formatLocalities(b.Localities); got != tc.wantLocalities {
				t.Errorf("got localities %q, want %q", got, tc.wantLocalities)
			}
		})
	}
	// The proxy's own network decides: from eu, eu's own endpoints are reachable.
	b, err := resolveTestRef(tr, "eu", "HTTPRoute", testImportRef("api", 80))
	if err != nil {
		t.Fatal(err)
	}
	if got := formatLocalities(b.Localities); got != "eu:0:1" {
		t.Errorf("from eu: got localities %q, want eu:0:1", got)
	}
	if got := strings.Join(tr.idx.unreachableClusters(b.Target), " "); got != "ap" {
		t.Errorf("from eu: got unreachable clusters %q, want ap", got)
	}
}

func TestRefreshEndpoints(t *testing.T) {
	old := multiClusterInput(true)
	tr := newTestTranslation(old...)
	imported, err := resolveTestRef(tr, "use1", "HTTPRoute", testImportRef("api", 80))
	if err != nil {
		t.Fatal(err)
	}
	local, err := resolveTestRef(tr, "use1", "GRPCRoute", testRef("api", 80))
	if err != nil {
		t.Fatal(err)
	}
	listeners := []*ir.Listener{{Name: "0.0.0.0:80", Address: "0.0.0.0", Port: 80, Protocol: ir.ProtocolHTTP}}
	proxies := []*ir.Proxy{
		{Node: "use1/infra/both", Cluster: "use1", Listeners: listeners, Backends: []*ir.Backend{imported, local}},
		{Node: "use1/infra/import", Cluster: "use1", Listeners: listeners, Backends: []*ir.Backend{imported}},
		{Node: "use1/infra/local", Cluster: "use1", Listeners: listeners, Backends: []*ir.Backend{local}},
	}
	before, jerr := json.Marshal(proxies)
	if jerr != nil {
		t.Fatal(jerr)
	}

	// use2 scales up by one endpoint; nothing else changes.
	in := &Input{Clusters: append([]*ClusterResources(nil), old...)}
	use2 := *old[3]
	use2.EndpointSlices = []*discoveryv1.EndpointSlice{
		testSlice("default", "api", "api-1", "http", 8080, testEndpoint("10.2.0.1"), testEndpoint("10.2.0.2"), testEndpoint("10.2.0.3")),
	}
	in.Clusters[3] = &use2
	got := RefreshEndpoints(in, proxies)

	if after, _ := json.Marshal(proxies); string(after) != string(before) {
		t.Fatal("RefreshEndpoints mutated the old proxies")
	}
	if len(got) != 3 {
		t.Fatalf("got %d proxies, want 3", len(got))
	}
	both, onlyImport, onlyLocal := got[0], got[1], got[2]
	if both == proxies[0] || onlyImport == proxies[1] {
		t.Error("proxies whose backends changed were returned as is")
	}
	if onlyLocal != proxies[2] {
		t.Error("a proxy whose backends did not change was copied")
	}
	if &both.Listeners[0] != &listeners[0] || &onlyImport.Listeners[0] != &listeners[0] {
		t.Error("listeners were copied; they must be shared")
	}
	refreshed := both.Backends[0]
	if refreshed == imported || onlyImport.Backends[0] != refreshed {
		t.Error("the ServiceImport backend was not refreshed once and shared by both proxies")
	}
	if refreshed.Name != imported.Name || refreshed.Target != imported.Target || refreshed.AppProtocol != imported.AppProtocol {
		t.Errorf("refreshed backend %+v changed more than localities of %+v", refreshed, imported)
	}
	if got, want := formatLocalities(refreshed.Localities), "use1:0:1 use2:1:3 euw:2:1"; got != want {
		t.Errorf("got localities %s, want %s", got, want)
	}
	if both.Backends[1] != local {
		t.Error("the unchanged local backend was copied")
	}
	if both.Node != proxies[0].Node || both.Cluster != proxies[0].Cluster {
		t.Errorf("proxy identity changed: %s %s", both.Node, both.Cluster)
	}
}

// TestResolveBackendRefMirrorPriority checks that a mirror reference gets priorities from the
// route's cluster, not from the cluster it mirrors.
func TestResolveBackendRefMirrorPriority(t *testing.T) {
	tr := newTestTranslation(multiClusterInput(true)...)
	direct, err := resolveTestRef(tr, "euw", "HTTPRoute", testRef("api", 80))
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := resolveTestRef(tr, "use1", "HTTPRoute", testRef("api-euw", 80))
	if err != nil {
		t.Fatal(err)
	}
	if direct.Name != mirror.Name || direct.Target.From != "euw" || mirror.Target.From != "use1" {
		t.Errorf("direct %s from %s, mirror %s from %s; want one name, two origins", direct.Name, direct.Target.From, mirror.Name, mirror.Target.From)
	}
	if got := formatLocalities(mirror.Localities); got != "euw:0:1" {
		t.Errorf("mirror localities %s, want euw:0:1", got)
	}
}
