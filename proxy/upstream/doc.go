// Package upstream holds the edge proxy's backend clusters: what Envoy's cluster manager does
// for the Clusters and ClusterLoadAssignments that Strait's control plane publishes.
//
// A Manager compiles a full set of clusters per update (Update) and refuses, naming the
// cluster and field, anything the proxy cannot honor: an unknown field is an error, never
// silently ignored. A Cluster keeps its identity, its endpoints their health, across updates.
//
// Requests read only atomics and an immutable snapshot per cluster, rebuilt under the
// cluster's lock whenever membership or health changes:
//
//   - Priority levels fail over with Envoy's priority load (computePriorityLoad: health ×
//     overprovisioning factor, normalized, panic below healthy_panic_threshold, total
//     panic by endpoint count) and, with locality_weighted_lb_config, localities are chosen
//     by Envoy's effective locality weight. Hash policies pick the level by hash too.
//   - One small policy type per lb_policy builds pickers: smooth weighted round robin,
//     least request (power of choices on requests in flight per weight), weighted random,
//     Envoy's ring hash and Maglev (same xxHash keys, so a hash lands where Envoy would
//     put it). Picking does not allocate.
//   - Active health checks (HTTP or TCP, a goroutine per endpoint) and outlier detection
//     (consecutive 5xx and gateway failures, success rate, failure percentage, with
//     Envoy's ejection back-off and max_ejection_percent) are kept apart; the control
//     plane's health_status is a third opinion. An endpoint is routable when none says no.
//     A connection failure counts as a 503 and a deadline as a 504 (Envoy's mapping of
//     local failures); a client that went away counts as nothing.
//   - Circuit breakers: max_requests refuses at once; an HTTP/1.1 request holds one of
//     max_connections while in flight and waits in line (max_pending_requests) for one;
//     HTTP/2 pools bound connections at dial time; DialTCP's connections count until
//     closed; max_retries is for the router (BeginRetry). Envoy's defaults apply.
//
// Connections: keep-alive HTTP/1.1 (WebSocket upgrades included: a 101 response's body is
// the connection), h2c with prior knowledge or HTTP/2 over TLS, all on net/http's Transport
// (which speaks h2c natively since Go 1.24; x/net/http2's transport now defers to it).
// Upstream TLS verifies the chain against inline or SDS roots, or the system's, and the
// certificate against the subject alt name matchers, as Envoy does; it is never unverified.
package upstream
