package xds

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

// defaultConnectTimeout bounds a TCP (and TLS) connection to an endpoint.
const defaultConnectTimeout = 10 * time.Second

// defaultOutlierDetection ejects an endpoint after 3 consecutive gateway failures (connect
// failures, 502, 503, 504) or 5 consecutive 5xx, for 30s and longer each time it is ejected
// again. Any share of a locality may be ejected: when every endpoint of the Gateway's own
// cluster is down, traffic fails over to the next priority instead of being held back by
// Envoy's default cap of 10%. BackendTrafficPolicy's defaults are these values.
var defaultOutlierDetection = outlierDetection(&ir.OutlierDetection{
	Consecutive5xx:           5,
	ConsecutiveGatewayErrors: 3,
	Interval:                 5 * time.Second,
	BaseEjectionTime:         30 * time.Second,
	MaxEjectionPercent:       100,
})

// setBackendPolicies sets what a BackendTrafficPolicy configures on the cluster of a Backend,
// or the defaults where it sets nothing: no active health checks, outlier detection on
// consecutive errors, the proxy's default circuit breakers, a 10s connect timeout, and
// locality-weighted round robin.
//
// Backends of a route with session affinity need a hash-based algorithm: they use the
// policy's RingHash or Maglev if it sets one and a ring hash otherwise (session persistence
// asks for correctness, the algorithm only for a spread). Envoy's hash-based algorithms ignore
// locality weights, so those clusters keep priorities and failover but spread load by
// endpoint within a priority.
func (b *builder) setBackendPolicies(c *clusterv3.Cluster, be *ir.Backend) error {
	c.ConnectTimeout = durationpb.New(defaultConnectTimeout)
	if be.ConnectTimeout > 0 {
		c.ConnectTimeout = durationpb.New(be.ConnectTimeout)
	}
	c.OutlierDetection = defaultOutlierDetection
	if be.OutlierDetection != nil {
		c.OutlierDetection = outlierDetection(be.OutlierDetection)
	}
	if hc := be.HealthCheck; hc != nil {
		check, err := healthCheck(hc, be.AppProtocol)
		if err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		c.HealthChecks = []*corev3.HealthCheck{check}
	}
	if cb := be.CircuitBreaker; cb != nil {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     wrapperspb.UInt32(cb.MaxConnections),
			MaxPendingRequests: wrapperspb.UInt32(cb.MaxPendingRequests),
			MaxRequests:        wrapperspb.UInt32(cb.MaxParallelRequests),
			MaxRetries:         wrapperspb.UInt32(cb.MaxParallelRetries),
		}}}
	}

	lb := ir.LoadBalancerRoundRobin
	if be.LoadBalancer != nil {
		lb = be.LoadBalancer.Type
	}
	if b.affinity[be.Name] && lb != ir.LoadBalancerMaglev {
		lb = ir.LoadBalancerRingHash
	}
	switch lb {
	case ir.LoadBalancerRoundRobin:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case ir.LoadBalancerLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case ir.LoadBalancerRandom:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	case ir.LoadBalancerRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		return nil
	case ir.LoadBalancerMaglev:
		c.LbPolicy = clusterv3.Cluster_MAGLEV
		return nil
	default:
		return fmt.Errorf("unknown load balancer type %q", lb)
	}
	c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
		LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
			LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
		},
	}
	return nil
}

func outlierDetection(od *ir.OutlierDetection) *clusterv3.OutlierDetection {
	return &clusterv3.OutlierDetection{
		Consecutive_5Xx:                    wrapperspb.UInt32(od.Consecutive5xx),
		ConsecutiveGatewayFailure:          wrapperspb.UInt32(od.ConsecutiveGatewayErrors),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(100),
		Interval:                           durationpb.New(od.Interval),
		BaseEjectionTime:                   durationpb.New(od.BaseEjectionTime),
		MaxEjectionPercent:                 wrapperspb.UInt32(od.MaxEjectionPercent),
	}
}

// healthCheck maps an active health check. HTTP checks of a backend spoken to in HTTP/2
// (h2c) speak HTTP/2 too; expected statuses become Envoy's half-open ranges, consecutive
// codes merged.
func healthCheck(hc *ir.HealthCheck, app ir.AppProtocol) (*corev3.HealthCheck, error) {
	if hc.Interval <= 0 || hc.Timeout <= 0 {
		return nil, fmt.Errorf("interval %v and timeout %v must be positive", hc.Interval, hc.Timeout)
	}
	out := &corev3.HealthCheck{
		Timeout:            durationpb.New(hc.Timeout),
		Interval:           durationpb.New(hc.Interval),
		UnhealthyThreshold: wrapperspb.UInt32(hc.UnhealthyThreshold),
		HealthyThreshold:   wrapperspb.UInt32(hc.HealthyThreshold),
	}
	if hc.HTTP == nil {
		out.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
		return out, nil
	}
	h := &corev3.HealthCheck_HttpHealthCheck{Host: hc.HTTP.Host, Path: hc.HTTP.Path}
	if app == ir.AppH2C {
		h.CodecClientType = typev3.CodecClientType_HTTP2
	}
	for _, code := range hc.HTTP.ExpectedStatuses {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("expected status %d is not an HTTP status", code)
		}
		if n := len(h.ExpectedStatuses); n > 0 && h.ExpectedStatuses[n-1].End == int64(code) {
			h.ExpectedStatuses[n-1].End++
			continue
		}
		h.ExpectedStatuses = append(h.ExpectedStatuses, &typev3.Int64Range{Start: int64(code), End: int64(code) + 1})
	}
	out.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h}
	return out, nil
}

// backendHashPolicies returns the hash policies of a route without session affinity of its
// own: the consistent-hash keys of its backends' RingHash or Maglev policies, each once, in
// the order of the backends. A request is hashed on all of them, so requests that agree on
// every key reach the same endpoint of whichever backend they are sent to.
func (b *builder) backendHashPolicies(r *ir.Route) ([]*routev3.RouteAction_HashPolicy, error) {
	var out []*routev3.RouteAction_HashPolicy
	seen := map[ir.SessionAffinity]bool{}
	for _, wb := range r.Backends {
		be := b.backends[wb.Backend]
		if wb.Weight == 0 || be == nil || be.LoadBalancer == nil || be.LoadBalancer.Hash == nil {
			continue
		}
		key := *be.LoadBalancer.Hash
		if seen[key] {
			continue
		}
		seen[key] = true
		hp, err := hashPolicy(&key)
		if err != nil {
			return nil, fmt.Errorf("backend %q: consistent hash: %w", wb.Backend, err)
		}
		out = append(out, hp)
	}
	return out, nil
}
