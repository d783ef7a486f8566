package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// usCluster is a cluster with one of each kind, and objects the Input must leave out.
func usCluster() *fakeCluster {
	svc := service("default", "podinfo")
	svc.Annotations = map[string]string{lastApplied: `{"big":"copy"}`, "keep": "me"}
	svc.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	policy := &gwapiv1.BackendTLSPolicy{ObjectMeta: meta("default", "podinfo-tls"), Spec: gwapiv1.BackendTLSPolicySpec{
		Validation: gwapiv1.BackendTLSPolicyValidation{
			CACertificateRefs: []gwapiv1.LocalObjectReference{{Kind: "ConfigMap", Name: "ca"}, {Kind: "Secret", Name: "ca-secret"}},
			Hostname:          "podinfo.default",
		}}}
	return newFakeCluster(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "1"}},
		gatewayClass(),
		gateway("default", "gw", "gw-cert"),
		httpRoute("default", "podinfo", "gw", "podinfo"),
		svc,
		endpointSlice("default", "podinfo", "10.0.0.1"),
		policy,
		secret("default", "gw-cert", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "notes": []byte("n")}),
		secret("default", "ca-secret", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": []byte("ca")}),
		secret("default", "unrelated", corev1.SecretTypeOpaque, map[string][]byte{"password": []byte("p")}),
		&corev1.ConfigMap{ObjectMeta: meta("default", "ca"), Data: map[string]string{"ca.crt": "ca", "other": "x"}, BinaryData: map[string][]byte{"b": nil}},
		&corev1.ConfigMap{ObjectMeta: meta("default", "kube-root-ca.crt"), Data: map[string]string{"ca.crt": "root"}},
		&mcsv1alpha1.ServiceExport{ObjectMeta: meta("default", "podinfo")},
		&mcsv1alpha1.ServiceImport{ObjectMeta: meta("default", "podinfo"), Spec: mcsv1alpha1.ServiceImportSpec{Type: mcsv1alpha1.ClusterSetIP}},
		trafficPolicy("default", "podinfo-traffic", "podinfo"),
	)
}

func TestInput(t *testing.T) {
	us, eu := usCluster(), newFakeCluster(service("default", "podinfo"), &mcsv1alpha1.ServiceExport{ObjectMeta: meta("default", "podinfo")})
	fakes := &fakeClusters{}
	fakes.add("https://us", us)
	fakes.add("https://eu", eu)
	opts := testOptions(t)
	opts.NewClients = fakes.newClients
	opts.Clusters = []ClusterSpec{
		{Cluster: translator.Cluster{Name: "us", Region: "us-east", Labels: map[string]string{"residency": "us"}}, Config: restConfig("https://us")},
		{Cluster: translator.Cluster{Name: "eu", Region: "eu-west", Network: "eu-net"}, Config: restConfig("https://eu")},
	}
	p := New(opts)
	in := waitInput(t, start(t, p), "both clusters", func(in *translator.Input) bool { return len(in.Clusters) == 2 })

	if got := []string{in.Clusters[0].Cluster.Name, in.Clusters[1].Cluster.Name}; !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("clusters %v, want sorted [eu us]", got)
	}
	if in.BindAddress != "0.0.0.0" {
		t.Errorf("bind address %q", in.BindAddress)
	}
	res := cluster(in, "us")
	if diff := cmp.Diff(translator.Cluster{Name: "us", Region: "us-east", Labels: map[string]string{"residency": "us"}}, res.Cluster); diff != "" {
		t.Errorf("cluster (-want +got):\n%s", diff)
	}
	got := map[string][]string{
		"namespaces":      names(res.Namespaces),
		"gatewayClasses":  names(res.GatewayClasses),
		"gateways":        names(res.Gateways),
		"httpRoutes":      names(res.HTTPRoutes),
		"services":        names(res.Services),
		"endpointSlices":  names(res.EndpointSlices),
		"policies":        names(res.BackendTLSPolicies),
		"secrets":         names(res.Secrets),
		"configMaps":      names(res.ConfigMaps),
		"exports":         names(res.ServiceExports),
		"imports":         names(res.ServiceImports),
		"trafficPolicies": names(res.BackendTrafficPolicies),
	}
	want := map[string][]string{
		"namespaces":     {"/default"},
		"gatewayClasses": {"/strait"},
		"gateways":       {"default/gw"},
		"httpRoutes":     {"default/podinfo"},
		"services":       {"default/podinfo"},
		"endpointSlices": {"default/podinfo-abcde"},
		"policies":       {"default/podinfo-tls"},
		// Only what a Gateway or a BackendTLSPolicy refers to.
		"secrets":         {"default/ca-secret", "default/gw-cert"},
		"configMaps":      {"default/ca"},
		"exports":         {"default/podinfo"},
		"imports":         {"default/podinfo"},
		"trafficPolicies": {"default/podinfo-traffic"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}

	// Trimmed before caching.
	svc := res.Services[0]
	if len(svc.ManagedFields) != 0 || svc.Annotations[lastApplied] != "" || svc.Annotations["keep"] != "me" {
		t.Errorf("service metadata not trimmed as expected: managedFields %v, annotations %v", svc.ManagedFields, svc.Annotations)
	}
	if diff := cmp.Diff(map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}, res.Secrets[1].Data); diff != "" {
		t.Errorf("secret data (-want +got):\n%s", diff)
	}
	if cm := res.ConfigMaps[0]; !maps2Equal(cm.Data, map[string]string{"ca.crt": "ca"}) || cm.BinaryData != nil {
		t.Errorf("configmap data %v, binary %v", cm.Data, cm.BinaryData)
	}
	// Read through the dynamic client and typed before caching, spec and all.
	if p := res.BackendTrafficPolicies[0]; len(p.Spec.TargetRefs) != 1 || p.Spec.TargetRefs[0].Name != "podinfo" ||
		p.Spec.LoadBalancer == nil || p.Spec.LoadBalancer.Type != straitv1alpha1.LoadBalancerLeastRequest || len(p.ManagedFields) != 0 {
		t.Errorf("BackendTrafficPolicy %+v, want its target, its spec and no managedFields", p)
	}
	if got := names(cluster(in, "eu").ServiceExports); !slices.Equal(got, []string{"default/podinfo"}) {
		t.Errorf("eu exports %v", got)
	}

	// The registry has both clusters, with their clients.
	if got := p.Registry().Names(); !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("registry %v", got)
	}
	if m, ok := p.Registry().Get("us"); !ok || m.Clients.Kube != us.Kube || m.Cluster.Region != "us-east" {
		t.Errorf("registry us: %+v %v", m, ok)
	}
}

func maps2Equal(a, b map[string]string) bool { return cmp.Equal(a, b) }

func TestUpdateRepublishes(t *testing.T) {
	us := newFakeCluster(gatewayClass(), gateway("default", "gw"), service("default", "podinfo"),
		endpointSlice("default", "podinfo", "10.0.0.1"))
	opts := testOptions(t)
	opts.NewClients = (&fakeClusters{hosts: map[string]*fakeCluster{"https://us": us}}).newClients
	opts.Clusters = []ClusterSpec{{Cluster: translator.Cluster{Name: "us"}, Config: restConfig("https://us")}}
	ch := start(t, New(opts))
	waitInput(t, ch, "the first input", func(in *translator.Input) bool { return len(in.Clusters) == 1 })
	us.waitWatching(t)
	ctx := context.Background()

	if _, err := us.Gateway.GatewayV1().HTTPRoutes("default").Create(ctx, httpRoute("default", "new", "gw", "podinfo"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "the new route", func(in *translator.Input) bool {
		return slices.Equal(names(in.Clusters[0].HTTPRoutes), []string{"default/new"})
	})

	policy := toUnstructured(mustUnstructured(t, trafficPolicy("default", "new", "podinfo")))
	if _, err := us.Dynamic.Resource(straitv1alpha1.BackendTrafficPolicies).Namespace("default").Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "the new BackendTrafficPolicy", func(in *translator.Input) bool {
		return slices.Equal(names(in.Clusters[0].BackendTrafficPolicies), []string{"default/new"})
	})

	es := endpointSlice("default", "podinfo", "10.0.0.2")
	es.ResourceVersion = "2"
	if _, err := us.Kube.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "the new endpoint", func(in *translator.Input) bool {
		s := in.Clusters[0].EndpointSlices
		return len(s) == 1 && s[0].Endpoints[0].Addresses[0] == "10.0.0.2"
	})

	if err := us.Kube.CoreV1().Services("default").Delete(ctx, "podinfo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "the service gone", func(in *translator.Input) bool { return len(in.Clusters[0].Services) == 0 })

	// A Secret starts to count once a Gateway refers to it.
	if _, err := us.Kube.CoreV1().Secrets("default").Create(ctx, secret("default", "cert", corev1.SecretTypeTLS, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gw := gateway("default", "gw", "cert")
	gw.ResourceVersion, gw.Generation = "2", 2
	if _, err := us.Gateway.GatewayV1().Gateways("default").Update(ctx, gw, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "the referenced secret", func(in *translator.Input) bool {
		return slices.Equal(names(in.Clusters[0].Secrets), []string{"default/cert"})
	})
}

// TestInputNotMutated translates an Input made of the informers' objects and checks that
// the translation changed none of them.
func TestInputNotMutated(t *testing.T) {
	opts := testOptions(t)
	opts.NewClients = (&fakeClusters{hosts: map[string]*fakeCluster{"https://us": usCluster()}}).newClients
	opts.Clusters = []ClusterSpec{{Cluster: translator.Cluster{Name: "us"}, Config: restConfig("https://us")}}
	in := waitInput(t, start(t, New(opts)), "the input", func(in *translator.Input) bool { return len(in.Clusters) == 1 })
	before, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := translator.Translate(in)
	if len(out.Proxies) != 1 {
		t.Errorf("%d proxies, want the Gateway's one", len(out.Proxies))
	}
	after, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the translator changed its input:\n%s", cmp.Diff(string(before), string(after)))
	}
}

// gauge reads a cluster's strait_cluster_stale.
func gauge(t *testing.T, p *Provider, cluster string) float64 {
	t.Helper()
	var m dto.Metric
	if err := p.stale.WithLabelValues(cluster).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
