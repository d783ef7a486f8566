package translator

import (
	"fmt"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ProxyReport is what the proxies serving one Gateway (one xDS node) report to the control
// plane that serves them.
type ProxyReport struct {
	// Proxies is the number of proxies connected as the Gateway's node.
	Proxies int `json:"proxies"`
	// Current is how many of them accepted the Gateway's current listeners.
	Current int `json:"current"`
	// Addresses are the addresses the proxies advertise, sorted, without duplicates.
	Addresses []string `json:"addresses,omitempty"`
	// Rejection is a proxy's rejection of the current listeners, nil if none rejected them.
	Rejection *Rejection `json:"rejection,omitempty"`
}

// Rejection is a proxy's NACK of a Gateway's listeners.
type Rejection struct {
	// AddressNotUsable says the proxy could not bind an address of the Gateway.
	AddressNotUsable bool   `json:"addressNotUsable,omitempty"`
	Message          string `json:"message"`
}

// WithProxyReports returns statuses with each Gateway's Programmed condition following what
// its proxies report, for a Gateway that translation found programmable: True once every
// connected proxy runs its current listeners, False (Pending) while none is connected or some
// have not yet applied them, False (AddressNotUsable or Invalid) when a proxy rejected them.
// A Gateway with no address in its status (it names none and its listeners bind the
// unspecified address) gets the addresses its proxies advertise. statuses is not modified:
// changed Gateway statuses are copies.
func WithProxyReports(statuses []Status, report func(node string) ProxyReport) []Status {
	out := slices.Clone(statuses)
	for i, st := range out {
		gs, ok := st.Status.(*gwapiv1.GatewayStatus)
		if st.Kind != kindGateway || !ok {
			continue
		}
		programmed := meta.FindStatusCondition(gs.Conditions, string(gwapiv1.GatewayConditionProgrammed))
		if programmed == nil || programmed.Status != metav1.ConditionTrue {
			continue // translation already says why not
		}
		node := nodeID(st.Cluster, st.Namespace, st.Name)
		r := report(node)
		next := gs.DeepCopy()
		ok, reason, msg := proxyProgrammed(node, r)
		setCondition(&next.Conditions, programmed.ObservedGeneration, string(gwapiv1.GatewayConditionProgrammed), ok, reason, msg)
		if len(next.Addresses) == 0 {
			for _, a := range r.Addresses {
				addrType := gwapiv1.HostnameAddressType
				if _, err := netip.ParseAddr(a); err == nil {
					addrType = gwapiv1.IPAddressType
				}
				next.Addresses = append(next.Addresses, gwapiv1.GatewayStatusAddress{Type: &addrType, Value: a})
			}
		}
		out[i].Status = next
	}
	return out
}

// proxyProgrammed is the Programmed condition of a Gateway that translation accepted, from
// what its proxies report.
func proxyProgrammed(node string, r ProxyReport) (ok bool, reason, msg string) {
	switch {
	case r.Proxies == 0:
		return false, string(gwapiv1.GatewayReasonPending),
			fmt.Sprintf("Waiting for a proxy: none is connected as node %s", node)
	case r.Rejection != nil && r.Rejection.AddressNotUsable:
		return false, string(gwapiv1.GatewayReasonAddressNotUsable), "A proxy cannot use the Gateway's address: " + r.Rejection.Message
	case r.Rejection != nil:
		return false, string(gwapiv1.GatewayReasonInvalid), "A proxy rejected the configuration: " + r.Rejection.Message
	case r.Current < r.Proxies:
		return false, string(gwapiv1.GatewayReasonPending),
			fmt.Sprintf("Waiting for proxies to apply the configuration: %d of %d have", r.Current, r.Proxies)
	}
	return true, string(gwapiv1.GatewayReasonProgrammed), fmt.Sprintf("Gateway is programmed: every connected proxy (%d) runs its configuration", r.Proxies)
}
