package translator_test

import (
	"net/netip"
	"slices"
	"strings"
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
		dynamic             bool     // instead of addrs: one free IP of the pool, not its network address
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
		name:     "free IPs of the pool",
		pool:     "127.0.20.0/24",
		gateways: []*gwapiv1.Gateway{poolGateway("b", 2, nil), poolGateway("a", 1, nil)},
		want: map[string]want{
			"a": {dynamic: true, accepted: true, programmedReason: programmed},
			"b": {dynamic: true, accepted: true, programmedReason: programmed},
		},
	}, {
		name: "a Gateway keeps the pool IP its status reports; others go around it",
		pool: "127.0.20.0/24",
		gateways: []*gwapiv1.Gateway{
			poolGateway("a", 1, nil), poolGateway("b", 2, nil, "127.0.20.1"), poolGateway("c", 3, nil, "10.0.0.1"),
		},
		want: map[string]want{
			"a": {dynamic: true, accepted: true, programmedReason: programmed},
			"b": {addrs: []string{"127.0.20.1"}, accepted: true, programmedReason: programmed},
			"c": {dynamic: true, accepted: true, programmedReason: programmed},
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
			"dynamic":  {dynamic: true, accepted: true, programmedReason: programmed},
		},
	}, {
		name:     "an exhausted pool assigns nothing",
		pool:     "127.0.20.4/31",
		gateways: []*gwapiv1.Gateway{poolGateway("a", 1, nil), poolGateway("b", 2, nil), poolGateway("c", 3, nil)},
		want: map[string]want{
			"a": {dynamic: true, accepted: true, programmedReason: programmed},
			"b": {dynamic: true, accepted: true, programmedReason: programmed},
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
			used := map[netip.Addr]bool{} // by the Gateways checked so far
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
				listening := listenerAddrs["us/default/"+s.Name]
				switch {
				case w.dynamic:
					pool := netip.MustParsePrefix(tc.pool)
					ip, err := netip.ParseAddr(strings.Join(got, ","))
					if err != nil || !pool.Contains(ip) || (pool.Bits() < 31 && ip == pool.Addr()) || used[ip] || !slices.Equal(listening, got) {
						t.Errorf("%s: status addresses %v, listener addresses %v, want one free IP of %s", s.Name, got, listening, pool)
					}
					used[ip] = true
				case !slices.Equal(got, w.addrs) || !slices.Equal(listening, w.addrs):
					t.Errorf("%s: status addresses %v, listener addresses %v, want %v", s.Name, got, listening, w.addrs)
				}
				for _, a := range got {
					used[netip.MustParseAddr(a)] = true
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

// TestAddressPoolStable checks that a Gateway whose status does not yet report its IP keeps
// it when another Gateway goes away: IPs are found from a hash of the node id, not in order.
func TestAddressPoolStable(t *testing.T) {
	translate := func(gws ...*gwapiv1.Gateway) map[string]string {
		out := translator.Translate(&translator.Input{
			AddressPool: netip.MustParsePrefix("127.20.0.0/16"),
			Clusters: []*translator.ClusterResources{{
				Cluster: translator.Cluster{Name: "us"}, GatewayClasses: straitClass(), Gateways: gws,
			}},
		})
		addrs := map[string]string{}
		for _, p := range out.Proxies {
			addrs[p.Node] = p.Listeners[0].Address
		}
		return addrs
	}
	all := translate(poolGateway("a", 1, nil), poolGateway("b", 2, nil), poolGateway("c", 3, nil))
	if len(all) != 3 || all["us/default/a"] == all["us/default/b"] || all["us/default/b"] == all["us/default/c"] || all["us/default/a"] == all["us/default/c"] {
		t.Fatalf("addresses %v, want three different ones", all)
	}
	without := translate(poolGateway("b", 2, nil), poolGateway("c", 3, nil))
	for _, node := range []string{"us/default/b", "us/default/c"} {
		if without[node] != all[node] {
			t.Errorf("%s moved from %s to %s when a went away", node, all[node], without[node])
		}
	}
}
