package translator

import (
	"fmt"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// l4Attachment is a TLSRoute or TCPRoute attached to a listener. Connections are not
// requests: where several routes claim the same listener and host, the oldest wins.
type l4Attachment struct {
	// hostnames are the SNI names served (TLSRoute); nil for TCPRoute.
	hostnames []string
	forward   *ir.TCPForward
	age       int64
	object    string
}

func tlsRouteBackends(r *gwapiv1.TLSRoute) [][]gwapiv1.BackendRef {
	out := make([][]gwapiv1.BackendRef, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		out[i] = rule.BackendRefs
	}
	return out
}

func tcpRouteBackends(r *gwapiv1.TCPRoute) [][]gwapiv1.BackendRef {
	out := make([][]gwapiv1.BackendRef, len(r.Spec.Rules))
	for i, rule := range r.Spec.Rules {
		out[i] = rule.BackendRefs
	}
	return out
}

// compileL4Route translates a TLSRoute or TCPRoute for one Gateway. A connection carries no
// request to match, so one rule is all a route can use.
func (t *translation) compileL4Route(ci *clusterIndex, gw *gateway, r route, rules [][]gwapiv1.BackendRef) *compiled {
	name := ci.info.Name + "/" + r.meta.Namespace + "/" + r.meta.Name
	rc := &ruleContext{t: t, ci: ci, gw: gw, kind: r.kind, ns: r.meta.Namespace, route: name}
	if len(rules) != 1 {
		return &compiled{accepted: newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue),
			"a %s needs exactly one rule, it has %d", r.kind, len(rules))}
	}
	refs := make([]gwapiv1.HTTPBackendRef, len(rules[0]))
	for i, ref := range rules[0] {
		refs[i] = gwapiv1.HTTPBackendRef{BackendRef: ref}
	}
	backends, err := rc.backends(refs)
	if err != nil {
		return &compiled{accepted: err}
	}
	fwd := &ir.TCPForward{Name: name, Backends: backends}
	c := &compiled{resolved: rc.resolved, notes: rc.notes}
	if len(backends) == 0 && c.resolved == nil {
		c.resolved = newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
			"%s has no backend of non-zero weight: connections are refused", r.kind)
	}
	c.attach = func(l *listener, hostnames []string) {
		l.l4 = append(l.l4, &l4Attachment{hostnames: hostnames, forward: fwd, age: r.meta.CreationTimestamp.UnixNano(),
			object: fmt.Sprintf("%s/%s", r.meta.Namespace, r.meta.Name)})
	}
	return c
}
