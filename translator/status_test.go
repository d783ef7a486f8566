package translator_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator"
)

// TestStatusUID checks that every status names the UID of its object, so that the status
// writer can tell an object recreated under the same name from the old one.
func TestStatusUID(t *testing.T) {
	gw := poolGateway("web", 1, nil)
	gw.UID = types.UID("gateway-uid")
	in := &translator.Input{BindAddress: "0.0.0.0", Clusters: []*translator.ClusterResources{{
		Cluster:        translator.Cluster{Name: "us"},
		GatewayClasses: straitClass(),
		Gateways:       []*gwapiv1.Gateway{gw},
	}}}
	in.Clusters[0].GatewayClasses[0].UID = "class-uid"
	want := map[string]types.UID{"Gateway": "gateway-uid", "GatewayClass": "class-uid"}
	out := translator.Translate(in)
	if len(out.Statuses) != len(want) {
		t.Fatalf("%d statuses, want %d", len(out.Statuses), len(want))
	}
	for _, s := range out.Statuses {
		if s.UID != want[s.Kind] {
			t.Errorf("%s %s: UID %q, want %q", s.Kind, s.Name, s.UID, want[s.Kind])
		}
	}
}
