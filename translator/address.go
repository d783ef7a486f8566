package translator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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
// older Gateway holds it; the others get a free IP found from a hash of their node id
// (freePoolAddress). The translator stays pure: the status it reads is part of its input.
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
	for _, gw := range rest {
		ip, ok := t.freePoolAddress(gw.node, taken)
		if !ok {
			setAddressNotProgrammed(gw, gwapiv1.GatewayReasonAddressNotAssigned,
				fmt.Sprintf("no free IP left in the address pool %s", t.addressPool))
			continue
		}
		taken[ip] = true
		gw.addresses = []string{ip.String()}
	}
}

// freePoolAddress picks a free IP of the pool for the Gateway of proxy node node: the first
// free one from a place that hashes the node id. Starting from the hash rather than from the
// pool's first IP keeps a Gateway's IP from depending on which other Gateways exist: when an
// older Gateway goes away before this one's status (which makes its IP sticky) has been read
// back, this one still gets the same IP unless the two had collided. The network address of
// a pool larger than /31 (offset 0) is not handed out.
func (t *translation) freePoolAddress(node string, taken map[netip.Addr]bool) (netip.Addr, bool) {
	base := t.addressPool.Masked().Addr()
	hostBits := base.BitLen() - t.addressPool.Bits()
	size := uint64(1) << min(hostBits, 32) // a larger IPv6 pool uses its first 2^32 IPs
	first := uint64(0)
	if hostBits > 1 {
		first = 1
	}
	usable := size - first
	h := fnv.New64a()
	_, _ = h.Write([]byte(node))
	start := h.Sum64() % usable
	// At most len(taken) IPs of the pool are taken, so a free one is found within
	// len(taken)+1 tries, if the pool has one.
	for i := range min(usable, uint64(len(taken))+1) {
		ip := addrAt(base, first+(start+i)%usable)
		if !taken[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// addrAt returns base plus offset.
func addrAt(base netip.Addr, offset uint64) netip.Addr {
	b := base.As16()
	lo := binary.BigEndian.Uint64(b[8:])
	sum := lo + offset
	binary.BigEndian.PutUint64(b[8:], sum)
	if sum < lo { // carry into the high half
		binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+1)
	}
	ip := netip.AddrFrom16(b)
	if base.Is4() {
		return ip.Unmap()
	}
	return ip
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
	if errors.Is(err, errAddressNotUsable) {
		setAddressNotProgrammed(gw, gwapiv1.GatewayReasonAddressNotUsable, err.Error())
		return
	}
	gen := gw.obj.Generation
	setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), false,
		string(gwapiv1.GatewayReasonUnsupportedAddress), err.Error())
	setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionProgrammed), false,
		string(gwapiv1.GatewayReasonAddressNotUsable), err.Error())
}

// setAddressNotProgrammed sets the conditions of a Gateway that is Accepted but gets no
// address to serve on: not Programmed, for reason.
func setAddressNotProgrammed(gw *gateway, reason gwapiv1.GatewayConditionReason, msg string) {
	gen := gw.obj.Generation
	setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), true,
		string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted")
	setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionProgrammed), false,
		string(reason), msg)
}
