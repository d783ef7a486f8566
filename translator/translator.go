// Package translator turns the Gateway API resources of every member cluster into one IR proxy
// configuration per Gateway, plus the status of every object it read.
//
// Translate is a pure function: it holds no clients, mutates none of its input and returns
// statuses beside the IR instead of writing them into the objects.
package translator

import (
	"fmt"
	"net/netip"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator/ir"
)

// Output is the result of one translation.
type Output struct {
	// Proxies holds one configuration per accepted Gateway, sorted by node id.
	Proxies []*ir.Proxy `json:"proxies"`
	// Statuses holds the status Strait owns for every object it processed, sorted by cluster,
	// kind, namespace and name.
	Statuses []Status `json:"statuses"`
}

// Status is the status of one object, in the object's own status type
// (e.g. *gwapiv1.GatewayStatus, *gwapiv1.HTTPRouteStatus, *gwapiv1.PolicyStatus).
type Status struct {
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// UID is the object's metadata.uid: an object deleted and created again under the same
	// name is another object, whose status must be written even when it equals the old one's.
	UID    types.UID `json:"uid,omitempty"`
	Status any       `json:"status"`
}

// translation is the state of one Translate call.
type translation struct {
	idx      *index
	statuses map[statusKey]*Status
	// backends caches resolved backends: many routes share one Service, and resolving its
	// endpoints once keeps a translation linear in the number of routes.
	backends map[backendKey]*ir.Backend
	// trafficPolicies caches translated BackendTrafficPolicies, which many backends share.
	trafficPolicies map[*straitv1alpha1.BackendTrafficPolicy]*trafficPolicy
	// bindAddress, addressPool and sharedHost come from the Input.
	bindAddress string
	addressPool netip.Prefix
	sharedHost  bool
	// boundPorts maps "address:port" to the node id of the Gateway that binds it, on a shared
	// host.
	boundPorts map[string]string
}

type statusKey struct {
	cluster, kind, namespace, name string
}

// Translate translates the resources of every cluster. The order of the steps matters:
// GatewayClasses decide which Gateways are Strait's, Gateways decide which listeners routes can
// attach to, routes decide which backends each proxy needs, and the backends they use decide
// the status of the BackendTrafficPolicies of their cluster.
func Translate(in *Input) *Output {
	t := &translation{
		idx:      newIndex(in),
		statuses: map[statusKey]*Status{},
		backends: map[backendKey]*ir.Backend{},

		trafficPolicies: map[*straitv1alpha1.BackendTrafficPolicy]*trafficPolicy{},

		bindAddress: in.BindAddress,
		addressPool: in.AddressPool,
		sharedHost:  in.SharedHost,
		boundPorts:  map[string]string{},
	}
	out := &Output{}
	// Gateways of every cluster first: on a shared host, which listeners may bind their port
	// depends on the Gateways of the other clusters too.
	gateways := make(map[string][]*gateway, len(t.idx.order))
	var all []*gateway
	for _, name := range t.idx.order {
		ci := t.idx.clusters[name]
		gateways[name] = t.processGateways(ci, t.processGatewayClasses(ci))
		all = append(all, gateways[name]...)
	}
	t.assignAddresses(all)
	for _, name := range t.idx.order {
		t.processListeners(t.idx.clusters[name], gateways[name])
	}
	if t.sharedHost {
		t.markPortsInUse(all)
	}
	for _, name := range t.idx.order {
		ci := t.idx.clusters[name]
		t.processRoutes(ci, gateways[name])
		for _, gw := range gateways[name] {
			if p := t.buildProxy(gw); p != nil {
				out.Proxies = append(out.Proxies, p)
			}
		}
		t.finishGatewayStatuses(gateways[name])
		t.finishTrafficPolicies(ci)
		t.processServiceExports(ci)
	}
	sort.Slice(out.Proxies, func(i, j int) bool { return out.Proxies[i].Node < out.Proxies[j].Node })
	out.Statuses = t.sortedStatuses()
	return out
}

// statusOf returns the status of an object, of type T, creating it on first use. Each kind
// has one status type, so T is always the type the entry was created with.
func statusOf[T any](t *translation, cluster, kind string, obj metav1.Object) *T {
	key := statusKey{cluster, kind, obj.GetNamespace(), obj.GetName()}
	s := t.statuses[key]
	if s == nil {
		s = &Status{Cluster: cluster, Kind: kind, Namespace: key.namespace, Name: key.name, UID: obj.GetUID(), Status: new(T)}
		t.statuses[key] = s
	}
	st, ok := s.Status.(*T)
	if !ok {
		panic(fmt.Sprintf("translator: status of %s is %T, not %T", kind, s.Status, st))
	}
	return st
}

func (t *translation) sortedStatuses() []Status {
	out := make([]Status, 0, len(t.statuses))
	for _, s := range t.statuses {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}
