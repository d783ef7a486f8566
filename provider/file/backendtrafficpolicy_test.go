package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const trafficPolicy = `apiVersion: strait.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: web, namespace: apps}
spec:
  targetRefs: [{group: "", kind: Service, name: web, sectionName: http}]
  healthCheck:
    active: {type: HTTP, http: {path: /healthz, expectedStatuses: [200, 204]}, interval: 2s}
  loadBalancer:
    type: RingHash
    consistentHash: {type: Header, header: {name: x-user}}
  circuitBreaker: {maxConnections: 10}
  connectTimeout: 3s
`

func TestLoadInputBackendTrafficPolicy(t *testing.T) {
	in, warnings, err := loadTree(t, map[string]string{"p.yaml": trafficPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	policies := in.Clusters[0].BackendTrafficPolicies
	if len(policies) != 1 {
		t.Fatalf("%d BackendTrafficPolicies, want 1", len(policies))
	}
	p := policies[0]
	if p.Namespace != "apps" || p.Name != "web" || p.Kind != "BackendTrafficPolicy" {
		t.Errorf("decoded %s %s/%s", p.Kind, p.Namespace, p.Name)
	}
	got := []any{
		string(p.Spec.TargetRefs[0].Kind), string(*p.Spec.TargetRefs[0].SectionName),
		p.Spec.HealthCheck.Active.HTTP.Path, p.Spec.HealthCheck.Active.HTTP.ExpectedStatuses,
		string(p.Spec.LoadBalancer.ConsistentHash.Header.Name), *p.Spec.CircuitBreaker.MaxConnections,
		string(*p.Spec.ConnectTimeout),
	}
	want := []any{"Service", "http", "/healthz", []int32{200, 204}, "x-user", int32(10), "3s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded spec (-want +got):\n%s", diff)
	}
}

func TestLoadInputBackendTrafficPolicyStrict(t *testing.T) {
	bad := strings.Replace(trafficPolicy, "  connectTimeout: 3s\n", "  connectTimeout: 3s\n  retries: 3\n", 1)
	bad = strings.Replace(bad, "maxConnections: 10", "maxConnections: ten", 1)
	_, _, err := loadTree(t, map[string]string{"p.yaml": bad})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{`m/p.yaml:11: spec.circuitBreaker.maxConnections: cannot unmarshal string into int32`}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	_, _, err = loadTree(t, map[string]string{"p.yaml": strings.Replace(trafficPolicy, "  connectTimeout: 3s\n", "  connectTimeout: 3s\n  retries: 3\n", 1)})
	if err == nil || !strings.Contains(err.Error(), `m/p.yaml:13: unknown field "spec.retries"`) {
		t.Errorf("error %v, want the unknown field spec.retries at line 13", err)
	}
}
