package translator_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator"
)

// poolGateway is a Gateway of class strait created at minute age, with one HTTP listener,
// spec addresses spec and status addresses reported.
func poolGateway(name string, age int, spec []gwapiv1.GatewaySpecAddress, reported ...string) *gwapiv1.Gateway {
	gw := &gwapiv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Generation: 1,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, age, 0, 0, time.UTC))},
		Spec: gwapiv1.GatewaySpec{
			GatewayClassName: "strait",
			Addresses:        spec,
			Listeners:        []gwapiv1.Listener{{Name: "http", Port: 80, Protocol: gwapiv1.HTTPProtocolType}},
		},
	}
	for _, a := range reported {
		gw.Status.Addresses = append(gw.Status.Addresses, gwapiv1.GatewayStatusAddress{Type: ptr.To(gwapiv1.IPAddressType), Value: a})
	}
	return gw
}

// straitClass is the GatewayClass strait of Strait's controller.
func straitClass() []*gwapiv1.GatewayClass {
	return []*gwapiv1.GatewayClass{{
		ObjectMeta: metav1.ObjectMeta{Name: "strait"},
		Spec:       gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName},
	}}
}

func ipAddress(ip string) gwapiv1.GatewaySpecAddress {
	return gwapiv1.GatewaySpecAddress{Type: ptr.To(gwapiv1.IPAddressType), Value: ip}
}

// TestAddressPool checks which IPs Gateways get from an address pool, and the conditions of
// those that get none.
func TestAddressPool(t *testing.T) {
	type want struct {
		addrs               []string // status.addresses and the proxy's listener addresses
		accepted            bool
		programmedReason    string
		acceptedReasonFalse string
	}
	programmed := string(gwapiv1.GatewayReasonProgrammed)
	cases := []struct {
		name     string
		pool     string
		gateways []*gwapiv1.Gateway
		want     map[string]want
	}{{
		name:     "lowest free IPs, oldest first, network address skipped",
		pool:     "127.0.20.0/24",
		gateways: []*gwapiv1.Gateway{poolGateway("b", 2, nil), poolGateway("a", 1, nil)},
		want: map[string]want{
			"a": {addrs: []string{"127.0.20.1"}, accepted: true, programmedReason: programmed},
			"b": {addrs: []string{"127.0.20.2"}, accepted: true, programmedReason: programmed},
		},
	}, {
		name: "a Gateway keeps the pool IP its status reports; others go around it",
		pool: "127.0.20.0/24",
		gateways: []*gwapiv1.Gateway{
			poolGateway("a", 1, nil), poolGateway("b", 2, nil, "127.0.20.1"), poolGateway("c", 3, nil, "10.0.0.1"),
		},
		want: map[string]want{
			"a": {addrs: []string{"127.0.20.2"}, accepted: true, programmedReason: programmed},
			"b": {addrs: []string{"127.0.20.1"}, accepted: true, programmedReason: programmed},
			"c": {addrs: []string{"127.0.20.3"}, accepted: true, programmedReason: programmed},
		},
	}, {
		name: "spec addresses must be free pool IPs",
		pool: "127.0.20.0/24",
		gateways: []*gwapiv1.Gateway{
			poolGateway("static", 1, []gwapiv1.GatewaySpecAddress{ipAddress("127.0.20.1")}),
			poolGateway("outside", 2, []gwapiv1.GatewaySpecAddress{ipAddress("192.0.2.1")}),
			poolGateway("taken", 3, []gwapiv1.GatewaySpecAddress{ipAddress("127.0.20.1")}),
			poolGateway("hostname", 4, []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.HostnameAddressType), Value: "gw.example"}}),
			poolGateway("dynamic", 5, nil),
		},
		want: map[string]want{
			"static":   {addrs: []string{"127.0.20.1"}, accepted: true, programmedReason: programmed},
			"outside":  {accepted: true, programmedReason: string(gwapiv1.GatewayReasonAddressNotUsable)},
			"taken":    {accepted: true, programmedReason: string(gwapiv1.GatewayReasonAddressNotUsable)},
			"hostname": {acceptedReasonFalse: string(gwapiv1.GatewayReasonUnsupportedAddress), programmedReason: string(gwapiv1.GatewayReasonAddressNotUsable)},
			"dynamic":  {addrs: []string{"127.0.20.2"}, accepted: true, programmedReason: programmed},
		},
	}, {
		name:     "an exhausted pool assigns nothing",
		pool:     "127.0.20.4/31",
		gateways: []*gwapiv1.Gateway{poolGateway("a", 1, nil), poolGateway("b", 2, nil), poolGateway("c", 3, nil)},
		want: map[string]want{
			"a": {addrs: []string{"127.0.20.4"}, accepted: true, programmedReason: programmed},
			"b": {addrs: []string{"127.0.20.5"}, accepted: true, programmedReason: programmed},
			"c": {accepted: true, programmedReason: string(gwapiv1.GatewayReasonAddressNotAssigned)},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &translator.Input{
				BindAddress: "0.0.0.0",
				AddressPool: netip.MustParsePrefix(tc.pool),
				Clusters: []*translator.ClusterResources{{
					Cluster:        translator.Cluster{Name: "us"},
					GatewayClasses: straitClass(),
					Gateways:       tc.gateways,
				}},
			}
			out := translator.Translate(in)
			listenerAddrs := map[string][]string{}
			for _, p := range out.Proxies {
				for _, l := range p.Listeners {
					listenerAddrs[p.Node] = append(listenerAddrs[p.Node], l.Address)
				}
			}
			seen := 0
			for _, s := range out.Statuses {
				if s.Kind != "Gateway" {
					continue
				}
				seen++
				w := tc.want[s.Name]
				st := s.Status.(*gwapiv1.GatewayStatus)
				var got []string
				for _, a := range st.Addresses {
					got = append(got, a.Value)
				}
				if !slices.Equal(got, w.addrs) || !slices.Equal(listenerAddrs["us/default/"+s.Name], w.addrs) {
					t.Errorf("%s: status addresses %v, listener addresses %v, want %v", s.Name, got, listenerAddrs["us/default/"+s.Name], w.addrs)
				}
				acc := meta.FindStatusCondition(st.Conditions, string(gwapiv1.GatewayConditionAccepted))
				if acc == nil || (acc.Status == metav1.ConditionTrue) != w.accepted || (!w.accepted && acc.Reason != w.acceptedReasonFalse) {
					t.Errorf("%s: Accepted %+v, want accepted=%v reason %q", s.Name, acc, w.accepted, w.acceptedReasonFalse)
				}
				prog := meta.FindStatusCondition(st.Conditions, string(gwapiv1.GatewayConditionProgrammed))
				if prog == nil || prog.Reason != w.programmedReason || (prog.Status == metav1.ConditionTrue) != (w.programmedReason == programmed) {
					t.Errorf("%s: Programmed %+v, want reason %s", s.Name, prog, w.programmedReason)
				}
			}
			if seen != len(tc.want) {
				t.Errorf("%d Gateway statuses, want %d", seen, len(tc.want))
			}
		})
	}
}
