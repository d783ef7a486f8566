package translator

import (
	"errors"
	"fmt"
	"net/netip"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// errAddressNotUsable is a spec.addresses IP of the right type that Strait cannot serve on:
// outside the address pool, or already another Gateway's. The Gateway stays Accepted but is
// not Programmed.
var errAddressNotUsable = errors.New("address not usable")

// assignAddresses gives every Gateway the IPs its listeners bind to, in the order of gws
// (oldest first within a cluster, so that the older of two Gateways keeps a contested IP).
//
// Without an address pool a Gateway binds to its spec.addresses, or to the bind address
// when it names none. With a pool, every Gateway gets IPs of its own, as a load-balancer
// IPAM would give them: spec.addresses must be free IPs of the pool, and a Gateway that
// names none gets one. To keep that IP stable across translations (a deleted Gateway must
// not shift the others), a Gateway keeps the pool IP its status already reports, if no
// older Gateway holds it; the others get the lowest free IP. The translator stays pure:
// the status it reads is part of its input.
func (t *translation) assignAddresses(gws []*gateway) {
	taken := map[netip.Addr]bool{}
	var unnamed []*gateway
	for _, gw := range gws {
		if len(gw.obj.Spec.Addresses) == 0 {
			if t.addressPool.IsValid() {
				unnamed = append(unnamed, gw)
			} else {
				gw.addresses = []string{t.bindAddress}
			}
			continue
		}
		addrs, err := t.specAddresses(gw.obj, taken)
		if err != nil {
			setAddressError(gw, err)
			continue
		}
		for _, a := range addrs {
			taken[a] = true
			gw.addresses = append(gw.addresses, a.String())
		}
	}
	if len(unnamed) == 0 {
		return
	}
	var rest []*gateway
	for _, gw := range unnamed {
		if a, ok := t.reportedPoolAddress(gw.obj, taken); ok {
			taken[a] = true
			gw.addresses = []string{a.String()}
			continue
		}
		rest = append(rest, gw)
	}
	next := t.addressPool.Masked().Addr()
	if t.addressPool.Bits() < next.BitLen()-1 {
		next = next.Next() // the network address of a /30 or larger pool is not handed out
	}
	for _, gw := range rest {
		for t.addressPool.Contains(next) && taken[next] {
			next = next.Next()
		}
		if !t.addressPool.Contains(next) {
			setCondition(&gw.status.Conditions, gw.obj.Generation, string(gwapiv1.GatewayConditionAccepted), true,
				string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted")
			setCondition(&gw.status.Conditions, gw.obj.Generation, string(gwapiv1.GatewayConditionProgrammed), false,
				string(gwapiv1.GatewayReasonAddressNotAssigned), fmt.Sprintf("no free IP left in the address pool %s", t.addressPool))
			continue
		}
		taken[next] = true
		gw.addresses = []string{next.String()}
	}
}

// specAddresses validates a Gateway's spec.addresses: IPs only, and with an address pool,
// free IPs of the pool.
func (t *translation) specAddresses(gw *gwapiv1.Gateway, taken map[netip.Addr]bool) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, a := range gw.Spec.Addresses {
		if a.Type != nil && *a.Type != gwapiv1.IPAddressType {
			return nil, fmt.Errorf("address type %q is not supported, only IPAddress", *a.Type)
		}
		ip, err := netip.ParseAddr(a.Value)
		if err != nil {
			return nil, fmt.Errorf("address %q is not an IP address", a.Value)
		}
		if t.addressPool.IsValid() {
			if !t.addressPool.Contains(ip) {
				return nil, fmt.Errorf("%w: %s is outside the address pool %s", errAddressNotUsable, ip, t.addressPool)
			}
			if taken[ip] {
				return nil, fmt.Errorf("%w: %s is in use by another Gateway", errAddressNotUsable, ip)
			}
		}
		addrs = append(addrs, ip)
	}
	return addrs, nil
}

// reportedPoolAddress is the pool IP the Gateway's status reports, if it is free.
func (t *translation) reportedPoolAddress(gw *gwapiv1.Gateway, taken map[netip.Addr]bool) (netip.Addr, bool) {
	for _, a := range gw.Status.Addresses {
		if a.Type != nil && *a.Type != gwapiv1.IPAddressType {
			continue
		}
		ip, err := netip.ParseAddr(a.Value)
		if err == nil && t.addressPool.Contains(ip) && !taken[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// setAddressError sets the conditions of a Gateway whose spec.addresses cannot be used: an
// unsupported address is not Accepted; a supported one that is not usable is Accepted but
// not Programmed.
func setAddressError(gw *gateway, err error) {
	gen := gw.obj.Generation
	if errors.Is(err, errAddressNotUsable) {
		setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), true,
			string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted")
	} else {
		setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), false,
			string(gwapiv1.GatewayReasonUnsupportedAddress), err.Error())
	}
	setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionProgrammed), false,
		string(gwapiv1.GatewayReasonAddressNotUsable), err.Error())
}
