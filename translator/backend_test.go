package translator

import (
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/strait-gw/strait/e2e/testcert"
	"github.com/strait-gw/strait/translator/ir"
)

// Test fixtures shared by backend_test.go and endpoints_test.go.

func testPtr[T any](v T) *T { return &v }

// testCluster builds one member cluster's resources from objects of the kinds backends use.
func testCluster(info Cluster, objs ...any) *ClusterResources {
	res := &ClusterResources{Cluster: info}
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Service:
			res.Services = append(res.Services, o)
		case *discoveryv1.EndpointSlice:
			res.EndpointSlices = append(res.EndpointSlices, o)
		case *mcsv1alpha1.ServiceExport:
			res.ServiceExports = append(res.ServiceExports, o)
		case *gwapiv1.ReferenceGrant:
			res.ReferenceGrants = append(res.ReferenceGrants, o)
		case *gwapiv1.BackendTLSPolicy:
			res.BackendTLSPolicies = append(res.BackendTLSPolicies, o)
		case *corev1.ConfigMap:
			res.ConfigMaps = append(res.ConfigMaps, o)
		case *corev1.Secret:
			res.Secrets = append(res.Secrets, o)
		default:
			panic(fmt.Sprintf("testCluster: unexpected %T", o))
		}
	}
	return res
}

func testService(ns, name string, labels map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}
}

// testPort is a TCP Service port; appProtocol "" leaves it unset.
func testPort(name string, port int32, appProtocol string) corev1.ServicePort {
	sp := corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
	if appProtocol != "" {
		sp.AppProtocol = &appProtocol
	}
	return sp
}

func testExport(ns, name string) *mcsv1alpha1.ServiceExport {
	return &mcsv1alpha1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// testSlice is an IPv4 EndpointSlice of Service ns/svc with one port.
func testSlice(ns, svc, name, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      name,
			Labels:    map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
		Endpoints:   eps,
	}
}

// testEndpoint is an endpoint whose readiness is unknown, which counts as ready.
func testEndpoint(addr string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}}
}

func testRef(name string, port int32) gwapiv1.BackendObjectReference {
	return gwapiv1.BackendObjectReference{Name: gwapiv1.ObjectName(name), Port: testPtr(port)}
}

func testImportRef(name string, port int32) gwapiv1.BackendObjectReference {
	ref := testRef(name, port)
	ref.Group = testPtr(gwapiv1.Group(mcsv1alpha1.GroupName))
	ref.Kind = testPtr(gwapiv1.Kind("ServiceImport"))
	return ref
}

func newTestTranslation(clusters ...*ClusterResources) *translation {
	return &translation{
		idx:      newIndex(&Input{Clusters: clusters}),
		statuses: map[statusKey]*Status{},
		backends: map[backendKey]*ir.Backend{},
	}
}

var testGateway = types.NamespacedName{Namespace: "infra", Name: "gw"}

// resolveTestRef resolves ref for a route of kind routeKind in namespace "default" of cluster,
// attached to testGateway.
func resolveTestRef(tr *translation, cluster, routeKind string, ref gwapiv1.BackendObjectReference) (*ir.Backend, *condError) {
	return tr.resolveBackendRef(tr.idx.clusters[cluster], testGateway, routeKind, "default", ref)
}

func TestResolveBackendRef(t *testing.T) {
	us := Cluster{Name: "us", Region: "us-east"}
	udp := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	tr := newTestTranslation(testCluster(us,
		testService("default", "web", nil,
			testPort("http", 80, ""),
			testPort("ws", 81, appProtocolWS),
			testPort("grpc", 82, appProtocolH2C),
			testPort("wss", 443, appProtocolWSS),
			testPort("other", 83, "example.com/custom"),
			testPort("http-iana", 84, "http"),
			testPort("http-upper", 85, "HTTP"),
			testPort("https", 8443, "https"),
			testPort("https-prefixed", 8444, "kubernetes.io/https"),
			udp),
		testService("default", "single", nil, testPort("", 80, "")),
		testService("other", "web", nil, testPort("http", 80, "")),
		testService("granted", "web", nil, testPort("http", 80, "")),
		testService("grpc-only", "web", nil, testPort("http", 80, "")),
		&gwapiv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Namespace: "granted", Name: "from-default"},
			Spec: gwapiv1.ReferenceGrantSpec{
				From: []gwapiv1.ReferenceGrantFrom{{Group: gwapiv1.GroupName, Kind: "HTTPRoute", Namespace: "default"}},
				To:   []gwapiv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
			},
		},
		&gwapiv1.ReferenceGrant{
			ObjectMeta: metav1.ObjectMeta{Namespace: "grpc-only", Name: "from-default"},
			Spec: gwapiv1.ReferenceGrantSpec{
				From: []gwapiv1.ReferenceGrantFrom{{Group: gwapiv1.GroupName, Kind: "GRPCRoute", Namespace: "default"}},
				To:   []gwapiv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
			},
		},
	))
	inNamespace := func(ns string, ref gwapiv1.BackendObjectReference) gwapiv1.BackendObjectReference {
		ref.Namespace = testPtr(gwapiv1.Namespace(ns))
		return ref
	}
	withKind := func(group, kind string, ref gwapiv1.BackendObjectReference) gwapiv1.BackendObjectReference {
		ref.Group, ref.Kind = testPtr(gwapiv1.Group(group)), testPtr(gwapiv1.Kind(kind))
		return ref
	}
	noPort := testRef("web", 0)
	noPort.Port = nil

	tests := []struct {
		name      string
		routeKind string
		ref       gwapiv1.BackendObjectReference
		// wantName and wantProto describe the backend; wantReason the error instead.
		wantName   string
		wantProto  ir.AppProtocol
		wantReason gwapiv1.RouteConditionReason
	}{
		{name: "named port", routeKind: "HTTPRoute", ref: testRef("web", 80), wantName: "us/default/web/80", wantProto: ir.AppHTTP1},
		{name: "unnamed port", routeKind: "HTTPRoute", ref: testRef("single", 80), wantName: "us/default/single/80", wantProto: ir.AppHTTP1},
		{name: "explicit defaults", routeKind: "HTTPRoute", ref: withKind("", "Service", testRef("web", 80)), wantName: "us/default/web/80", wantProto: ir.AppHTTP1},
		{name: "appProtocol ws", routeKind: "HTTPRoute", ref: testRef("web", 81), wantName: "us/default/web/81", wantProto: ir.AppWebSocket},
		{name: "appProtocol h2c", routeKind: "HTTPRoute", ref: testRef("web", 82), wantName: "us/default/web/82", wantProto: ir.AppH2C},
		{name: "appProtocol http", routeKind: "HTTPRoute", ref: testRef("web", 84), wantName: "us/default/web/84", wantProto: ir.AppHTTP1},
		{name: "appProtocol HTTP in upper case", routeKind: "HTTPRoute", ref: testRef("web", 85), wantName: "us/default/web/85", wantProto: ir.AppHTTP1},
		{name: "unknown appProtocol", routeKind: "HTTPRoute", ref: testRef("web", 83), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "kubernetes.io/https is not a standard protocol", routeKind: "HTTPRoute", ref: testRef("web", 8444), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "https without BackendTLSPolicy", routeKind: "HTTPRoute", ref: testRef("web", 8443), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "GRPCRoute to unknown appProtocol", routeKind: "GRPCRoute", ref: testRef("web", 83), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "GRPCRoute to https without BackendTLSPolicy", routeKind: "GRPCRoute", ref: testRef("web", 8443), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "GRPCRoute to http port", routeKind: "GRPCRoute", ref: testRef("web", 84), wantName: "us/default/web/84/h2c", wantProto: ir.AppH2C},
		{name: "TCPRoute to unknown appProtocol", routeKind: "TCPRoute", ref: testRef("web", 83), wantName: "us/default/web/83/tcp", wantProto: ir.AppTCP},
		{name: "TLSRoute to https port", routeKind: "TLSRoute", ref: testRef("web", 8443), wantName: "us/default/web/8443/tcp", wantProto: ir.AppTCP},
		{name: "wss without BackendTLSPolicy", routeKind: "HTTPRoute", ref: testRef("web", 443), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "GRPCRoute without appProtocol speaks h2c", routeKind: "GRPCRoute", ref: testRef("web", 80), wantName: "us/default/web/80/h2c", wantProto: ir.AppH2C},
		{name: "GRPCRoute to h2c port", routeKind: "GRPCRoute", ref: testRef("web", 82), wantName: "us/default/web/82", wantProto: ir.AppH2C},
		{name: "GRPCRoute to WebSocket port", routeKind: "GRPCRoute", ref: testRef("web", 81), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "TCPRoute", routeKind: "TCPRoute", ref: testRef("web", 80), wantName: "us/default/web/80/tcp", wantProto: ir.AppTCP},
		{name: "TLSRoute to wss port", routeKind: "TLSRoute", ref: testRef("web", 443), wantName: "us/default/web/443/tcp", wantProto: ir.AppTCP},
		{name: "UDP port", routeKind: "HTTPRoute", ref: testRef("web", 53), wantReason: gwapiv1.RouteReasonUnsupportedProtocol},
		{name: "missing Service", routeKind: "HTTPRoute", ref: testRef("nope", 80), wantReason: gwapiv1.RouteReasonBackendNotFound},
		{name: "missing port", routeKind: "HTTPRoute", ref: testRef("web", 8080), wantReason: gwapiv1.RouteReasonBackendNotFound},
		{name: "no port", routeKind: "HTTPRoute", ref: noPort, wantReason: gwapiv1.RouteReasonBackendNotFound},
		{name: "unsupported kind", routeKind: "HTTPRoute", ref: withKind("example.com", "Bucket", testRef("web", 80)), wantReason: gwapiv1.RouteReasonInvalidKind},
		{name: "ServiceImport in core group", routeKind: "HTTPRoute", ref: withKind("", "ServiceImport", testRef("web", 80)), wantReason: gwapiv1.RouteReasonInvalidKind},
		{name: "cross-namespace without grant", routeKind: "HTTPRoute", ref: inNamespace("other", testRef("web", 80)), wantReason: gwapiv1.RouteReasonRefNotPermitted},
		{name: "cross-namespace without grant to missing Service", routeKind: "HTTPRoute", ref: inNamespace("other", testRef("nope", 80)), wantReason: gwapiv1.RouteReasonRefNotPermitted},
		{name: "cross-namespace with grant", routeKind: "HTTPRoute", ref: inNamespace("granted", testRef("web", 80)), wantName: "us/granted/web/80", wantProto: ir.AppHTTP1},
		{name: "grant for another route kind", routeKind: "HTTPRoute", ref: inNamespace("grpc-only", testRef("web", 80)), wantReason: gwapiv1.RouteReasonRefNotPermitted},
		{name: "grant for this route kind", routeKind: "GRPCRoute", ref: inNamespace("grpc-only", testRef("web", 80)), wantName: "us/grpc-only/web/80/h2c", wantProto: ir.AppH2C},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := resolveTestRef(tr, "us", tc.routeKind, tc.ref)
			if tc.wantReason != "" {
				if err == nil {
					t.Fatalf("got backend %s, want error %s", b.Name, tc.wantReason)
				}
				if err.Type != "ResolvedRefs" || err.Reason != string(tc.wantReason) {
					t.Fatalf("got %s %v, want ResolvedRefs %s", err.Type, err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if b.Name != tc.wantName || b.AppProtocol != tc.wantProto || b.TLS != nil {
				t.Errorf("got backend %s %s tls=%v, want %s %s without TLS", b.Name, b.AppProtocol, b.TLS, tc.wantName, tc.wantProto)
			}
			ns := "default"
			if tc.ref.Namespace != nil {
				ns = string(*tc.ref.Namespace)
			}
			want := ir.Target{Kind: ir.TargetService, Cluster: "us", Namespace: ns, Name: string(tc.ref.Name), Port: uint32(*tc.ref.Port), From: "us"}
			if b.Target != want {
				t.Errorf("got target %+v, want %+v", b.Target, want)
			}
		})
	}
}

func TestResolveBackendRefShares(t *testing.T) {
	svc := testService("default", "web", map[string]string{ExportLabel: "true"}, testPort("http", 80, ""))
	tr := newTestTranslation(
		testCluster(Cluster{Name: "eu"}, svc, testService("default", "web-us", map[string]string{MirrorOfClusterLabel: "us"}, testPort("http", 80, ""))),
		testCluster(Cluster{Name: "us"}, svc),
	)
	first, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("web", 80))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := resolveTestRef(tr, "us", "HTTPRoute", testRef("web", 80))
	if again != first {
		t.Error("a second reference to the same Service port resolved a new backend")
	}
	grpc, _ := resolveTestRef(tr, "us", "GRPCRoute", testRef("web", 80))
	if grpc == first || grpc.Name == first.Name {
		t.Errorf("GRPCRoute shares backend %s with HTTPRoute; it speaks another protocol", grpc.Name)
	}
	// The mirror in eu names the same backend as the direct reference in us, for a proxy
	// elsewhere: equal names, different From, different objects.
	mirror, err := resolveTestRef(tr, "eu", "HTTPRoute", testRef("web-us", 80))
	if err != nil {
		t.Fatal(err)
	}
	if mirror == first || mirror.Name != first.Name || mirror.Target.From != "eu" {
		t.Errorf("mirror backend %s from %s (same object: %v), want %s from eu", mirror.Name, mirror.Target.From, mirror == first, first.Name)
	}
	if len(tr.backends) != 3 {
		t.Errorf("%d backends cached, want 3", len(tr.backends))
	}
}

func TestResolveMirrorService(t *testing.T) {
	exported := map[string]string{ExportLabel: "true"}
	port := testPort("http", 80, "")
	tests := []struct {
		name string
		// westExports says whether cluster west-eu exports default/podinfo.
		westExports bool
		ref         string
		want        ir.Target
		wantErr     bool
	}{
		{name: "simple", ref: "api-eu", want: ir.Target{Cluster: "eu", Name: "api"}},
		{name: "Service name with dashes", ref: "my-api-v2-eu", want: ir.Target{Cluster: "eu", Name: "my-api-v2"}},
		{name: "cluster name with a dash wins as the longest suffix", westExports: true, ref: "podinfo-west-eu", want: ir.Target{Cluster: "west-eu", Name: "podinfo"}},
		{name: "shorter suffix when the longer cluster does not export", ref: "podinfo-west-eu", want: ir.Target{Cluster: "eu", Name: "podinfo-west"}},
		{name: "real Service labeled as a mirror", ref: "db-eu", want: ir.Target{Cluster: "eu", Name: "db"}},
		{name: "real Service is not a mirror", ref: "cache-eu", want: ir.Target{Cluster: "us", Name: "cache-eu"}},
		{name: "mirror label restricts the cluster", ref: "podinfo-west-eu-2", wantErr: true},
		{name: "not exported", ref: "private-eu", wantErr: true},
		{name: "own cluster", ref: "local-us", wantErr: true},
		{name: "unknown cluster", ref: "api-mars", wantErr: true},
		{name: "no dash", ref: "api", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			west := testService("default", "podinfo", nil, port)
			if tc.westExports {
				west.Labels = exported
			}
			tr := newTestTranslation(
				testCluster(Cluster{Name: "eu"},
					testService("default", "api", exported, port),
					testService("default", "my-api-v2", exported, port),
					testService("default", "podinfo-west", exported, port),
					testService("default", "db", nil, port), testExport("default", "db"),
					testService("default", "cache", exported, port),
					testService("default", "private", nil, port)),
				// Cluster "eu-2" exports podinfo-west too, but the mirror Service
				// podinfo-west-eu-2 in us says it mirrors eu, which does not export it.
				testCluster(Cluster{Name: "eu-2"}, testService("default", "podinfo-west", exported, port)),
				testCluster(Cluster{Name: "us"},
					testService("default", "local", exported, port),
					testService("default", "db-eu", map[string]string{MirrorOfClusterLabel: "eu"}, port),
					testService("default", "cache-eu", nil, port),
					testService("default", "podinfo-west-eu-2", map[string]string{MirrorOfClusterLabel: "eu"}, port)),
				testCluster(Cluster{Name: "west-eu"}, west),
			)
			b, err := resolveTestRef(tr, "us", "HTTPRoute", testRef(tc.ref, 80))
			if tc.wantErr {
				if err == nil || err.Reason != string(gwapiv1.RouteReasonBackendNotFound) {
					t.Fatalf("got %v (backend %v), want BackendNotFound", err, b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := ir.Target{Kind: ir.TargetService, Cluster: tc.want.Cluster, Namespace: "default", Name: tc.want.Name, Port: 80, From: "us"}
			if b.Target != want {
				t.Errorf("got target %+v, want %+v", b.Target, want)
			}
			if wantName := fmt.Sprintf("%s/default/%s/80", want.Cluster, want.Name); b.Name != wantName {
				t.Errorf("got name %s, want %s", b.Name, wantName)
			}
		})
	}
}

func TestResolveServiceImport(t *testing.T) {
	exported := map[string]string{ExportLabel: "true"}
	tr := newTestTranslation(
		testCluster(Cluster{Name: "a"}, testService("default", "api", exported, testPort("web", 8080, ""))),
		testCluster(Cluster{Name: "b"}, testService("default", "api", exported, testPort("http", 80, appProtocolH2C))),
		testCluster(Cluster{Name: "c"}, testService("default", "api", exported, testPort("other", 80, ""))),
		testCluster(Cluster{Name: "d"}, testService("default", "api", nil, testPort("http", 9090, ""))),
	)
	b, err := resolveTestRef(tr, "d", "HTTPRoute", testImportRef("api", 80))
	if err != nil {
		t.Fatal(err)
	}
	want := ir.Target{Kind: ir.TargetServiceImport, Namespace: "default", Name: "api", Port: 80, From: "d"}
	if b.Name != "import/default/api/80" || b.Target != want {
		t.Errorf("got %s %+v, want import/default/api/80 %+v", b.Name, b.Target, want)
	}
	// a lacks port 80; b is the first exporter that has it and says h2c.
	if b.AppProtocol != ir.AppH2C {
		t.Errorf("got protocol %s, want the first exporter's with the port: H2C", b.AppProtocol)
	}
	for _, tc := range []struct {
		ref  gwapiv1.BackendObjectReference
		want gwapiv1.RouteConditionReason
	}{
		{testImportRef("api", 8080), ""},                                 // a has it
		{testImportRef("api", 9090), gwapiv1.RouteReasonBackendNotFound}, // only d has it, and d does not export
		{testImportRef("other", 80), gwapiv1.RouteReasonBackendNotFound}, // nobody exports it
	} {
		var got gwapiv1.RouteConditionReason
		if _, err := resolveTestRef(tr, "d", "HTTPRoute", tc.ref); err != nil {
			got = gwapiv1.RouteConditionReason(err.Reason)
		}
		if got != tc.want {
			t.Errorf("%s port %d: got reason %q, want %q", tc.ref.Name, *tc.ref.Port, got, tc.want)
		}
	}
}

// testPolicy is a BackendTLSPolicy for Service default/<service>, created at minute age of a
// fixed hour, validated with hostname api.example.com and the given CA settings.
func testPolicy(name, service, section string, minute int, validation gwapiv1.BackendTLSPolicyValidation) *gwapiv1.BackendTLSPolicy {
	target := gwapiv1.LocalPolicyTargetReferenceWithSectionName{
		LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: gwapiv1.ObjectName(service)},
	}
	if section != "" {
		target.SectionName = testPtr(gwapiv1.SectionName(section))
	}
	if validation.Hostname == "" {
		validation.Hostname = "api.example.com"
	}
	return &gwapiv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         "default",
			Name:              name,
			Generation:        3,
			CreationTimestamp: metav1.NewTime(time.Date(2025, 1, 1, 0, minute, 0, 0, time.UTC)),
		},
		Spec: gwapiv1.BackendTLSPolicySpec{
			TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{target},
			Validation: validation,
		},
	}
}

func caRefs(kind, name string) []gwapiv1.LocalObjectReference {
	return []gwapiv1.LocalObjectReference{{Group: "", Kind: gwapiv1.Kind(kind), Name: gwapiv1.ObjectName(name)}}
}

// policyConditions summarizes the status of BackendTLSPolicy default/name in cluster us as
// gateway name -> "Type=Status/Reason ...", in condition order.
func policyConditions(tr *translation, name string) map[string]string {
	s := tr.statuses[statusKey{"us", "BackendTLSPolicy", "default", name}]
	if s == nil {
		return nil
	}
	out := map[string]string{}
	for _, anc := range s.Status.(*gwapiv1.PolicyStatus).Ancestors {
		var conds []string
		for _, c := range anc.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
		}
		out[string(anc.AncestorRef.Name)] = strings.Join(conds, " ")
	}
	return out
}

func TestBackendTLSPolicy(t *testing.T) {
	ca := testcert.NewCA(t).PEM
	const ok = "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs"
	system := testPtr(gwapiv1.WellKnownCACertificatesSystem)
	tests := []struct {
		name     string
		policies []*gwapiv1.BackendTLSPolicy
		// wantTLS is the backend's TLS when it resolves; wantPolicies the policies' statuses.
		wantTLS      *ir.UpstreamTLS
		wantPolicies map[string]string
		wantErr      bool
	}{
		{
			name: "ConfigMap CA with subjectAltNames",
			policies: []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{
				CACertificateRefs: caRefs("ConfigMap", "ca"),
				SubjectAltNames: []gwapiv1.SubjectAltName{
					{Type: gwapiv1.HostnameSubjectAltNameType, Hostname: "api.internal"},
					{Type: gwapiv1.URISubjectAltNameType, URI: "spiffe://example.com/api"},
				},
			})},
			wantTLS:      &ir.UpstreamTLS{SNI: "api.example.com", CACertPEM: ca, SubjectAltNames: []string{"api.internal", "spiffe://example.com/api"}},
			wantPolicies: map[string]string{"p": ok},
		},
		{
			name:         "Secret CA for the port's section",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "https", 0, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("Secret", "ca")})},
			wantTLS:      &ir.UpstreamTLS{SNI: "api.example.com", CACertPEM: ca},
			wantPolicies: map[string]string{"p": ok},
		},
		{
			name:         "system CAs",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system})},
			wantTLS:      &ir.UpstreamTLS{SNI: "api.example.com", WellKnownCA: true},
			wantPolicies: map[string]string{"p": ok},
		},
		{
			name:     "policy for another port",
			policies: []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "metrics", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system})},
		},
		{
			name:     "policy for another Service",
			policies: []*gwapiv1.BackendTLSPolicy{testPolicy("p", "web", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system})},
		},
		{
			name:         "missing ConfigMap",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "nope")})},
			wantPolicies: map[string]string{"p": "Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidCACertificateRef"},
			wantErr:      true,
		},
		{
			name:         "ConfigMap without ca.crt",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "empty")})},
			wantPolicies: map[string]string{"p": "Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidCACertificateRef"},
			wantErr:      true,
		},
		{
			name:         "malformed PEM",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "garbage")})},
			wantPolicies: map[string]string{"p": "Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidCACertificateRef"},
			wantErr:      true,
		},
		{
			name:         "unsupported CA kind",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("Bundle", "ca")})},
			wantPolicies: map[string]string{"p": "Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidKind"},
			wantErr:      true,
		},
		{
			name: "one valid and one invalid CA",
			policies: []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{
				CACertificateRefs: append(caRefs("ConfigMap", "ca"), caRefs("ConfigMap", "nope")...),
			})},
			wantPolicies: map[string]string{"p": "Accepted=True/Accepted ResolvedRefs=False/InvalidCACertificateRef"},
			wantErr:      true,
		},
		{
			name:         "unknown well-known CA set",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: testPtr(gwapiv1.WellKnownCACertificatesType("example.com/cas"))})},
			wantPolicies: map[string]string{"p": "Accepted=False/Invalid ResolvedRefs=True/ResolvedRefs"},
			wantErr:      true,
		},
		{
			name: "both CA references and well-known CAs",
			policies: []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{
				CACertificateRefs: caRefs("ConfigMap", "ca"), WellKnownCACertificates: system,
			})},
			wantPolicies: map[string]string{"p": "Accepted=False/Invalid ResolvedRefs=True/ResolvedRefs"},
			wantErr:      true,
		},
		{
			name:         "no CA at all",
			policies:     []*gwapiv1.BackendTLSPolicy{testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{})},
			wantPolicies: map[string]string{"p": "Accepted=False/Invalid ResolvedRefs=True/ResolvedRefs"},
			wantErr:      true,
		},
		{
			name: "older policy wins",
			policies: []*gwapiv1.BackendTLSPolicy{
				testPolicy("new", "api", "", 5, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "ca")}),
				testPolicy("old", "api", "", 1, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system}),
			},
			wantTLS:      &ir.UpstreamTLS{SNI: "api.example.com", WellKnownCA: true},
			wantPolicies: map[string]string{"old": ok, "new": "Accepted=False/Conflicted"},
		},
		{
			name: "same age: first by name wins, even when invalid",
			policies: []*gwapiv1.BackendTLSPolicy{
				testPolicy("b", "api", "", 1, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system}),
				testPolicy("a", "api", "", 1, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "nope")}),
			},
			wantPolicies: map[string]string{
				"a": "Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidCACertificateRef",
				"b": "Accepted=False/Conflicted",
			},
			wantErr: true,
		},
		{
			name: "the port's policy applies before the Service's, which does not conflict",
			policies: []*gwapiv1.BackendTLSPolicy{
				testPolicy("service", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: system}),
				testPolicy("port", "api", "https", 9, gwapiv1.BackendTLSPolicyValidation{CACertificateRefs: caRefs("ConfigMap", "ca")}),
			},
			wantTLS:      &ir.UpstreamTLS{SNI: "api.example.com", CACertPEM: ca},
			wantPolicies: map[string]string{"port": ok},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := []any{
				testService("default", "api", nil, testPort("https", 443, ""), testPort("metrics", 9090, "")),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ca"}, Data: map[string]string{caCertKey: string(ca)}},
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "empty"}},
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "garbage"}, Data: map[string]string{caCertKey: "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ca"}, Data: map[string][]byte{caCertKey: ca}},
			}
			for _, p := range tc.policies {
				objs = append(objs, p)
			}
			tr := newTestTranslation(testCluster(Cluster{Name: "us"}, objs...))
			b, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("api", 443))
			if tc.wantErr {
				if err == nil || err.Type != "ResolvedRefs" || err.Reason != reasonInvalidBackendTLS {
					t.Errorf("got error %v, want ResolvedRefs %s", err, reasonInvalidBackendTLS)
				}
			} else if err != nil {
				t.Errorf("unexpected error: %v", err)
			} else if !equalTLS(b.TLS, tc.wantTLS) {
				t.Errorf("got TLS %+v, want %+v", b.TLS, tc.wantTLS)
			}
			got := map[string]string{}
			for _, p := range tc.policies {
				for gw, conds := range policyConditions(tr, p.Name) {
					if gw != testGateway.Name {
						t.Errorf("policy %s has ancestor %s, want %s", p.Name, gw, testGateway.Name)
					}
					got[p.Name] = conds
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantPolicies) {
				t.Errorf("got policy statuses %v, want %v", got, tc.wantPolicies)
			}
		})
	}
}

func equalTLS(a, b *ir.UpstreamTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.SNI == b.SNI && string(a.CACertPEM) == string(b.CACertPEM) && a.WellKnownCA == b.WellKnownCA &&
		strings.Join(a.SubjectAltNames, ",") == strings.Join(b.SubjectAltNames, ",")
}

func TestBackendTLSPolicyStatusPerGateway(t *testing.T) {
	policy := testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: testPtr(gwapiv1.WellKnownCACertificatesSystem)})
	tr := newTestTranslation(testCluster(Cluster{Name: "us"},
		testService("default", "api", nil, testPort("https", 443, appProtocolWSS)),
		policy))
	ci := tr.idx.clusters["us"]
	var backends []*ir.Backend
	// Resolved for the second Gateway first: ancestors are sorted whatever the route order.
	for _, gw := range []types.NamespacedName{{Namespace: "infra", Name: "b"}, {Namespace: "infra", Name: "a"}, {Namespace: "infra", Name: "b"}} {
		b, err := tr.resolveBackendRef(ci, gw, "HTTPRoute", "default", testRef("api", 443))
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, b)
	}
	if backends[0] != backends[1] || backends[1] != backends[2] {
		t.Error("Gateways of one cluster got different backends for one Service port")
	}
	// With a BackendTLSPolicy, wss is WebSocket over TLS.
	if b := backends[0]; b.AppProtocol != ir.AppWebSocket || b.TLS == nil || !b.TLS.WellKnownCA {
		t.Errorf("got %s TLS %+v, want WebSocket with system CAs", b.AppProtocol, b.TLS)
	}
	st := tr.statuses[statusKey{"us", "BackendTLSPolicy", "default", "p"}].Status.(*gwapiv1.PolicyStatus)
	if len(st.Ancestors) != 2 {
		t.Fatalf("got %d ancestors, want 2", len(st.Ancestors))
	}
	for i, want := range []string{"a", "b"} {
		anc := st.Ancestors[i]
		ref := anc.AncestorRef
		if string(ref.Name) != want || *ref.Namespace != "infra" || *ref.Kind != "Gateway" || *ref.Group != gwapiv1.GroupName {
			t.Errorf("ancestor %d is %+v, want Gateway infra/%s", i, ref, want)
		}
		if anc.ControllerName != ControllerName || len(anc.Conditions) != 2 || anc.Conditions[0].ObservedGeneration != policy.Generation {
			t.Errorf("ancestor %d: controller %s, conditions %+v", i, anc.ControllerName, anc.Conditions)
		}
	}
	// TCP forwarding never re-encrypts, so the policy does not apply and gains no ancestor.
	b, err := tr.resolveBackendRef(ci, types.NamespacedName{Namespace: "infra", Name: "c"}, "TLSRoute", "default", testRef("api", 443))
	if err != nil || b.TLS != nil {
		t.Errorf("TLSRoute backend: TLS %+v, error %v; want plaintext forwarding", b.TLS, err)
	}
	if len(st.Ancestors) != 2 {
		t.Errorf("TLSRoute added an ancestor: %+v", st.Ancestors)
	}
}

// TestAppProtocolHTTPS checks that a port declaring https is HTTP/1.1 over the TLS of its
// BackendTLSPolicy, whatever the case of the name, and cannot be reached without one: it is
// never spoken to in plaintext.
func TestAppProtocolHTTPS(t *testing.T) {
	system := gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: testPtr(gwapiv1.WellKnownCACertificatesSystem)}
	for _, appProtocol := range []string{"https", "HTTPS", "Https"} {
		t.Run(appProtocol, func(t *testing.T) {
			tr := newTestTranslation(testCluster(Cluster{Name: "us"},
				testService("default", "api", nil, testPort("https", 443, appProtocol)),
				testService("default", "bare", nil, testPort("https", 443, appProtocol)),
				testPolicy("p", "api", "https", 0, system)))
			b, err := resolveTestRef(tr, "us", "HTTPRoute", testRef("api", 443))
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != "us/default/api/443" || b.AppProtocol != ir.AppHTTP1 || b.TLS == nil || !b.TLS.WellKnownCA || b.TLS.SNI != "api.example.com" {
				t.Errorf("got %s %s TLS %+v, want us/default/api/443 HTTP1 over TLS with system CAs", b.Name, b.AppProtocol, b.TLS)
			}
			grpc, err := resolveTestRef(tr, "us", "GRPCRoute", testRef("api", 443))
			if err != nil {
				t.Fatal(err)
			}
			if grpc.Name != "us/default/api/443/h2c" || grpc.AppProtocol != ir.AppH2C || grpc.TLS == nil {
				t.Errorf("GRPCRoute: got %s %s TLS %+v, want HTTP/2 over TLS", grpc.Name, grpc.AppProtocol, grpc.TLS)
			}
			_, err = resolveTestRef(tr, "us", "HTTPRoute", testRef("bare", 443))
			if err == nil || err.Type != "ResolvedRefs" || err.Reason != string(gwapiv1.RouteReasonUnsupportedProtocol) {
				t.Fatalf("without a BackendTLSPolicy: got %v, want ResolvedRefs UnsupportedProtocol", err)
			}
			if want := "port 443 of Service default/bare speaks " + appProtocol + ", which needs a BackendTLSPolicy"; err.Msg != want {
				t.Errorf("got message %q, want %q", err.Msg, want)
			}
		})
	}
}

// TestBackendTLSPolicyFalseWins checks that a policy reaching one Gateway through two Services,
// accepted for one and conflicted for the other, says Conflicted whatever the route order.
func TestBackendTLSPolicyFalseWins(t *testing.T) {
	system := gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: testPtr(gwapiv1.WellKnownCACertificatesSystem)}
	both := testPolicy("both", "api", "", 5, system)
	both.Spec.TargetRefs = append(both.Spec.TargetRefs, gwapiv1.LocalPolicyTargetReferenceWithSectionName{
		LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: "web"},
	})
	for _, order := range [][]string{{"api", "web"}, {"web", "api"}} {
		tr := newTestTranslation(testCluster(Cluster{Name: "us"},
			testService("default", "api", nil, testPort("https", 443, "")),
			testService("default", "web", nil, testPort("https", 443, "")),
			both,
			testPolicy("older", "web", "", 1, system)))
		for _, svc := range order {
			if _, err := resolveTestRef(tr, "us", "HTTPRoute", testRef(svc, 443)); err != nil {
				t.Fatal(err)
			}
		}
		want := "Accepted=False/Conflicted ResolvedRefs=True/ResolvedRefs"
		if got := policyConditions(tr, "both")[testGateway.Name]; got != want {
			t.Errorf("order %v: got %s, want %s", order, got, want)
		}
	}
}

func TestBackendTLSPolicyAncestorLimit(t *testing.T) {
	tr := newTestTranslation(testCluster(Cluster{Name: "us"},
		testService("default", "api", nil, testPort("https", 443, "")),
		testPolicy("p", "api", "", 0, gwapiv1.BackendTLSPolicyValidation{WellKnownCACertificates: testPtr(gwapiv1.WellKnownCACertificatesSystem)})))
	for i := range maxPolicyAncestors + 2 {
		gw := types.NamespacedName{Namespace: "infra", Name: fmt.Sprintf("gw-%02d", i)}
		if _, err := tr.resolveBackendRef(tr.idx.clusters["us"], gw, "HTTPRoute", "default", testRef("api", 443)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(policyConditions(tr, "p")); n != maxPolicyAncestors {
		t.Errorf("got %d ancestors, want the maximum %d", n, maxPolicyAncestors)
	}
}

func TestCheckCertificatesPEM(t *testing.T) {
	ca := testcert.NewCA(t).PEM
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"one certificate", ca, true},
		{"bundle", append(append([]byte{}, ca...), testcert.NewCA(t).PEM...), true},
		{"empty", nil, false},
		{"not PEM", []byte("hello"), false},
		{"trailing garbage", append(append([]byte{}, ca...), "junk"...), false},
		{"private key", append(append([]byte{}, ca...), key...), false},
	} {
		if err := checkCertificatesPEM(tc.data); (err == nil) != tc.ok {
			t.Errorf("%s: got error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
