package kubernetes

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strait-gw/strait/translator"
)

// objectRef names a Secret or ConfigMap.
type objectRef struct {
	kind, namespace, name string
}

// references returns the Secrets and ConfigMaps the translator may read from res: the
// certificateRefs of Gateway listeners and the caCertificateRefs of BackendTLSPolicies.
// References of a group or kind the translator rejects are left out; whether a
// ReferenceGrant allows a reference is for the translator to judge.
func references(res *translator.ClusterResources) map[objectRef]bool {
	refs := map[objectRef]bool{}
	for _, gw := range res.Gateways {
		for _, l := range gw.Spec.Listeners {
			if l.TLS == nil {
				continue
			}
			for _, ref := range l.TLS.CertificateRefs {
				if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
					continue
				}
				ns := gw.Namespace
				if ref.Namespace != nil {
					ns = string(*ref.Namespace)
				}
				refs[objectRef{kind: "Secret", namespace: ns, name: string(ref.Name)}] = true
			}
		}
	}
	for _, p := range res.BackendTLSPolicies {
		for _, ref := range p.Spec.Validation.CACertificateRefs {
			if ref.Group == "" && (ref.Kind == "Secret" || ref.Kind == "ConfigMap") {
				refs[objectRef{kind: string(ref.Kind), namespace: p.Namespace, name: string(ref.Name)}] = true
			}
		}
	}
	return refs
}

// keepReferenced leaves in res only the Secrets and ConfigMaps in refs.
func keepReferenced(res *translator.ClusterResources, refs map[objectRef]bool) {
	res.Secrets = filterRefs(res.Secrets, "Secret", refs)
	res.ConfigMaps = filterRefs(res.ConfigMaps, "ConfigMap", refs)
}

func filterRefs[T metav1.Object](objs []T, kind string, refs map[objectRef]bool) []T {
	var out []T
	for _, o := range objs {
		if refs[objectRef{kind: kind, namespace: o.GetNamespace(), name: o.GetName()}] {
			out = append(out, o)
		}
	}
	return out
}

// referenced says whether obj, a Secret or ConfigMap, is in refs.
func referenced(refs map[objectRef]bool, obj any) bool {
	switch o := obj.(type) {
	case *corev1.Secret:
		return refs[objectRef{kind: "Secret", namespace: o.Namespace, name: o.Name}]
	case *corev1.ConfigMap:
		return refs[objectRef{kind: "ConfigMap", namespace: o.Namespace, name: o.Name}]
	}
	return true
}
