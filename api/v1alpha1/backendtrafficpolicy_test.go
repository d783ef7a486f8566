package v1alpha1

import (
	"os"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

func TestBackendTrafficPolicyDeepCopy(t *testing.T) {
	threshold, interval := int32(2), gwapiv1.Duration("1s")
	in := &BackendTrafficPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: BackendTrafficPolicySpec{
			TargetRefs: []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Kind: "Service", Name: "web"}}},
			HealthCheck: &HealthCheck{Active: &ActiveHealthCheck{
				Interval: &interval, UnhealthyThreshold: &threshold,
				HTTP: &HTTPHealthCheck{Path: "/healthz", ExpectedStatuses: []int32{200}},
			}},
		},
	}
	out := in.DeepCopy()
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("copy differs (-in +out):\n%s", diff)
	}
	*out.Spec.HealthCheck.Active.UnhealthyThreshold = 5
	out.Spec.HealthCheck.Active.HTTP.ExpectedStatuses[0] = 204
	if *in.Spec.HealthCheck.Active.UnhealthyThreshold != 2 || in.Spec.HealthCheck.Active.HTTP.ExpectedStatuses[0] != 200 {
		t.Error("copy shares pointers or slices with the original")
	}
}

// TestBackendTrafficPolicyCRDDefaults checks that the defaults the generated CRD declares are
// the constants the control plane applies to manifests read from files, which the API server
// never defaults.
func TestBackendTrafficPolicyCRDDefaults(t *testing.T) {
	data, err := os.ReadFile("../../config/crd/bases/strait.dev_backendtrafficpolicies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The schema is read as plain maps: the apiextensions types are not a dependency.
	type schema struct {
		Properties map[string]schema `json:"properties"`
		Default    any               `json:"default"`
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	at := func(path ...string) string {
		s := spec
		for _, p := range path {
			s = s.Properties[p]
		}
		switch v := s.Default.(type) {
		case float64:
			return strconv.Itoa(int(v))
		case string:
			return v
		}
		t.Errorf("spec.%v has default %v, want a number or a string", path, s.Default)
		return ""
	}
	itoa := strconv.Itoa
	got := map[string]string{
		"connectTimeout":              at("connectTimeout"),
		"active.interval":             at("healthCheck", "active", "interval"),
		"active.timeout":              at("healthCheck", "active", "timeout"),
		"active.unhealthyThreshold":   at("healthCheck", "active", "unhealthyThreshold"),
		"active.healthyThreshold":     at("healthCheck", "active", "healthyThreshold"),
		"active.http.path":            at("healthCheck", "active", "http", "path"),
		"outlier.consecutive5xx":      at("outlierDetection", "consecutive5xx"),
		"outlier.consecutiveGateway":  at("outlierDetection", "consecutiveGatewayErrors"),
		"outlier.interval":            at("outlierDetection", "interval"),
		"outlier.baseEjectionTime":    at("outlierDetection", "baseEjectionTime"),
		"outlier.maxEjectionPercent":  at("outlierDetection", "maxEjectionPercent"),
		"breaker.maxConnections":      at("circuitBreaker", "maxConnections"),
		"breaker.maxPendingRequests":  at("circuitBreaker", "maxPendingRequests"),
		"breaker.maxParallelRequests": at("circuitBreaker", "maxParallelRequests"),
		"breaker.maxParallelRetries":  at("circuitBreaker", "maxParallelRetries"),
	}
	want := map[string]string{
		"connectTimeout":              DefaultConnectTimeout,
		"active.interval":             DefaultHealthCheckInterval,
		"active.timeout":              DefaultHealthCheckTimeout,
		"active.unhealthyThreshold":   itoa(DefaultHealthCheckUnhealthyThreshold),
		"active.healthyThreshold":     itoa(DefaultHealthCheckHealthyThreshold),
		"active.http.path":            DefaultHealthCheckPath,
		"outlier.consecutive5xx":      itoa(DefaultOutlierConsecutive5xx),
		"outlier.consecutiveGateway":  itoa(DefaultOutlierConsecutiveGatewayErrors),
		"outlier.interval":            DefaultOutlierInterval,
		"outlier.baseEjectionTime":    DefaultOutlierBaseEjectionTime,
		"outlier.maxEjectionPercent":  itoa(DefaultOutlierMaxEjectionPercent),
		"breaker.maxConnections":      itoa(DefaultMaxConnections),
		"breaker.maxPendingRequests":  itoa(DefaultMaxPendingRequests),
		"breaker.maxParallelRequests": itoa(DefaultMaxParallelRequests),
		"breaker.maxParallelRetries":  itoa(DefaultMaxParallelRetries),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CRD defaults differ from the Go constants (-want +got):\n%s", diff)
	}
}
