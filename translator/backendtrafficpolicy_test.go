package translator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

// TestTranslateTrafficPolicyInvalid checks the rules the CRD's schema and CEL enforce in the
// API server, which manifests read from files never meet: each breaks a policy as Invalid
// with the field's path.
func TestTranslateTrafficPolicyInvalid(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{`healthCheck: {active: {type: TCP, http: {path: /}}}`, `healthCheck.active.http is only allowed when type is HTTP`},
		{`healthCheck: {active: {type: GRPC}}`, `healthCheck.active.type: "GRPC" is not HTTP or TCP`},
		{`healthCheck: {active: {http: {path: healthz}}}`, `healthCheck.active.http.path: "healthz" must start with / and hold no spaces`},
		{`healthCheck: {active: {http: {expectedStatuses: [200, 700]}}}`, `healthCheck.active.http.expectedStatuses: 700 is not an HTTP status`},
		{`healthCheck: {active: {interval: 0s}}`, `healthCheck.active.interval: "0s" is not a positive duration`},
		{`healthCheck: {active: {unhealthyThreshold: 0}}`, `healthCheck.active.unhealthyThreshold: 0 is not in [1, 100]`},
		{`outlierDetection: {consecutive5xx: 0}`, `outlierDetection.consecutive5xx: 0 is not in [1, 2147483647]`},
		{`loadBalancer: {type: RoundRobin, consistentHash: {type: SourceIP}}`, `loadBalancer.consistentHash is only allowed for RingHash and Maglev`},
		{`loadBalancer: {type: RingHash}`, `loadBalancer.consistentHash is required for RingHash`},
		{`loadBalancer: {type: Weighted}`, `loadBalancer.type: "Weighted" is not RoundRobin, LeastRequest, Random, RingHash or Maglev`},
		{`loadBalancer: {type: Maglev, consistentHash: {type: Header}}`, `loadBalancer.consistentHash.header is required when type is Header and not allowed otherwise`},
		{`loadBalancer: {type: Maglev, consistentHash: {type: SourceIP, cookie: {name: c}}}`, `loadBalancer.consistentHash.cookie is required when type is Cookie and not allowed otherwise`},
		{`loadBalancer: {type: Maglev, consistentHash: {type: Cookie, cookie: {name: c, ttl: forever}}}`, `loadBalancer.consistentHash.cookie.ttl: "forever" is not a positive duration`},
		{`circuitBreaker: {maxConnections: 0}`, `circuitBreaker.maxConnections: 0 is not in [1, 2147483647]`},
		{`circuitBreaker: {maxParallelRetries: -1}`, `circuitBreaker.maxParallelRetries: -1 is not in [0, 2147483647]`},
		{`connectTimeout: "-1s"`, `connectTimeout: "-1s" is not a positive duration`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			var spec straitv1alpha1.BackendTrafficPolicySpec
			if err := yaml.UnmarshalStrict([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			tp := translateTrafficPolicy(&spec)
			if tp.invalid == nil {
				t.Fatalf("accepted: %+v", tp)
			}
			got := []string{tp.invalid.Type, tp.invalid.Reason, tp.invalid.Msg}
			want := []string{string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonInvalid), tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("condition (-want +got):\n%s", diff)
			}
			if tp.healthCheck != nil || tp.loadBalancer != nil || tp.outlierDetection != nil || tp.circuitBreaker != nil || tp.connectTimeout != 0 {
				t.Errorf("an invalid policy sets fields: %+v", tp)
			}
		})
	}
}
