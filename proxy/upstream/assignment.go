package upstream

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// maxPriority bounds priority levels, which are dense slices indexed by priority.
const maxPriority = 127

// compileAssignment reads a ClusterLoadAssignment into s: endpoints with their priority,
// locality and weights, and the assignment's policy.
func compileAssignment(s *clusterSpec, cla *endpointv3.ClusterLoadAssignment) error {
	s.overprovisioning = defaultOverprovisioning
	if cla == nil {
		return nil
	}
	if err := onlyFields(cla, "cluster_name", "endpoints", "policy"); err != nil {
		return err
	}
	if err := onlyFields(cla.GetPolicy(), "overprovisioning_factor", "weighted_priority_health"); err != nil {
		return err
	}
	if f := cla.GetPolicy().GetOverprovisioningFactor(); f != nil {
		if f.GetValue() == 0 {
			return fmt.Errorf("overprovisioning_factor must be positive")
		}
		s.overprovisioning = f.GetValue()
	}
	s.weightedPriorityHealth = cla.GetPolicy().GetWeightedPriorityHealth()

	type levelLocality struct {
		priority uint32
		locality Locality
	}
	seenLocality := make(map[levelLocality]bool)
	seenAddr := make(map[string]bool)
	for _, lle := range cla.GetEndpoints() {
		if err := onlyFields(lle, "locality", "lb_endpoints", "load_balancing_weight", "priority"); err != nil {
			return err
		}
		if err := onlyFields(lle.GetLocality(), "region", "zone", "sub_zone"); err != nil {
			return err
		}
		loc := Locality{Region: lle.GetLocality().GetRegion(), Zone: lle.GetLocality().GetZone(), SubZone: lle.GetLocality().GetSubZone()}
		if lle.GetPriority() > maxPriority {
			return fmt.Errorf("locality %v: priority %d exceeds %d", loc, lle.GetPriority(), maxPriority)
		}
		key := levelLocality{lle.GetPriority(), loc}
		if seenLocality[key] {
			return fmt.Errorf("locality %v appears twice in priority %d", loc, lle.GetPriority())
		}
		seenLocality[key] = true
		for _, lbe := range lle.GetLbEndpoints() {
			ep, err := compileEndpoint(lbe)
			if err != nil {
				return fmt.Errorf("locality %v: %w", loc, err)
			}
			if seenAddr[ep.addr] {
				return fmt.Errorf("endpoint %s appears twice", ep.addr)
			}
			seenAddr[ep.addr] = true
			ep.priority = lle.GetPriority()
			ep.locality = loc
			ep.localityWeight = lle.GetLoadBalancingWeight().GetValue()
			s.endpoints = append(s.endpoints, ep)
		}
	}
	return nil
}

func compileEndpoint(lbe *endpointv3.LbEndpoint) (endpointSpec, error) {
	if err := onlyFields(lbe, "endpoint", "health_status", "load_balancing_weight"); err != nil {
		return endpointSpec{}, err
	}
	ep := lbe.GetEndpoint()
	if err := onlyFields(ep, "address", "health_check_config"); err != nil {
		return endpointSpec{}, err
	}
	if err := onlyFields(ep.GetHealthCheckConfig(), "port_value"); err != nil {
		return endpointSpec{}, err
	}
	sa := ep.GetAddress().GetSocketAddress()
	if sa == nil {
		return endpointSpec{}, fmt.Errorf("endpoint %v: only socket addresses are supported", ep.GetAddress())
	}
	if err := onlyFields(sa, "protocol", "address", "port_value"); err != nil {
		return endpointSpec{}, err
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil || ip.Zone() != "" {
		return endpointSpec{}, fmt.Errorf("endpoint address %q is not an IP address", sa.GetAddress())
	}
	if sa.GetProtocol() != corev3.SocketAddress_TCP || sa.GetPortValue() == 0 || sa.GetPortValue() > 65535 {
		return endpointSpec{}, fmt.Errorf("endpoint %s: want a TCP port in 1..65535, got %s %d", ip, sa.GetProtocol(), sa.GetPortValue())
	}
	spec := endpointSpec{
		addr:   netip.AddrPortFrom(ip, uint16(sa.GetPortValue())).String(),
		weight: 1,
		health: edsHealthy,
	}
	spec.checkAddr = spec.addr
	if p := ep.GetHealthCheckConfig().GetPortValue(); p != 0 {
		if p > 65535 {
			return endpointSpec{}, fmt.Errorf("endpoint %s: health check port %d", spec.addr, p)
		}
		spec.checkAddr = net.JoinHostPort(ip.String(), strconv.FormatUint(uint64(p), 10))
	}
	if w := lbe.GetLoadBalancingWeight(); w != nil {
		if w.GetValue() == 0 {
			return endpointSpec{}, fmt.Errorf("endpoint %s: load_balancing_weight must be positive", spec.addr)
		}
		spec.weight = w.GetValue()
	}
	switch lbe.GetHealthStatus() {
	case corev3.HealthStatus_UNKNOWN, corev3.HealthStatus_HEALTHY:
	case corev3.HealthStatus_DEGRADED:
		spec.health = edsDegraded
	default: // UNHEALTHY, DRAINING, TIMEOUT
		spec.health = edsUnhealthy
	}
	return spec, nil
}
