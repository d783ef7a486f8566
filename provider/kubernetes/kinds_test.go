package kubernetes

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
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
