package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BackendTrafficPolicyKind is the kind of BackendTrafficPolicy.
const BackendTrafficPolicyKind = "BackendTrafficPolicy"

// Defaults of a BackendTrafficPolicy, applied by the control plane to fields a policy leaves
// unset (the CRD's defaults say the same, for clients that read them). Outlier detection and
// the connect timeout are those every backend gets without a policy.
const (
	DefaultConnectTimeout = "10s"

	DefaultHealthCheckInterval           = "5s"
	DefaultHealthCheckTimeout            = "1s"
	DefaultHealthCheckUnhealthyThreshold = 3
	DefaultHealthCheckHealthyThreshold   = 1
	DefaultHealthCheckPath               = "/"
	DefaultHealthCheckStatus             = 200

	DefaultOutlierConsecutive5xx           = 5
	DefaultOutlierConsecutiveGatewayErrors = 3
	DefaultOutlierInterval                 = "5s"
	DefaultOutlierBaseEjectionTime         = "30s"
	DefaultOutlierMaxEjectionPercent       = 100

	DefaultMaxConnections      = 1024
	DefaultMaxPendingRequests  = 1024
	DefaultMaxParallelRequests = 1024
	DefaultMaxParallelRetries  = 3
)

// BackendTrafficPolicy configures how Gateways send traffic to a backend: active health
// checks, outlier detection, the load-balancing algorithm, circuit breakers and the connect
// timeout. It attaches directly (Gateway API policy attachment, GEP-713) to Services and
// ServiceImports in its own namespace and cluster, and applies to the routes of that cluster
// that use them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strait;gateway-api,shortName=btp
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=Direct"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackendTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says what the policy targets and what it sets.
	Spec BackendTrafficPolicySpec `json:"spec"`

	// Status is written by the control plane, one entry per Gateway that uses a target.
	// +optional
	Status gwapiv1.PolicyStatus `json:"status,omitempty"`
}

// BackendTrafficPolicyList is a list of BackendTrafficPolicies.
//
// +kubebuilder:object:root=true
type BackendTrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackendTrafficPolicy `json:"items"`
}

// BackendTrafficPolicySpec says what a BackendTrafficPolicy targets and what it sets. Fields
// left unset keep the behavior a backend has without a policy.
type BackendTrafficPolicySpec struct {
	// TargetRefs are the Services (group "", kind Service) and ServiceImports (group
	// multicluster.x-k8s.io, kind ServiceImport) in the policy's namespace it applies to. A
	// sectionName names one port of the Service; without it the policy applies to every port.
	//
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, (r.group == '' && r.kind == 'Service') || (r.group == 'multicluster.x-k8s.io' && r.kind == 'ServiceImport'))",message="targetRefs must be Services (group \"\") or ServiceImports (group multicluster.x-k8s.io)"
	TargetRefs []gwapiv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`

	// HealthCheck checks endpoints actively and takes those that fail out of rotation.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// OutlierDetection ejects endpoints whose requests fail. Unset fields keep the defaults
	// every backend has.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// LoadBalancer picks the algorithm that spreads requests over endpoints.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// CircuitBreaker bounds the connections and requests a Gateway has open to the backend.
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`

	// ConnectTimeout bounds the opening of a connection to an endpoint. Default: 10s.
	// +optional
	// +kubebuilder:default="10s"
	ConnectTimeout *gwapiv1.Duration `json:"connectTimeout,omitempty"`
}

// HealthCheck holds the health checks of a backend.
type HealthCheck struct {
	// Active probes every endpoint on an interval.
	// +optional
	Active *ActiveHealthCheck `json:"active,omitempty"`
}

// ActiveHealthCheckType is what an active health check does.
//
// +kubebuilder:validation:Enum=HTTP;TCP
type ActiveHealthCheckType string

// Active health check types.
const (
	// ActiveHealthCheckHTTP sends an HTTP GET and expects one of the expected statuses.
	ActiveHealthCheckHTTP ActiveHealthCheckType = "HTTP"
	// ActiveHealthCheckTCP opens a TCP connection.
	ActiveHealthCheckTCP ActiveHealthCheckType = "TCP"
)

// ActiveHealthCheck probes every endpoint of a backend. An endpoint that fails
// unhealthyThreshold probes in a row (or answers an HTTP probe with an unexpected status) is
// out of rotation until it passes healthyThreshold probes in a row. Endpoints start healthy.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'HTTP' || !has(self.http)",message="http is only allowed when type is HTTP"
type ActiveHealthCheck struct {
	// Type is HTTP or TCP. Default: HTTP.
	// +optional
	// +kubebuilder:default=HTTP
	Type ActiveHealthCheckType `json:"type,omitempty"`

	// HTTP configures HTTP probes.
	// +optional
	HTTP *HTTPHealthCheck `json:"http,omitempty"`

	// Interval is the time between two probes of an endpoint. Default: 5s.
	// +optional
	// +kubebuilder:default="5s"
	Interval *gwapiv1.Duration `json:"interval,omitempty"`

	// Timeout bounds one probe. Default: 1s.
	// +optional
	// +kubebuilder:default="1s"
	Timeout *gwapiv1.Duration `json:"timeout,omitempty"`

	// UnhealthyThreshold is how many probes in a row must fail (without an answer) before a
	// healthy endpoint is taken out of rotation. Default: 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`

	// HealthyThreshold is how many probes in a row must pass before an unhealthy endpoint
	// is back in rotation. Default: 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
}

// HTTPHealthCheck is the request an HTTP probe sends and the answers that pass.
type HTTPHealthCheck struct {
	// Path is the request path. Default: /.
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^\s]*$`
	Path string `json:"path,omitempty"`

	// Hostname is the Host header. Default: the backend's DNS name,
	// <service>.<namespace>.svc.cluster.local for a Service and
	// <name>.<namespace>.svc.clusterset.local for a ServiceImport.
	// +optional
	Hostname *gwapiv1.PreciseHostname `json:"hostname,omitempty"`

	// ExpectedStatuses are the HTTP status codes that pass. Default: [200].
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// OutlierDetection ejects an endpoint from rotation after consecutive failed requests, for
// baseEjectionTime multiplied by the number of times it was ejected.
type OutlierDetection struct {
	// Consecutive5xx is how many 5xx answers (or failures to get one) in a row eject an
	// endpoint. Default: 5.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`

	// ConsecutiveGatewayErrors is how many gateway errors (502, 503, 504, or no connection)
	// in a row eject an endpoint. Default: 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`

	// Interval is how often ejections are reviewed and expired ones lifted. Default: 5s.
	// +optional
	// +kubebuilder:default="5s"
	Interval *gwapiv1.Duration `json:"interval,omitempty"`

	// BaseEjectionTime is how long a first ejection lasts. Default: 30s.
	// +optional
	// +kubebuilder:default="30s"
	BaseEjectionTime *gwapiv1.Duration `json:"baseEjectionTime,omitempty"`

	// MaxEjectionPercent is the largest share of a backend's endpoints that may be ejected at
	// once. Default: 100, so that a cluster whose endpoints all fail fails over to the next.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// LoadBalancerType is a load-balancing algorithm.
//
// +kubebuilder:validation:Enum=RoundRobin;LeastRequest;Random;RingHash;Maglev
type LoadBalancerType string

// Load-balancing algorithms.
const (
	// LoadBalancerRoundRobin takes endpoints in turn, by locality weight (the default).
	LoadBalancerRoundRobin LoadBalancerType = "RoundRobin"
	// LoadBalancerLeastRequest picks the less busy of two random endpoints.
	LoadBalancerLeastRequest LoadBalancerType = "LeastRequest"
	// LoadBalancerRandom picks an endpoint at random.
	LoadBalancerRandom LoadBalancerType = "Random"
	// LoadBalancerRingHash hashes requests onto a ring of endpoints (consistent hashing).
	LoadBalancerRingHash LoadBalancerType = "RingHash"
	// LoadBalancerMaglev hashes requests with a Maglev lookup table (consistent hashing).
	LoadBalancerMaglev LoadBalancerType = "Maglev"
)

// LoadBalancer picks the load-balancing algorithm of a backend.
//
// +kubebuilder:validation:XValidation:rule="(self.type == 'RingHash' || self.type == 'Maglev') == has(self.consistentHash)",message="consistentHash is required for RingHash and Maglev and not allowed otherwise"
type LoadBalancer struct {
	// Type is the algorithm.
	Type LoadBalancerType `json:"type"`

	// ConsistentHash says what requests are hashed by (RingHash and Maglev only): requests
	// with the same key go to the same endpoint while the set of endpoints is stable.
	// +optional
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
}

// ConsistentHashType is what a consistent hash is computed from.
//
// +kubebuilder:validation:Enum=Header;Cookie;SourceIP
type ConsistentHashType string

// Consistent hash keys.
const (
	ConsistentHashHeader   ConsistentHashType = "Header"
	ConsistentHashCookie   ConsistentHashType = "Cookie"
	ConsistentHashSourceIP ConsistentHashType = "SourceIP"
)

// ConsistentHash is the key of consistent hashing.
//
// +kubebuilder:validation:XValidation:rule="(self.type == 'Header') == has(self.header)",message="header is required when type is Header and not allowed otherwise"
// +kubebuilder:validation:XValidation:rule="(self.type == 'Cookie') == has(self.cookie)",message="cookie is required when type is Cookie and not allowed otherwise"
type ConsistentHash struct {
	// Type is Header, Cookie or SourceIP (the client's address).
	Type ConsistentHashType `json:"type"`

	// Header hashes a request header.
	// +optional
	Header *HeaderHash `json:"header,omitempty"`

	// Cookie hashes a cookie, which the Gateway sets when a request has none.
	// +optional
	Cookie *CookieHash `json:"cookie,omitempty"`
}

// HeaderHash names the header hashed.
type HeaderHash struct {
	// Name is the header's name.
	Name gwapiv1.HTTPHeaderName `json:"name"`
}

// CookieHash names the cookie hashed.
type CookieHash struct {
	// Name is the cookie's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+\-.^_\x60|~0-9A-Za-z]+$`
	Name string `json:"name"`

	// TTL is the lifetime of the cookie the Gateway sets; without it the cookie lasts for the
	// browser session.
	// +optional
	TTL *gwapiv1.Duration `json:"ttl,omitempty"`
}

// CircuitBreaker bounds what a Gateway has in flight to a backend; requests beyond a bound
// fail at once with 503 rather than pile up.
type CircuitBreaker struct {
	// MaxConnections bounds the open connections. Default: 1024.
	// +optional
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// MaxPendingRequests bounds the requests waiting for a connection. Default: 1024.
	// +optional
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=0
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`

	// MaxParallelRequests bounds the requests in flight. Default: 1024.
	// +optional
	// +kubebuilder:default=1024
	// +kubebuilder:validation:Minimum=0
	MaxParallelRequests *int32 `json:"maxParallelRequests,omitempty"`

	// MaxParallelRetries bounds the retries in flight. Default: 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	MaxParallelRetries *int32 `json:"maxParallelRetries,omitempty"`
}
