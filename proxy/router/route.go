package router

import (
	"slices"
	"time"
)

// Table is the compiled form of one RouteConfiguration. It is immutable and safe for
// concurrent use; a new configuration is a new Table.
type Table struct {
	// Name is the RouteConfiguration's name.
	Name string
	// ValidateClusters is the configuration's validate_clusters: when true, the proxy must
	// reject the table if Clusters names a cluster it does not know.
	ValidateClusters bool

	hosts    hostIndex
	clusters []string
}

// Clusters returns the sorted names of every cluster the table's routes and mirrors send to.
func (t *Table) Clusters() []string { return slices.Clone(t.clusters) }

// Params is what matching learnt about a request that acting on its route needs again. Pass
// the value Match returned for a request to the route's helpers for that same request.
type Params struct {
	// Host is the request's host without its port, as the connection manager's
	// strip_any_host_port leaves it: what virtual hosts match.
	Host string
	// Authority is the Host header as the client sent it, port included: what is
	// forwarded upstream (Gateway API backends see the Host the client sent, unlike
	// Envoy's strip_any_host_port, which strips it from the forwarded request too).
	Authority string
	// Port is the port the Host header named, "" when it named none.
	Port string
	// Path is the request's escaped path without the query string: what routes match.
	Path string
}

// Route is one compiled route: its action, exactly one of Redirect, DirectResponse and
// Clusters, and the policies that apply to it. A Route is shared by every request it
// matches and must not be modified.
type Route struct {
	// Name is the route's name.
	Name string
	// VirtualHost is the name of the virtual host the route belongs to.
	VirtualHost string

	// Redirect answers with a redirect.
	Redirect *Redirect
	// DirectResponse answers without contacting a cluster.
	DirectResponse *DirectResponse
	// Clusters forward the request to one of them, picked by PickCluster; a route with a
	// single cluster has one entry of weight 1.
	Clusters []WeightedCluster
	// ClusterNotFoundResponseCode answers a request whose picked cluster the proxy does not
	// know: 503 unless the route says otherwise. Strait sends the shares of invalid backends
	// to the never-existing cluster "strait/invalid-backend" with code 500.
	ClusterNotFoundResponseCode int

	// RequestHeaders changes the request before it is forwarded, after the picked cluster's
	// own modifier. It merges the route's, its virtual host's and the configuration's
	// modifiers in Envoy's order (most specific first, unless the configuration sets
	// most_specific_header_mutations_wins).
	RequestHeaders HeaderModifier
	// ResponseHeaders changes every response of the route, redirects and direct responses
	// included, after the picked cluster's own modifier; merged like RequestHeaders.
	ResponseHeaders HeaderModifier
	// HostRewrite replaces the Host forwarded upstream; "" keeps it (see RewriteRequest).
	HostRewrite string
	// Mirrors each send a copy of a sample of the requests to a cluster; their answers are
	// ignored. Like Envoy, the proxy should append "-shadow" to the copy's Host.
	Mirrors []Mirror
	// CORS is the route's CORS policy; nil when neither the route, its virtual host nor the
	// configuration has one.
	CORS *CORS
	// Timeout bounds the whole request, retries included; 0 means none. Envoy's default of
	// 15s applies when the route sets no timeout.
	Timeout time.Duration
	// Retry retries failed attempts; nil means a single attempt.
	Retry *RetryPolicy
	// HashPolicies compute the request's hash for ring-hash and Maglev load balancing, in
	// order (see HashKey).
	HashPolicies []HashPolicy

	rewrite  pathRewrite
	weights  []uint64 // running totals of Clusters' weights
	weighted uint64   // sum of Clusters' weights
}

// WeightedCluster is one cluster of a route with its share of the traffic.
type WeightedCluster struct {
	// Name is the cluster's name.
	Name string
	// Weight is the cluster's share, relative to the other clusters of the route.
	Weight uint32
	// RequestHeaders changes the request when this cluster is picked, before the route's own
	// RequestHeaders.
	RequestHeaders HeaderModifier
	// ResponseHeaders changes the response when this cluster is picked, before the route's
	// own ResponseHeaders.
	ResponseHeaders HeaderModifier
}

// PickCluster picks a cluster in proportion to the weights from a uniformly random rnd; nil
// when the route does not forward. Clusters of weight 0 are never picked.
func (rt *Route) PickCluster(rnd uint64) *WeightedCluster {
	switch len(rt.Clusters) {
	case 0:
		return nil
	case 1:
		return &rt.Clusters[0]
	}
	// The first cluster whose running total exceeds the sample: a zero weight repeats the
	// previous total, so the search never stops on it.
	i, _ := slices.BinarySearch(rt.weights, rnd%rt.weighted+1)
	return &rt.Clusters[i]
}

// DirectResponse answers a request without contacting a cluster.
type DirectResponse struct {
	// StatusCode is the response's status code.
	StatusCode int
	// Body is the response body; Envoy sends a non-empty one as text/plain unless the route's
	// response headers set a content type.
	Body string
}

// Mirror sends a copy of a sample of the requests to a cluster.
type Mirror struct {
	// Cluster receives the copies.
	Cluster string
	// Numerator out of Denominator (100, 10,000 or 1,000,000) requests are mirrored.
	Numerator, Denominator uint32
}

// Sample reports whether the request with the uniformly random rnd is mirrored.
func (m Mirror) Sample(rnd uint64) bool {
	return rnd%uint64(m.Denominator) < uint64(m.Numerator)
}

// RetryPolicy retries failed attempts of a request.
type RetryPolicy struct {
	// On is the set of failures retried.
	On RetryOn
	// NumRetries is the most retries after the first attempt.
	NumRetries int
	// PerTryTimeout bounds each attempt; 0 means only Route.Timeout bounds them.
	PerTryTimeout time.Duration
	// RetriableStatusCodes are retried when On has RetryRetriableStatusCodes.
	RetriableStatusCodes []int
	// BackOffBase and BackOffMax bound the exponential back-off with full jitter between
	// attempts, as Envoy computes it; unset, they are 25ms and ten times the base.
	BackOffBase, BackOffMax time.Duration
}

// BackOff returns how long to wait before retry number n (0 for the first retry), as
// Envoy's fully jittered exponential back-off computes it from a uniformly random rnd: a
// duration below the base interval doubled n times, capped at the maximum.
func (p *RetryPolicy) BackOff(n int, rnd uint64) time.Duration {
	interval := p.BackOffBase
	for ; n > 0 && interval < p.BackOffMax; n-- {
		interval *= 2
	}
	interval = min(interval, p.BackOffMax)
	if interval <= 0 {
		return 0
	}
	return time.Duration(rnd % uint64(interval))
}

// RetriableStatus reports whether a response with this HTTP status is retried.
func (p *RetryPolicy) RetriableStatus(code int) bool {
	switch {
	case p.On&Retry5xx != 0 && code >= 500 && code <= 599:
		return true
	case p.On&RetryGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case p.On&RetryRetriable4xx != 0 && code == 409:
		return true
	case p.On&RetryRetriableStatusCodes != 0:
		return slices.Contains(p.RetriableStatusCodes, code)
	}
	return false
}

// RetriableGRPCStatus reports whether a response with this grpc-status is retried.
func (p *RetryPolicy) RetriableGRPCStatus(code int) bool {
	for cond, status := range grpcRetryStatus {
		if p.On&cond != 0 && code == status {
			return true
		}
	}
	return false
}

// RetryOn is a set of failures that are retried, Envoy's retry_on conditions.
type RetryOn uint32

// Retry conditions. Compile adds the connection failures that "5xx" and "gateway-error"
// include in Envoy, so the proxy tests one condition per kind of failure.
const (
	// Retry5xx ("5xx") retries any 5xx response, and resets and connection failures.
	Retry5xx RetryOn = 1 << iota
	// RetryGatewayError ("gateway-error") retries 502, 503 and 504, and resets and
	// connection failures.
	RetryGatewayError
	// RetryReset ("reset") retries when the upstream did not answer: disconnect, reset,
	// read timeout.
	RetryReset
	// RetryResetBeforeRequest ("reset-before-request") retries a reset before the request
	// was sent upstream.
	RetryResetBeforeRequest
	// RetryConnectFailure ("connect-failure") retries a failed connection attempt.
	RetryConnectFailure
	// RetryRetriable4xx ("retriable-4xx") retries 409.
	RetryRetriable4xx
	// RetryRefusedStream ("refused-stream") retries an HTTP/2 REFUSED_STREAM.
	RetryRefusedStream
	// RetryRetriableStatusCodes ("retriable-status-codes") retries
	// RetryPolicy.RetriableStatusCodes.
	RetryRetriableStatusCodes
	// RetryHTTP3PostConnectFailure ("http3-post-connect-failure") retries an HTTP/3 request
	// that failed after the connection was established.
	RetryHTTP3PostConnectFailure
	// RetryGRPCCancelled ("cancelled") retries grpc-status 1.
	//
	//nolint:misspell // "cancelled" is Envoy's spelling of this retry_on condition
	RetryGRPCCancelled
	// RetryGRPCDeadlineExceeded ("deadline-exceeded") retries grpc-status 4.
	RetryGRPCDeadlineExceeded
	// RetryGRPCResourceExhausted ("resource-exhausted") retries grpc-status 8.
	RetryGRPCResourceExhausted
	// RetryGRPCInternal ("internal") retries grpc-status 13.
	RetryGRPCInternal
	// RetryGRPCUnavailable ("unavailable") retries grpc-status 14.
	RetryGRPCUnavailable
)

// grpcRetryStatus maps each gRPC retry condition to the grpc-status it retries.
var grpcRetryStatus = map[RetryOn]int{
	RetryGRPCCancelled:         1,
	RetryGRPCDeadlineExceeded:  4,
	RetryGRPCResourceExhausted: 8,
	RetryGRPCInternal:          13,
	RetryGRPCUnavailable:       14,
}
