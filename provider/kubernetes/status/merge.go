package status

import (
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/strait-gw/strait/translator"
)

// maxRouteParents is the most parents of a route Gateway API allows.
const maxRouteParents = 32

// maxPolicyAncestors is the most ancestors of a policy Gateway API allows.
const maxPolicyAncestors = 16

// statusEqual compares two statuses of the translator.
func statusEqual(a, b any) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// mergeConditions returns want's conditions as they should be written over live's: a
// condition keeps live's lastTransitionTime when its status did not change and gets now when
// it did (the translator leaves the time zero: it is pure). A condition without an
// observedGeneration gets generation.
func mergeConditions(live, want []metav1.Condition, generation int64, now metav1.Time) []metav1.Condition {
	if len(want) == 0 {
		return nil
	}
	out := make([]metav1.Condition, len(want))
	for i, c := range want {
		if c.ObservedGeneration == 0 {
			c.ObservedGeneration = generation
		}
		c.LastTransitionTime = now
		for _, l := range live {
			if l.Type == c.Type && l.Status == c.Status && !l.LastTransitionTime.IsZero() {
				c.LastTransitionTime = l.LastTransitionTime
				break
			}
		}
		out[i] = c
	}
	return out
}

// mergeGatewayClass: a GatewayClass of Strait's controller is Strait's alone.
func mergeGatewayClass(live, want *gwapiv1.GatewayClassStatus, generation int64, now metav1.Time) gwapiv1.GatewayClassStatus {
	out := *want.DeepCopy()
	out.Conditions = mergeConditions(live.Conditions, want.Conditions, generation, now)
	return out
}

// mergeGateway: a Gateway of a Strait class is Strait's alone; listeners keep their conditions'
// transition times by listener name.
func mergeGateway(live, want *gwapiv1.GatewayStatus, generation int64, now metav1.Time) gwapiv1.GatewayStatus {
	out := *want.DeepCopy()
	out.Conditions = mergeConditions(live.Conditions, want.Conditions, generation, now)
	for i := range out.Listeners {
		l := &out.Listeners[i]
		var liveConds []metav1.Condition
		for _, ll := range live.Listeners {
			if ll.Name == l.Name {
				liveConds = ll.Conditions
				break
			}
		}
		l.Conditions = mergeConditions(liveConds, l.Conditions, generation, now)
	}
	return out
}

// mergeServiceExport: the multi-cluster services controller owns a ServiceExport's status,
// and Strait is that controller for the exports it reads.
func mergeServiceExport(live, want *mcsv1alpha1.ServiceExportStatus, generation int64, now metav1.Time) mcsv1alpha1.ServiceExportStatus {
	return mcsv1alpha1.ServiceExportStatus{Conditions: mergeConditions(live.Conditions, want.Conditions, generation, now)}
}

// mergeRoute keeps the parents of other controllers as they are and replaces Strait's with
// want's (none when want is nil).
func mergeRoute(live, want *gwapiv1.RouteStatus, generation int64, now metav1.Time) gwapiv1.RouteStatus {
	var w []gwapiv1.RouteParentStatus
	if want != nil {
		w = want.DeepCopy().Parents
	}
	parents := mergeEntries(live.Parents, w, maxRouteParents, generation, now,
		func(p *gwapiv1.RouteParentStatus) (gwapiv1.GatewayController, *gwapiv1.ParentReference, *[]metav1.Condition) {
			return p.ControllerName, &p.ParentRef, &p.Conditions
		})
	return gwapiv1.RouteStatus{Parents: parents}
}

// mergePolicy keeps the ancestors of other controllers as they are and replaces Strait's with
// want's (none when want is nil).
func mergePolicy(live, want *gwapiv1.PolicyStatus, generation int64, now metav1.Time) gwapiv1.PolicyStatus {
	var w []gwapiv1.PolicyAncestorStatus
	if want != nil {
		w = want.DeepCopy().Ancestors
	}
	ancestors := mergeEntries(live.Ancestors, w, maxPolicyAncestors, generation, now,
		func(a *gwapiv1.PolicyAncestorStatus) (gwapiv1.GatewayController, *gwapiv1.ParentReference, *[]metav1.Condition) {
			return a.ControllerName, &a.AncestorRef, &a.Conditions
		})
	return gwapiv1.PolicyStatus{Ancestors: ancestors}
}

// mergeEntries merges per-controller status entries (route parents, policy ancestors): the
// entries of other controllers first, in live's order and untouched, then want's (Strait's),
// whose conditions keep the transition times of live's Strait entry for the same reference.
// At most limit entries are kept, other controllers' first: Strait's are the ones it can
// recompute.
func mergeEntries[E any](live, want []E, limit int, generation int64, now metav1.Time,
	fields func(*E) (gwapiv1.GatewayController, *gwapiv1.ParentReference, *[]metav1.Condition)) []E {
	var out []E
	var ours []*E
	for i := range live {
		if controller, _, _ := fields(&live[i]); controller == translator.ControllerName {
			ours = append(ours, &live[i])
			continue
		}
		out = append(out, live[i])
	}
	for i := range want {
		e := &want[i]
		_, ref, conds := fields(e)
		defaultRef(ref)
		var liveConds []metav1.Condition
		for _, l := range ours {
			if _, lref, lconds := fields(l); sameRef(lref, ref) {
				liveConds = *lconds
				break
			}
		}
		*conds = mergeConditions(liveConds, *conds, generation, now)
		out = append(out, *e)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// defaultRef fills in the group and kind of a parent reference as the API server's defaulting
// does, so that what Strait writes compares equal to what it reads back.
func defaultRef(ref *gwapiv1.ParentReference) {
	if ref.Group == nil {
		g := gwapiv1.Group(gwapiv1.GroupName)
		ref.Group = &g
	}
	if ref.Kind == nil {
		k := gwapiv1.Kind("Gateway")
		ref.Kind = &k
	}
}

// sameRef compares parent references, with defaults applied to the first (from the live
// object; the second has them already).
func sameRef(live, want *gwapiv1.ParentReference) bool {
	l := *live.DeepCopy()
	defaultRef(&l)
	return reflect.DeepEqual(&l, want)
}
