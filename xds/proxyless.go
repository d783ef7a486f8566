package xds

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/strait-gw/strait/translator/ir"
)

// BuildProxyless derives, from the IR and the resources Build returned for it, the variant
// served to proxyless gRPC clients of the same node (grpc-go's "xds:///host:port" resolver).
//
// A gRPC client asks for the Listener "host:port" and accepts only API listeners, so every
// exact domain of every plaintext HTTP route table becomes an API listener "<domain>:<port>"
// whose HTTP connection manager takes that table over RDS. gRPC picks the virtual host by the
// whole authority, port included, and validates route tables strictly, so the tables are
// copies in which:
//   - every domain but "*" also appears as "<domain>:<port>";
//   - path_separated_prefix, which gRPC rejects, becomes the equivalent regex;
//   - per-route CORS configuration, which gRPC rejects and browsers alone use, is dropped.
//
// Routes needing none of this are shared with the Envoy resources, as are clusters and
// endpoints. Clusters gRPC would reject are left out, and a route to such a backend fails for
// gRPC clients as a missing cluster: those that originate TLS (gRPC only takes trust roots
// from certificate providers in its own bootstrap and would reject the inline CA of the whole
// Cluster) and those whose lb_policy gRPC does not implement (RANDOM and MAGLEV, from a
// BackendTrafficPolicy). Secrets are never served to gRPC clients.
func BuildProxyless(p *ir.Proxy, envoy *Resources) (*Resources, error) {
	if p == nil || envoy == nil {
		return nil, errors.New("build proxyless xds: nil proxy or resources")
	}
	routes := make(map[string]*routev3.RouteConfiguration, len(envoy.Routes))
	for _, rc := range envoy.Routes {
		routes[rc.GetName()] = rc
	}

	res := &Resources{}
	listeners := make(map[string]bool)
	ports := make(map[string][]uint32) // route table -> ports it is served on
	for _, l := range p.Listeners {
		if l.Protocol != ir.ProtocolHTTP {
			continue
		}
		for _, c := range l.Chains {
			if c.HTTP == nil {
				continue
			}
			served := false
			for _, vh := range c.HTTP.VirtualHosts {
				for _, domain := range vh.Domains {
					if isWildcard(domain) {
						continue
					}
					name := net.JoinHostPort(domain, strconv.FormatUint(uint64(l.Port), 10))
					if listeners[name] {
						continue // the same port on another address
					}
					lis, err := apiListener(name, c.HTTP.Name)
					if err != nil {
						return nil, fmt.Errorf("listener %q: %w", name, err)
					}
					listeners[name] = true
					res.Listeners = append(res.Listeners, lis)
					served = true
				}
			}
			if served && !slices.Contains(ports[c.HTTP.Name], l.Port) {
				ports[c.HTTP.Name] = append(ports[c.HTTP.Name], l.Port)
			}
		}
	}
	for name, tablePorts := range ports {
		rc, ok := routes[name]
		if !ok {
			return nil, fmt.Errorf("route configuration %q: not among the resources built for node %q", name, p.Node)
		}
		res.Routes = append(res.Routes, grpcRouteConfiguration(rc, tablePorts))
	}

	leftOut := make(map[string]bool)
	for _, c := range envoy.Clusters {
		if c.GetTransportSocket() != nil || !grpcLBPolicies[c.GetLbPolicy()] {
			leftOut[c.GetName()] = true
			continue
		}
		res.Clusters = append(res.Clusters, c)
	}
	res.Endpoints = grpcEndpoints(envoy.Endpoints, leftOut)
	if err := res.finish(); err != nil {
		return nil, fmt.Errorf("proxyless: %w", err)
	}
	return res, nil
}

// grpcLBPolicies are the lb_policy values grpc-go accepts in a Cluster; it rejects the
// others.
var grpcLBPolicies = map[clusterv3.Cluster_LbPolicy]bool{
	clusterv3.Cluster_ROUND_ROBIN:   true,
	clusterv3.Cluster_LEAST_REQUEST: true,
	clusterv3.Cluster_RING_HASH:     true,
}

// grpcEndpoints returns the endpoints of every cluster but the left-out ones.
func grpcEndpoints(all []*endpointv3.ClusterLoadAssignment, leftOut map[string]bool) []*endpointv3.ClusterLoadAssignment {
	out := make([]*endpointv3.ClusterLoadAssignment, 0, len(all))
	for _, cla := range all {
		if !leftOut[cla.GetClusterName()] {
			out = append(out, cla)
		}
	}
	return out
}

// isWildcard reports whether a domain is "*" or "*.example.com", which no authority names.
func isWildcard(domain string) bool { return strings.HasPrefix(domain, "*") }

// apiListener is what gRPC clients take a Listener to be: an HTTP connection manager with
// RDS over ADS and the router as its only filter.
func apiListener(name, routeConfig string) (*listenerv3.Listener, error) {
	hcm, err := typedConfig(&hcmv3.HttpConnectionManager{
		StatPrefix: "grpc",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsConfigSource(),
			RouteConfigName: routeConfig,
		}},
		HttpFilters: []*hcmv3.HttpFilter{routerFilter},
	})
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm}}, nil
}

func grpcRouteConfiguration(rc *routev3.RouteConfiguration, ports []uint32) *routev3.RouteConfiguration {
	out := &routev3.RouteConfiguration{Name: rc.GetName(), ValidateClusters: rc.GetValidateClusters()}
	for _, vh := range rc.GetVirtualHosts() {
		domains := slices.Clone(vh.GetDomains())
		for _, d := range vh.GetDomains() {
			if d == "*" {
				continue
			}
			for _, port := range ports {
				domains = append(domains, d+":"+strconv.FormatUint(uint64(port), 10))
			}
		}
		routes := make([]*routev3.Route, len(vh.GetRoutes()))
		for i, r := range vh.GetRoutes() {
			routes[i] = grpcRoute(r)
		}
		out.VirtualHosts = append(out.VirtualHosts, &routev3.VirtualHost{
			Name:    vh.GetName(),
			Domains: domains,
			Routes:  routes,
		})
	}
	return out
}

// grpcRoute returns r itself when gRPC accepts it, else a copy it accepts.
func grpcRoute(r *routev3.Route) *routev3.Route {
	prefix := r.GetMatch().GetPathSeparatedPrefix()
	if prefix == "" && len(r.GetTypedPerFilterConfig()) == 0 {
		return r
	}
	out := proto.Clone(r).(*routev3.Route)
	out.TypedPerFilterConfig = nil
	if prefix != "" {
		out.Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
			Regex: regexp.QuoteMeta(prefix) + "(/.*)?",
		}}
	}
	return out
}
