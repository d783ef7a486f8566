package translator

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// This file holds what every policy attached to backends (BackendTLSPolicy,
// BackendTrafficPolicy) shares: which policy applies to a backend, and the ancestors of its
// status.

// policyObject is a policy: an object whose age and name decide conflicts.
type policyObject interface {
	comparable
	metav1.Object
}

// attachedPolicy returns the policy among policies (all of one cluster) that applies to port
// portName of obj, or the zero P when none does, and the policies that lose to another one
// targeting the same object and section. targets returns a policy's targetRefs.
//
// A policy naming the port in its sectionName applies before one targeting the whole object;
// that one is not in conflict, it still applies to the other ports. Among policies of the same
// target and section the oldest wins, then the first by name (GEP-713); the others are
// conflicted. Policies are matched by a scan: clusters have few of them.
func attachedPolicy[P policyObject](policies []P, targets func(P) []gwapiv1.LocalPolicyTargetReferenceWithSectionName, obj backendObject, portName string) (effective P, conflicted []P) {
	var forPort, forObject []P
	for _, p := range policies {
		if p.GetNamespace() != obj.namespace {
			continue
		}
		for _, ref := range targets(p) {
			if string(ref.Group) != obj.group || string(ref.Kind) != obj.kind || string(ref.Name) != obj.name {
				continue
			}
			if ref.SectionName == nil || *ref.SectionName == "" {
				forObject = append(forObject, p)
				break
			}
			if portName != "" && string(*ref.SectionName) == portName {
				forPort = append(forPort, p)
				break
			}
		}
	}
	var zero P
	for _, tier := range [][]P{forPort, forObject} {
		if len(tier) == 0 {
			continue
		}
		winner := slices.MinFunc(tier, func(a, b P) int { return compareAge(a, b) })
		if effective == zero {
			effective = winner
		}
		for _, p := range tier {
			if p != winner {
				conflicted = append(conflicted, p)
			}
		}
	}
	return effective, conflicted
}

// backendTLSTargets returns the targetRefs of a BackendTLSPolicy.
func backendTLSTargets(p *gwapiv1.BackendTLSPolicy) []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	return p.Spec.TargetRefs
}

// gatewayRef is the ancestor reference of the Gateway gw.
func gatewayRef(gw types.NamespacedName) gwapiv1.ParentReference {
	group, kind, ns := gwapiv1.Group(gwapiv1.GroupName), gwapiv1.Kind("Gateway"), gwapiv1.Namespace(gw.Namespace)
	return gwapiv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwapiv1.ObjectName(gw.Name)}
}

// policyAncestor returns the entry for ancestor ref in the status of policy p of the given
// kind, creating it in order of group, kind, namespace, name and section. It returns nil when
// the status already holds the most ancestors Gateway API allows, which then forbids adding
// one.
func (t *translation) policyAncestor(cluster, kind string, p metav1.Object, ref gwapiv1.ParentReference) *gwapiv1.PolicyAncestorStatus {
	// Entries of policy kinds are only ever created here, as *PolicyStatus.
	st := statusOf[gwapiv1.PolicyStatus](t, cluster, kind, p)
	at := len(st.Ancestors)
	for i := range st.Ancestors {
		switch c := compareParentRefs(st.Ancestors[i].AncestorRef, ref); {
		case c == 0:
			return &st.Ancestors[i]
		case c > 0 && at == len(st.Ancestors):
			at = i
		}
	}
	if len(st.Ancestors) >= maxPolicyAncestors {
		return nil
	}
	anc := gwapiv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: ControllerName}
	st.Ancestors = slices.Insert(st.Ancestors, at, anc)
	return &st.Ancestors[at]
}

// compareParentRefs orders ancestor references by group, kind, namespace, name and section.
func compareParentRefs(a, b gwapiv1.ParentReference) int {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return cmp.Or(
		cmp.Compare(str((*string)(a.Group)), str((*string)(b.Group))),
		cmp.Compare(str((*string)(a.Kind)), str((*string)(b.Kind))),
		cmp.Compare(str((*string)(a.Namespace)), str((*string)(b.Namespace))),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(str((*string)(a.SectionName)), str((*string)(b.SectionName))),
	)
}
