// Package router compiles Envoy v3 RouteConfiguration resources into immutable routing tables
// for Strait's edge proxy and implements, once, what acting on a matched route means.
//
// Compile turns one RouteConfiguration (the subset the xds package emits, and a little more)
// into a Table; the proxy swaps tables atomically and keeps the last good one when Compile
// fails, NACKing with its error. Anything in the resource that the proxy could not honor
// exactly (an unknown field, filter config, action, retry condition or header formatter) is
// a Compile error naming the virtual host, the route and the field: a route that silently
// behaved differently from Envoy would be worse than a rejected update.
//
// Table.Match selects the virtual host as Envoy does (exact domain, longest "*suffix",
// longest "prefix*", then "*"; the Host compared case-insensitively with any port stripped, as
// the connection manager's strip_any_host_port does) and returns the first route of that host
// whose path, header, query parameter and method conditions all hold. Paths are matched in
// their escaped form, as received, without the query string. Matching allocates nothing for
// the common request.
//
// The Route it returns carries its action (exactly one of Redirect, DirectResponse and
// Clusters) and policies, precomputed, with helpers that implement their semantics:
// PickCluster (weights), Redirect.Location, RewriteRequest (prefix and regex path rewrites,
// host rewrite), HeaderModifier.Apply, CORS.Preflight and CORS.ResponseHeaders,
// Mirror.Sample, RetryPolicy.RetriableStatus, HashKey and AffinityCookie.
//
// Where Envoy and Gateway API differ, the helpers follow Gateway API:
//   - A redirect without a scheme or port keeps the port the client's Host header named,
//     which is the listener's port as the client sees it (Envoy, after strip_any_host_port,
//     would drop it); a scheme without a port means that scheme's well-known port, and a
//     well-known port is never written.
//   - CORS answers that echo an origin carry "Vary: Origin".
package router
