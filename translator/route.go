package translator

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// route is what every route kind shares for attaching to Gateways.
type route struct {
	kind       string
	meta       *metav1.ObjectMeta
	parentRefs []gwapiv1.ParentReference
	// hostnames is nil for kinds without hostnames (TCPRoute).
	hostnames []gwapiv1.Hostname
}

// compiled is a route translated for one Gateway: the result of compiling its rules.
type compiled struct {
	// accepted is nil when the route can be programmed; otherwise the whole route is rejected.
	accepted *condError
	// partial names rules that were dropped as invalid while others were kept.
	partial string
	// resolved is the first backend reference that did not resolve.
	resolved *condError
	// notes qualify resolved references in the ResolvedRefs message.
	notes []string
	// attach adds the route to a listener it was accepted by, with the host names it serves
	// there (nil for TCPRoute; "" never appears: a listener and route without hostnames
	// give "*").
	attach func(l *listener, hostnames []string)
}

// processRoutes attaches every route of the cluster to the Gateways its parentRefs name.
func (t *translation) processRoutes(ci *clusterIndex, gateways []*gateway) {
	byKey := make(map[types.NamespacedName]*gateway, len(gateways))
	for _, gw := range gateways {
		byKey[gw.key] = gw
	}
	// HTTPRoutes and GRPCRoutes attach oldest first: where the two kinds claim a host name on
	// one listener, the spec keeps the older route (see attachParent).
	type pending struct {
		meta   *metav1.ObjectMeta
		attach func()
	}
	var httpRoutes []pending
	for _, r := range ci.res.HTTPRoutes {
		httpRoutes = append(httpRoutes, pending{&r.ObjectMeta, func() {
			st := routeStatus(t, ci, "HTTPRoute", &r.ObjectMeta, func(s *gwapiv1.HTTPRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus })
			rt := route{kind: "HTTPRoute", meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs, hostnames: nonNil(r.Spec.Hostnames)}
			t.attachRoute(ci, byKey, rt, st, func(gw *gateway) *compiled { return t.compileHTTPRoute(ci, gw, r) })
		}})
	}
	for _, r := range ci.res.GRPCRoutes {
		httpRoutes = append(httpRoutes, pending{&r.ObjectMeta, func() {
			st := routeStatus(t, ci, "GRPCRoute", &r.ObjectMeta, func(s *gwapiv1.GRPCRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus })
			rt := route{kind: "GRPCRoute", meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs, hostnames: nonNil(r.Spec.Hostnames)}
			t.attachRoute(ci, byKey, rt, st, func(gw *gateway) *compiled { return t.compileGRPCRoute(ci, gw, r) })
		}})
	}
	slices.SortStableFunc(httpRoutes, func(a, b pending) int { return compareAge(a.meta, b.meta) })
	for _, p := range httpRoutes {
		p.attach()
	}
	for _, r := range ci.res.TLSRoutes {
		st := routeStatus(t, ci, "TLSRoute", &r.ObjectMeta, func(s *gwapiv1.TLSRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus })
		rt := route{kind: "TLSRoute", meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs, hostnames: nonNil(r.Spec.Hostnames)}
		t.attachRoute(ci, byKey, rt, st, func(gw *gateway) *compiled {
			return t.compileL4Route(ci, gw, rt, tlsRouteBackends(r))
		})
	}
	for _, r := range ci.res.TCPRoutes {
		st := routeStatus(t, ci, "TCPRoute", &r.ObjectMeta, func(s *gwapiv1.TCPRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus })
		rt := route{kind: "TCPRoute", meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs}
		t.attachRoute(ci, byKey, rt, st, func(gw *gateway) *compiled {
			return t.compileL4Route(ci, gw, rt, tcpRouteBackends(r))
		})
	}
}

// nonNil returns a route's hostnames, empty rather than nil when it has none: route.hostnames
// is nil only for kinds that have no hostnames at all, and a route of a kind that has them but
// names none serves every host of its listener.
func nonNil(hostnames []gwapiv1.Hostname) []gwapiv1.Hostname {
	if hostnames == nil {
		return []gwapiv1.Hostname{}
	}
	return hostnames
}

// routeStatus returns a function that gives the RouteStatus of a route, created on first use:
// a route none of whose parents is Strait's gets no status from Strait.
func routeStatus[T any](t *translation, ci *clusterIndex, kind string, m *metav1.ObjectMeta, inner func(*T) *gwapiv1.RouteStatus) func() *gwapiv1.RouteStatus {
	return func() *gwapiv1.RouteStatus {
		return inner(statusOf[T](t, ci.info.Name, kind, m))
	}
}

// attachRoute resolves each parentRef of a route to Strait's Gateways and listeners, attaches
// the compiled route where it is allowed, and writes one parent status per Strait parent.
// Parents that are not Strait's Gateways get no entry: another controller owns them.
func (t *translation) attachRoute(ci *clusterIndex, gateways map[types.NamespacedName]*gateway, r route, status func() *gwapiv1.RouteStatus, compile func(*gateway) *compiled) {
	perGateway := map[*gateway]*compiled{}
	for _, ref := range r.parentRefs {
		if (ref.Group != nil && *ref.Group != groupGateway) || (ref.Kind != nil && *ref.Kind != kindGateway) {
			continue
		}
		ns := r.meta.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		gw := gateways[nsName(ns, string(ref.Name))]
		if gw == nil {
			continue
		}
		c := perGateway[gw]
		if c == nil {
			c = compile(gw)
			perGateway[gw] = c
		}
		st := status()
		ps := gwapiv1.RouteParentStatus{ParentRef: canonicalParentRef(ref, ns), ControllerName: ControllerName}
		t.attachParent(ci, gw, r, ref, c, &ps)
		st.Parents = append(st.Parents, ps)
	}
}

func canonicalParentRef(ref gwapiv1.ParentReference, ns string) gwapiv1.ParentReference {
	out := *ref.DeepCopy()
	if out.Namespace == nil {
		n := gwapiv1.Namespace(ns)
		out.Namespace = &n
	}
	return out
}

// attachParent attaches a route to the listeners of one parentRef and sets its conditions.
func (t *translation) attachParent(ci *clusterIndex, gw *gateway, r route, ref gwapiv1.ParentReference, c *compiled, ps *gwapiv1.RouteParentStatus) {
	gen := r.meta.Generation
	accepted := string(gwapiv1.RouteConditionAccepted)
	resolved, reason, msg := true, string(gwapiv1.RouteReasonResolvedRefs), "All references are resolved"
	if c.resolved != nil {
		resolved, reason, msg = false, c.resolved.Reason, c.resolved.Msg
	}
	if len(c.notes) > 0 {
		msg += "; " + strings.Join(c.notes, "; ")
	}
	setCondition(&ps.Conditions, gen, string(gwapiv1.RouteConditionResolvedRefs), resolved, reason, msg)
	if c.accepted != nil {
		setCondition(&ps.Conditions, gen, accepted, false, c.accepted.Reason, c.accepted.Msg)
		return
	}
	if c.partial != "" {
		setCondition(&ps.Conditions, gen, string(gwapiv1.RouteConditionPartiallyInvalid), true,
			string(gwapiv1.RouteReasonUnsupportedValue), c.partial)
	}

	var candidates []*listener
	for _, l := range gw.listeners {
		if ref.SectionName != nil && *ref.SectionName != l.spec.Name {
			continue
		}
		if ref.Port != nil && *ref.Port != l.spec.Port {
			continue
		}
		candidates = append(candidates, l)
	}
	if len(candidates) == 0 {
		setCondition(&ps.Conditions, gen, accepted, false, string(gwapiv1.RouteReasonNoMatchingParent),
			fmt.Sprintf("Gateway %s has no listener matching sectionName/port", gw.key))
		return
	}
	reason, msg = string(gwapiv1.RouteReasonNotAllowedByListeners), "no listener allows this route's kind and namespace"
	attached := 0
	for _, l := range candidates {
		if !l.allowsKind(r.kind) || !l.allowsNamespace(ci, r.meta.Namespace) {
			continue
		}
		var hostnames []string
		if r.hostnames != nil {
			hostnames = intersectHostnames(l.hostname(), r.hostnames)
			if len(hostnames) == 0 {
				reason, msg = string(gwapiv1.RouteReasonNoMatchingListenerHostname), "no hostname of the route matches a listener hostname"
				continue
			}
		}
		if other := l.otherKindClaiming(r.kind, hostnames); other != nil {
			reason = string(gwapiv1.RouteReasonNotAllowedByListeners)
			msg = fmt.Sprintf("listener %s already serves these hostnames with the older %s %s; an HTTPRoute and a GRPCRoute cannot share a hostname",
				l.spec.Name, other.kind, other.object)
			continue
		}
		attached++
		l.status.AttachedRoutes++
		// Attached even to a listener that is not programmed (buildProxy skips it): what
		// attached still decides the status of later routes.
		c.attach(l, hostnames)
	}
	if attached == 0 {
		setCondition(&ps.Conditions, gen, accepted, false, reason, msg)
		return
	}
	setCondition(&ps.Conditions, gen, accepted, true, string(gwapiv1.RouteReasonAccepted), "Route is accepted")
}

// otherKindClaiming returns the HTTPRoute or GRPCRoute of the other kind than kind that
// already serves one of hostnames on the listener, nil if there is none. The spec lets only one
// of the two kinds serve a host name on a listener.
func (l *listener) otherKindClaiming(kind string, hostnames []string) *httpAttachment {
	for _, a := range l.http {
		if a.kind != kind && hostsOverlap(a.hostnames, hostnames) {
			return a
		}
	}
	return nil
}

// hostsOverlap reports whether some host name matches a name of both lists ("*" matches any).
func hostsOverlap(as, bs []string) bool {
	for _, a := range as {
		for _, b := range bs {
			if a == b || hostCovers(a, b) || hostCovers(b, a) {
				return true
			}
		}
	}
	return false
}

// intersectHostnames returns the host names a route serves on a listener: the route's names
// that the listener's name covers, narrowed to the more specific of each pair. An empty
// listener hostname covers everything; a route without hostnames takes the listener's.
func intersectHostnames(listenerHost string, routeHosts []gwapiv1.Hostname) []string {
	if len(routeHosts) == 0 {
		if listenerHost == "" {
			return []string{"*"}
		}
		return []string{listenerHost}
	}
	var out []string
	seen := map[string]bool{}
	for _, rh := range routeHosts {
		h := strings.ToLower(string(rh))
		var got string
		switch {
		case listenerHost == "":
			got = h
		case hostCovers(listenerHost, h):
			got = h
		case hostCovers(h, listenerHost):
			got = listenerHost
		}
		if got != "" && !seen[got] {
			seen[got] = true
			out = append(out, got)
		}
	}
	return out
}

// hostCovers reports whether pattern (exact or "*.suffix") matches host, where host may itself
// be a wildcard that is at least as narrow.
func hostCovers(pattern, host string) bool {
	if pattern == host {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		// "*.example.com" covers "a.example.com", "a.b.example.com" and "*.a.example.com",
		// but not "example.com".
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return false
}
