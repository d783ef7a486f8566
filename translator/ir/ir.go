// Package ir is the intermediate representation between the translator and the xDS builder.
//
// The translator turns Gateway API resources from every member cluster into one Proxy per
// Gateway (a proxy node). The IR is deliberately close to what a proxy needs (ports, filter
// chains, virtual hosts, routes, weighted backends, endpoints grouped by locality) but carries no
// Envoy types: the xds package owns that mapping. Every slice in the IR is sorted
// deterministically, so equal input gives byte-equal output and unchanged xDS resources keep
// their versions.
package ir

import (
	"encoding/json"
	"time"
)

// Proxy is the complete configuration of one proxy node: one Gateway in one cluster.
type Proxy struct {
	// Node is the xDS node id, "<cluster>/<namespace>/<gateway>".
	Node string `json:"node"`
	// Cluster is the member cluster the Gateway lives in.
	Cluster string `json:"cluster"`
	// Listeners holds one entry per bound address and port.
	Listeners []*Listener `json:"listeners,omitempty"`
	// Backends holds every upstream cluster referenced by a route of this proxy, sorted by name.
	Backends []*Backend `json:"backends,omitempty"`
}

// Protocol is the protocol family a port speaks.
type Protocol string

// Port protocols. HTTP and HTTPS listeners end in an HTTP connection manager; TLS passthrough
// and TCP listeners forward bytes.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
	ProtocolTLS   Protocol = "TLS"
	ProtocolTCP   Protocol = "TCP"
)

// Listener is one bound socket, merging every Gateway listener that shares its port.
type Listener struct {
	// Name is deterministic: "<address>:<port>".
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Protocol is the family of every chain on this port: HTTP for plaintext HTTP, HTTPS when
	// every chain terminates TLS, TLS when some chain passes TLS through (chains are split by
	// SNI), TCP for raw TCP.
	Protocol Protocol `json:"protocol"`
	// Chains are tried by SNI, most specific server name first; at most one chain has no
	// server names (the catch-all).
	Chains []*FilterChain `json:"chains"`
}

// FilterChain is what the proxy does with a connection matched by server name.
// Exactly one of HTTP and TCP is set.
type FilterChain struct {
	// Name is "<namespace>/<gateway>/<listener>" of the Gateway listener that produced it,
	// or the port's name when plaintext HTTP listeners are merged.
	Name string `json:"name"`
	// ServerNames are the SNI names this chain answers (TLS ports only); empty matches any.
	ServerNames []string `json:"serverNames,omitempty"`
	// TLS terminates TLS with these certificates; nil for plaintext and passthrough.
	TLS *TLSTermination `json:"tls,omitempty"`
	// HTTP routes requests with a route table.
	HTTP *RouteTable `json:"http,omitempty"`
	// TCP forwards the connection to weighted backends (TCPRoute, TLSRoute passthrough).
	TCP *TCPForward `json:"tcp,omitempty"`
}

// TLSTermination holds the certificates a chain serves; the proxy picks one by SNI.
type TLSTermination struct {
	Certificates []*Certificate `json:"certificates"`
}

// Certificate is a PEM certificate chain and key from a kubernetes.io/tls Secret.
type Certificate struct {
	// Name is "<cluster>/<namespace>/<secret>"; the xDS secret name.
	Name    string `json:"name"`
	CertPEM []byte `json:"certPEM"`
	// KeyPEM is the private key. MarshalJSON leaves it out, so that no JSON form of the IR
	// (/debug/config, golden files, logs) ever holds key material.
	KeyPEM []byte `json:"keyPEM"`
}

// MarshalJSON encodes the certificate without its private key.
func (c *Certificate) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string `json:"name"`
		CertPEM []byte `json:"certPEM"`
	}{c.Name, c.CertPEM})
}

// TCPForward forwards a whole connection to one of its weighted backends.
type TCPForward struct {
	// Name is the route that produced it, "<cluster>/<namespace>/<route>".
	Name     string             `json:"name"`
	Backends []*WeightedBackend `json:"backends"`
}

// RouteTable is one RouteConfiguration: the virtual hosts of an HTTP connection manager.
type RouteTable struct {
	// Name is the RDS resource name, unique within the proxy.
	Name         string         `json:"name"`
	VirtualHosts []*VirtualHost `json:"virtualHosts,omitempty"`
}

// VirtualHost groups the routes that serve one set of host names.
type VirtualHost struct {
	Name string `json:"name"`
	// Domains are exact ("foo.example.com") or leading-wildcard ("*.example.com") host names,
	// or "*" for any host.
	Domains []string `json:"domains"`
	// Routes are in Gateway API precedence order: the first match wins.
	Routes []*Route `json:"routes"`
}

// Route is one match of one route rule with what to do with a request it matches.
// Exactly one of Redirect, DirectResponse and Backends decides the action.
type Route struct {
	// Name is "<cluster>/<namespace>/<route>/rule/<i>/match/<j>".
	Name string `json:"name"`
	// RuleName is the rule's spec name, if it has one.
	RuleName string `json:"ruleName,omitempty"`
	Match    Match  `json:"match"`

	Redirect       *Redirect          `json:"redirect,omitempty"`
	DirectResponse *DirectResponse    `json:"directResponse,omitempty"`
	Backends       []*WeightedBackend `json:"backends,omitempty"`

	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	Rewrite         *Rewrite        `json:"rewrite,omitempty"`
	Mirrors         []*Mirror       `json:"mirrors,omitempty"`
	CORS            *CORS           `json:"cors,omitempty"`
	Timeouts        *Timeouts       `json:"timeouts,omitempty"`
	Retry           *Retry          `json:"retry,omitempty"`
	// SessionAffinity pins a client to one endpoint by cookie or header.
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// PathMatchType says how a path is matched.
type PathMatchType string

// Path match types, as Gateway API defines them.
const (
	PathExact  PathMatchType = "Exact"
	PathPrefix PathMatchType = "PathPrefix"
	PathRegex  PathMatchType = "RegularExpression"
)

// StringMatchType says how a header or query value is matched.
type StringMatchType string

// String match types.
const (
	MatchExact StringMatchType = "Exact"
	MatchRegex StringMatchType = "RegularExpression"
)

// Match holds the conditions that must all hold for a request to match.
type Match struct {
	// PathType and Path: PathPrefix matches whole segments ("/foo" matches "/foo/bar", not
	// "/foobar"); regexes are RE2 and match the whole path.
	PathType    PathMatchType `json:"pathType"`
	Path        string        `json:"path"`
	Headers     []StringMatch `json:"headers,omitempty"`
	QueryParams []StringMatch `json:"queryParams,omitempty"`
	// Method is an HTTP method, empty for any.
	Method string `json:"method,omitempty"`
}

// StringMatch matches one named header or query parameter. Header names are lower case.
type StringMatch struct {
	Name  string          `json:"name"`
	Type  StringMatchType `json:"type"`
	Value string          `json:"value"`
}

// Redirect answers with a redirect; unset fields keep the request's value.
type Redirect struct {
	Scheme   string `json:"scheme,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Port is the port of the Location header; 0 keeps the default derivation of the spec.
	Port uint32 `json:"port,omitempty"`
	// Path replaces the path; nil keeps it.
	Path       *PathModifier `json:"path,omitempty"`
	StatusCode int           `json:"statusCode"`
}

// PathModifierType says how a path is rewritten.
type PathModifierType string

// Path modifier types, as Gateway API defines them.
const (
	ReplaceFullPath    PathModifierType = "ReplaceFullPath"
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch"
)

// PathModifier rewrites a path. ReplacePrefixMatch replaces the route's matched prefix.
type PathModifier struct {
	Type  PathModifierType `json:"type"`
	Value string           `json:"value"`
}

// DirectResponse answers without contacting a backend (e.g. 500 for an unresolved backend).
type DirectResponse struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body,omitempty"`
}

// HeaderModifier sets, adds and removes headers, in that order of precedence.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is one header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Rewrite rewrites the request before it is forwarded.
type Rewrite struct {
	Hostname string        `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// Mirror sends a copy of a fraction of the requests to a backend and ignores its answer.
type Mirror struct {
	Backend string `json:"backend"`
	// Numerator / Denominator of requests mirrored; 100/100 mirrors all.
	Numerator   int32 `json:"numerator"`
	Denominator int32 `json:"denominator"`
}

// CORS answers preflight requests and adds CORS headers to responses.
type CORS struct {
	// AllowOrigins are exact origins or patterns with "*" wildcards; "*" allows any.
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           int32    `json:"maxAge,omitempty"`
}

// Timeouts bound a request. Zero means no timeout.
type Timeouts struct {
	// Request bounds the whole request, retries included.
	Request time.Duration `json:"request,omitempty"`
	// Backend bounds each attempt to a backend.
	Backend time.Duration `json:"backend,omitempty"`
}

// Retry retries failed attempts.
type Retry struct {
	// Codes are the HTTP status codes that are retried.
	Codes []int `json:"codes,omitempty"`
	// Attempts is the maximum number of retries after the first attempt.
	Attempts int `json:"attempts"`
	// Backoff is the base interval between attempts; zero uses the proxy's default.
	Backoff time.Duration `json:"backoff,omitempty"`
}

// SessionAffinityType says what a session is keyed by.
type SessionAffinityType string

// Session affinity types. SourceIP keys a session by the client's address; only a
// BackendTrafficPolicy's consistent hash asks for it.
const (
	AffinityCookie   SessionAffinityType = "Cookie"
	AffinityHeader   SessionAffinityType = "Header"
	AffinitySourceIP SessionAffinityType = "SourceIP"
)

// SessionAffinity keeps a client on one endpoint.
type SessionAffinity struct {
	Type SessionAffinityType `json:"type"`
	// Name is the cookie or header name; empty for SourceIP.
	Name string `json:"name,omitempty"`
	// TTL is the cookie's lifetime; zero makes a session cookie.
	TTL time.Duration `json:"ttl,omitempty"`
}

// WeightedBackend is one backend of a route with its share of the traffic.
type WeightedBackend struct {
	// Backend is the name of a Backend in Proxy.Backends; empty when the reference was invalid,
	// in which case the proxy answers this share of requests with 500.
	Backend string `json:"backend,omitempty"`
	Weight  uint32 `json:"weight"`
	// Filters applied only when this backend is picked.
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
}

// AppProtocol is how the proxy talks to a backend, from the Service port's appProtocol.
type AppProtocol string

// Backend application protocols.
const (
	AppHTTP1     AppProtocol = "HTTP1"
	AppH2C       AppProtocol = "H2C"
	AppWebSocket AppProtocol = "WebSocket"
	AppTCP       AppProtocol = "TCP"
)

// TargetKind is the kind of a backendRef.
type TargetKind string

// Target kinds: a Service in one cluster (plain or mirror), or a ServiceImport spanning every
// exporting cluster.
const (
	TargetService       TargetKind = "Service"
	TargetServiceImport TargetKind = "ServiceImport"
)

// Target names what a Backend's endpoints come from, so that endpoints can be resolved again
// without translating routes (the endpoint fast path).
type Target struct {
	Kind TargetKind `json:"kind"`
	// Cluster is the cluster whose Service this is (for Service targets; a mirror Service is
	// resolved to the exporting cluster).
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Port is the Service (or ServiceImport) port.
	Port uint32 `json:"port"`
	// From is the cluster of the proxy, which decides locality priorities.
	From string `json:"from"`
}

// Backend is one upstream cluster: a port of a Service or ServiceImport.
type Backend struct {
	// Name is "<cluster>/<namespace>/<service>/<port>" for a Service and
	// "import/<namespace>/<service>/<port>" for a ServiceImport, with "/h2c" or "/tcp"
	// appended when the route kind speaks another protocol than the port declares (a
	// GRPCRoute to a plain port, any TCPRoute or TLSRoute), so that names stay unique.
	Name        string      `json:"name"`
	Target      Target      `json:"target"`
	AppProtocol AppProtocol `json:"appProtocol"`
	// TLS originates TLS to the backend (BackendTLSPolicy); nil for plaintext.
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// Localities are the endpoints grouped by where they run.
	Localities []*Locality `json:"localities,omitempty"`

	// Policy is "<cluster>/<namespace>/<name>" of the BackendTrafficPolicy that set the fields
	// below; empty when none applies. Every field below left unset (nil or zero) keeps the
	// default the xds package gives every backend: no active health checks, outlier detection
	// on consecutive errors, locality-weighted round robin (a ring hash for routes with
	// session affinity), the proxy's default circuit breakers and a 10s connect timeout.
	Policy string `json:"policy,omitempty"`
	// HealthCheck probes every endpoint and takes failing ones out of rotation.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// OutlierDetection ejects endpoints whose requests fail; every field is set.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// LoadBalancer is the load-balancing algorithm.
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
	// CircuitBreaker bounds what is in flight to the backend; every field is set.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// ConnectTimeout bounds the opening of a connection to an endpoint.
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty"`
}

// HealthCheck is an active health check, with every field set. An endpoint that fails
// UnhealthyThreshold probes in a row, or answers an HTTP probe with another status than
// expected, is out of rotation until it passes HealthyThreshold probes in a row.
type HealthCheck struct {
	Interval           time.Duration `json:"interval"`
	Timeout            time.Duration `json:"timeout"`
	UnhealthyThreshold uint32        `json:"unhealthyThreshold"`
	HealthyThreshold   uint32        `json:"healthyThreshold"`
	// HTTP sends a GET; nil checks that a TCP connection opens.
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
}

// HTTPHealthCheck is the request of an HTTP health check and the statuses that pass.
type HTTPHealthCheck struct {
	// Host is the Host header.
	Host string `json:"host"`
	Path string `json:"path"`
	// ExpectedStatuses are sorted and distinct.
	ExpectedStatuses []int `json:"expectedStatuses"`
}

// OutlierDetection ejects an endpoint after consecutive failures, for BaseEjectionTime times
// the number of its ejections.
type OutlierDetection struct {
	// Consecutive5xx counts 5xx answers and failures to get one.
	Consecutive5xx uint32 `json:"consecutive5xx"`
	// ConsecutiveGatewayErrors counts 502, 503, 504 and failures to connect.
	ConsecutiveGatewayErrors uint32        `json:"consecutiveGatewayErrors"`
	Interval                 time.Duration `json:"interval"`
	BaseEjectionTime         time.Duration `json:"baseEjectionTime"`
	// MaxEjectionPercent is the largest share of endpoints ejected at once.
	MaxEjectionPercent uint32 `json:"maxEjectionPercent"`
}

// LoadBalancerType is a load-balancing algorithm.
type LoadBalancerType string

// Load-balancing algorithms.
const (
	LoadBalancerRoundRobin   LoadBalancerType = "RoundRobin"
	LoadBalancerLeastRequest LoadBalancerType = "LeastRequest"
	LoadBalancerRandom       LoadBalancerType = "Random"
	LoadBalancerRingHash     LoadBalancerType = "RingHash"
	LoadBalancerMaglev       LoadBalancerType = "Maglev"
)

// LoadBalancer is the load-balancing algorithm of a backend.
type LoadBalancer struct {
	Type LoadBalancerType `json:"type"`
	// Hash is the key of RingHash and Maglev: every route to this backend without session
	// affinity of its own hashes requests by it. Nil for the other types.
	Hash *SessionAffinity `json:"hash,omitempty"`
}

// CircuitBreaker bounds what a proxy has in flight to one backend.
type CircuitBreaker struct {
	MaxConnections      uint32 `json:"maxConnections"`
	MaxPendingRequests  uint32 `json:"maxPendingRequests"`
	MaxParallelRequests uint32 `json:"maxParallelRequests"`
	MaxParallelRetries  uint32 `json:"maxParallelRetries"`
}

// UpstreamTLS validates a backend's certificate.
type UpstreamTLS struct {
	// SNI is sent and must match the certificate.
	SNI string `json:"sni"`
	// CACertPEM are the trusted roots; empty with WellKnownCA uses the system roots.
	CACertPEM   []byte `json:"caCertPEM,omitempty"`
	WellKnownCA bool   `json:"wellKnownCA,omitempty"`
	// SubjectAltNames, if set, replace SNI for certificate verification.
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
}

// Locality is the endpoints of one cluster, in priority order relative to the proxy.
type Locality struct {
	// Cluster, Region and Zone say where the endpoints run (Envoy sub_zone, region, zone).
	Cluster string `json:"cluster"`
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	// Priority orders localities for failover: the proxy's own cluster first, then the same
	// region, then others, numbered 0..n-1 without gaps (Envoy and gRPC require it).
	Priority uint32 `json:"priority"`
	// Weight is the locality's load-balancing weight within its priority.
	Weight    uint32      `json:"weight"`
	Endpoints []*Endpoint `json:"endpoints"`
}

// Endpoint is one address of a backend.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Ready is false for endpoints that EndpointSlices report not ready or terminating.
	Ready bool `json:"ready"`
}
