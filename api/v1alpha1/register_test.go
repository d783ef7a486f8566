package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToScheme(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{StraitConfigKind, ClusterLinkKind, "ClusterLinkList", BackendTrafficPolicyKind, BackendTrafficPolicyKind + "List"} {
		if _, err := scheme.New(SchemeGroupVersion.WithKind(kind)); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

func TestClusterLinkDeepCopy(t *testing.T) {
	in := &ClusterLink{
		ObjectMeta: metav1.ObjectMeta{Name: "eu", Namespace: "strait-system"},
		Spec: ClusterLinkSpec{
			Region:              "eu-west",
			Labels:              map[string]string{"residency": "eu"},
			KubeconfigSecretRef: SecretKeyReference{Name: "eu-kubeconfig", Key: DefaultKubeconfigKey},
		},
		Status: ClusterLinkStatus{Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}},
	}
	out, ok := in.DeepCopyObject().(*ClusterLink)
	if !ok {
		t.Fatalf("DeepCopyObject returned %T", in.DeepCopyObject())
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("copy differs (-in +out):\n%s", diff)
	}
	out.Spec.Labels["residency"] = "us"
	out.Status.Conditions[0].Status = metav1.ConditionFalse
	if in.Spec.Labels["residency"] != "eu" || in.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Error("copy shares maps or slices with the original")
	}
}
