package translator_test

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator"
)

func gatewayStatus(programmed metav1.ConditionStatus, addresses ...string) *gwapiv1.GatewayStatus {
	st := &gwapiv1.GatewayStatus{Conditions: []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 3},
		{Type: "Programmed", Status: programmed, Reason: "Programmed", ObservedGeneration: 3},
	}}
	ipType := gwapiv1.IPAddressType
	for _, a := range addresses {
		st.Addresses = append(st.Addresses, gwapiv1.GatewayStatusAddress{Type: &ipType, Value: a})
	}
	return st
}

func TestWithProxyReports(t *testing.T) {
	cases := []struct {
		name          string
		translated    *gwapiv1.GatewayStatus
		report        translator.ProxyReport
		wantStatus    metav1.ConditionStatus
		wantReason    string
		wantAddresses []string
	}{
		{
			name:       "no proxy connected",
			translated: gatewayStatus(metav1.ConditionTrue, "10.0.0.1"),
			wantStatus: metav1.ConditionFalse, wantReason: "Pending", wantAddresses: []string{"10.0.0.1"},
		},
		{
			name:       "every proxy runs the current listeners",
			translated: gatewayStatus(metav1.ConditionTrue, "10.0.0.1"),
			report:     translator.ProxyReport{Proxies: 2, Current: 2, Addresses: []string{"192.0.2.7"}},
			wantStatus: metav1.ConditionTrue, wantReason: "Programmed", wantAddresses: []string{"10.0.0.1"},
		},
		{
			name:       "one of two proxies has not applied them yet",
			translated: gatewayStatus(metav1.ConditionTrue),
			report:     translator.ProxyReport{Proxies: 2, Current: 1, Addresses: []string{"192.0.2.7", "192.0.2.8"}},
			wantStatus: metav1.ConditionFalse, wantReason: "Pending", wantAddresses: []string{"192.0.2.7", "192.0.2.8"},
		},
		{
			name:       "a proxy cannot bind the address",
			translated: gatewayStatus(metav1.ConditionTrue, "10.0.0.1"),
			report:     translator.ProxyReport{Proxies: 1, Rejection: &translator.Rejection{AddressNotUsable: true, Message: "bind: cannot assign requested address"}},
			wantStatus: metav1.ConditionFalse, wantReason: "AddressNotUsable", wantAddresses: []string{"10.0.0.1"},
		},
		{
			name:       "a proxy rejected the listeners",
			translated: gatewayStatus(metav1.ConditionTrue),
			report:     translator.ProxyReport{Proxies: 1, Rejection: &translator.Rejection{Message: "unknown filter"}},
			wantStatus: metav1.ConditionFalse, wantReason: "Invalid",
		},
		{
			name:       "translation found it not programmable",
			translated: gatewayStatus(metav1.ConditionFalse),
			report:     translator.ProxyReport{Proxies: 1, Current: 1, Addresses: []string{"192.0.2.7"}},
			wantStatus: metav1.ConditionFalse, wantReason: "Programmed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []translator.Status{
				{Cluster: "us", Kind: "Gateway", Namespace: "default", Name: "web", Status: tc.translated},
				{Cluster: "us", Kind: "HTTPRoute", Namespace: "default", Name: "web", Status: &gwapiv1.HTTPRouteStatus{}},
			}
			before := tc.translated.DeepCopy()
			var asked []string
			out := translator.WithProxyReports(in, func(node string) translator.ProxyReport {
				asked = append(asked, node)
				return tc.report
			})
			if tc.translated.Conditions[1].Status == metav1.ConditionTrue && (len(asked) != 1 || asked[0] != "us/default/web") {
				t.Errorf("reports asked for %v, want [us/default/web]", asked)
			}
			gs := out[0].Status.(*gwapiv1.GatewayStatus)
			c := meta.FindStatusCondition(gs.Conditions, "Programmed")
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.ObservedGeneration != 3 {
				t.Errorf("Programmed = %s/%s (generation %d, %q), want %s/%s (generation 3)",
					c.Status, c.Reason, c.ObservedGeneration, c.Message, tc.wantStatus, tc.wantReason)
			}
			var addrs []string
			for _, a := range gs.Addresses {
				addrs = append(addrs, a.Value)
			}
			if !slices.Equal(addrs, tc.wantAddresses) {
				t.Errorf("addresses = %v, want %v", addrs, tc.wantAddresses)
			}
			if out[1] != in[1] {
				t.Errorf("a route's status changed: %+v", out[1])
			}
			if c := meta.FindStatusCondition(tc.translated.Conditions, "Programmed"); c.Reason != before.Conditions[1].Reason || len(tc.translated.Addresses) != len(before.Addresses) {
				t.Errorf("the translator's status was modified: %+v", tc.translated)
			}
		})
	}
}
