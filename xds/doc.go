// Package xds turns the IR of one proxy node into Envoy v3 xDS resources and serves them over
// ADS, state of the world and delta, and over the per-type discovery services.
//
// # Resources
//
// Build maps an ir.Proxy to Listeners, RouteConfigurations, Clusters, ClusterLoadAssignments
// and Secrets, one file per resource (listener.go, route.go, cluster.go, endpoint.go,
// secret.go). Every resource passes its ValidateAll, and so does every message packed into an
// Any, which validation would not otherwise look into. Listeners reference route tables over
// RDS and certificates over SDS, clusters their endpoints over EDS, all on the ADS stream, so
// a route, certificate or endpoint change does not touch a listener.
//
// A share of traffic whose backend is invalid goes to a cluster name that is never published,
// with the route answering a missing cluster with 500 (see invalidBackendCluster); a route
// with no valid backend is a direct 500.
//
// # Proxyless gRPC
//
// A client whose node metadata sets ProxylessMetadataKey is served a variant of its node's
// configuration (BuildProxyless): API listeners named "<host>:<port>" and route tables that
// grpc-go accepts, sharing clusters and endpoints with the proxy's.
//
// # Snapshots and versions
//
// Server keeps one snapshot per node id and one per node id's proxyless variant. Each resource
// type has its own version, a hash of its resources' content, and each resource its own delta
// version, a hash of itself; an unchanged type keeps its version and no client is sent it
// again, whatever path produced it. Update builds, validates, checks consistency and publishes;
// a node that fails keeps its last good snapshot. UpdateEndpoints is the endpoint fast path:
// it rebuilds the ClusterLoadAssignments only and republishes them with the node's previous
// resources of every other type, as they were, versions included.
package xds
