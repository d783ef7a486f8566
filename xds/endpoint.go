package xds

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

// overprovisioningFactor is Envoy's default, explicit so that every client (gRPC included)
// fails over at the same health: a priority keeps all its traffic while 1/1.4 (~71%) of its
// endpoints are healthy.
const overprovisioningFactor = 140

// clusterLoadAssignment builds the endpoints of a Backend, one LocalityLbEndpoints per
// locality. A locality with weight 0 would receive no traffic and is left out. Priorities keep
// their order but are renumbered 0..n-1 without gaps, because gRPC clients reject a CLA with a
// missing priority: the IR documents priorities by distance (0 own cluster, 1 same region, 2
// elsewhere), which leaves a gap when no same-region cluster has endpoints. (The translator
// happens to compact them already; this makes the published CLA right whatever the IR says.)
func clusterLoadAssignment(be *ir.Backend) *endpointv3.ClusterLoadAssignment {
	var priorities []uint32
	for _, loc := range be.Localities {
		if loc.Weight > 0 && !slices.Contains(priorities, loc.Priority) {
			priorities = append(priorities, loc.Priority)
		}
	}
	slices.Sort(priorities)

	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: be.Name,
		Policy: &endpointv3.ClusterLoadAssignment_Policy{
			OverprovisioningFactor: wrapperspb.UInt32(overprovisioningFactor),
		},
	}
	for _, loc := range be.Localities {
		if loc.Weight == 0 {
			continue
		}
		priority, _ := slices.BinarySearch(priorities, loc.Priority)
		lle := &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: loc.Region, Zone: loc.Zone, SubZone: loc.Cluster},
			Priority:            uint32(priority),
			LoadBalancingWeight: wrapperspb.UInt32(loc.Weight),
		}
		for _, ep := range loc.Endpoints {
			health := corev3.HealthStatus_HEALTHY
			if !ep.Ready {
				health = corev3.HealthStatus_UNHEALTHY
			}
			lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: socketAddress(ep.Address, ep.Port),
				}},
				HealthStatus: health,
			})
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla
}
