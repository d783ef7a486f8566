package kubernetes

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

func TestRelevantUpdate(t *testing.T) {
	gw := func(rv string, gen int64, labels map[string]string) *gwapiv1.Gateway {
		return &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv, Generation: gen, Labels: labels}}
	}
	svc := func(rv string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
	}
	gatewayKind, serviceKind := &kinds[2], &kinds[9]
	if gatewayKind.name != "Gateway" || serviceKind.name != "Service" {
		t.Fatalf("kinds moved: %s, %s", gatewayKind.name, serviceKind.name)
	}
	tests := []struct {
		name     string
		k        *kind
		old, new any
		want     bool
	}{
		{"relist replays the same version", serviceKind, svc("1"), svc("1"), false},
		{"service changed", serviceKind, svc("1"), svc("2"), true},
		{"gateway status written", gatewayKind, gw("1", 1, nil), gw("2", 1, nil), false},
		{"gateway spec changed", gatewayKind, gw("1", 1, nil), gw("2", 2, nil), true},
		{"gateway labels changed", gatewayKind, gw("1", 1, nil), gw("2", 1, map[string]string{"a": "b"}), true},
	}
	for _, tt := range tests {
		if got := relevantUpdate(tt.k, tt.old, tt.new); got != tt.want {
			t.Errorf("%s: relevant %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTrim(t *testing.T) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}},
			Annotations: map[string]string{lastApplied: "{}", "a": "b"}},
		Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "ca.crt": []byte("ca"), "password": []byte("p")},
	}
	if _, err := trim(s); err != nil {
		t.Fatal(err)
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}},
		Data:       map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k"), "ca.crt": []byte("ca")},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("trimmed secret (-want +got):\n%s", diff)
	}
}

// TestTrimTypesStraitKinds checks that a BackendTrafficPolicy read by the dynamic informer
// enters the cache typed and trimmed, and that an object of no known kind stays as it is.
func TestTrimTypesStraitKinds(t *testing.T) {
	p := trafficPolicy("default", "p", "podinfo")
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m"}}
	got, err := trim(toUnstructured(mustUnstructured(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	policy, ok := got.(*straitv1alpha1.BackendTrafficPolicy)
	if !ok {
		t.Fatalf("trimmed to a %T, want a *BackendTrafficPolicy", got)
	}
	p.ManagedFields = nil
	if diff := cmp.Diff(p, policy); diff != "" {
		t.Errorf("typed policy (-want +got):\n%s", diff)
	}

	other := toUnstructured(map[string]any{"apiVersion": "example.com/v1", "kind": "Other",
		"metadata": map[string]any{"name": "o"}})
	if got, _ := trim(other); got != other {
		t.Errorf("an unknown kind became a %T", got)
	}
}

// TestServedKindsWithoutStraitCRD checks that a cluster without the BackendTrafficPolicy CRD
// has every other kind watched, and that the CRD's resource is watched where it is served.
func TestServedKindsWithoutStraitCRD(t *testing.T) {
	c := newFakeCluster()
	d := c.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	served, err := servedKinds(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(served) != len(kinds) {
		t.Errorf("%d kinds served, want all %d", len(served), len(kinds))
	}
	d.Resources = slices.DeleteFunc(d.Resources, func(l *metav1.APIResourceList) bool {
		return l.GroupVersion == straitv1alpha1.SchemeGroupVersion.String()
	})
	served, err = servedKinds(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range served {
		if k.name == "BackendTrafficPolicy" {
			t.Error("BackendTrafficPolicy watched where its CRD is not installed")
		}
	}
	if len(served) != len(kinds)-1 {
		t.Errorf("%d kinds served, want all %d but BackendTrafficPolicy", len(served), len(kinds))
	}
}
