package translator

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// gateway is a Gateway of a Strait GatewayClass with its listeners, as translation goes on.
type gateway struct {
	obj *gwapiv1.Gateway
	key types.NamespacedName
	// cluster is the member cluster the Gateway lives in; node is its proxy's xDS node id,
	// "<cluster>/<namespace>/<name>".
	cluster, node string
	status        *gwapiv1.GatewayStatus
	// addresses are where the Gateway's listeners bind; empty when the Gateway is not accepted.
	addresses []string
	listeners []*listener
}

// listener is one Gateway listener with what routes attached to it.
type listener struct {
	gw     *gateway
	spec   *gwapiv1.Listener
	status *gwapiv1.ListenerStatus
	// ok is true while the listener can be programmed; invalid input or a conflict clears it.
	ok bool
	// kinds are the route kinds that may attach.
	kinds []gwapiv1.RouteGroupKind
	certs []*ir.Certificate
	http  []*httpAttachment
	l4    []*l4Attachment
}

// hostname returns the listener's hostname, "" when it has none (any host).
func (l *listener) hostname() string {
	if l.spec.Hostname == nil {
		return ""
	}
	return string(*l.spec.Hostname)
}

const (
	groupGateway = gwapiv1.GroupName
	kindGateway  = "Gateway"
)

// processGateways returns the Gateways of Strait's classes in creation order, so that the
// older of two conflicting Gateways keeps its port and address.
func (t *translation) processGateways(ci *clusterIndex, classes map[string]*gwapiv1.GatewayClass) []*gateway {
	var out []*gateway
	for _, obj := range ci.res.Gateways {
		if classes[string(obj.Spec.GatewayClassName)] == nil {
			continue
		}
		gw := &gateway{
			obj:     obj,
			key:     nsName(obj.Namespace, obj.Name),
			cluster: ci.info.Name,
			node:    nodeID(ci.info.Name, obj.Namespace, obj.Name),
			status:  statusOf[gwapiv1.GatewayStatus](t, ci.info.Name, kindGateway, obj),
		}
		out = append(out, gw)
	}
	slices.SortStableFunc(out, func(a, b *gateway) int { return compareAge(a.obj, b.obj) })

	return out
}

// nodeID is the xDS node id of the proxies of Gateway namespace/name of cluster:
// "<cluster>/<namespace>/<name>".
func nodeID(cluster, namespace, name string) string {
	return cluster + "/" + namespace + "/" + name
}

// processListeners validates the listeners of each Gateway, once its addresses are known.
func (t *translation) processListeners(ci *clusterIndex, gateways []*gateway) {
	for _, gw := range gateways {
		// Listener statuses are filled in place: allocate them all before taking pointers.
		gw.status.Listeners = make([]gwapiv1.ListenerStatus, 0, len(gw.obj.Spec.Listeners))
		for i := range gw.obj.Spec.Listeners {
			gw.listeners = append(gw.listeners, t.processListener(ci, gw, &gw.obj.Spec.Listeners[i]))
		}
		markConflicts(gw.listeners)
	}
}

// listenerKinds are the route kinds each listener protocol serves.
var listenerKinds = map[gwapiv1.ProtocolType][]gwapiv1.Kind{
	gwapiv1.HTTPProtocolType:  {"HTTPRoute", "GRPCRoute"},
	gwapiv1.HTTPSProtocolType: {"HTTPRoute", "GRPCRoute"},
	gwapiv1.TLSProtocolType:   {"TLSRoute"},
	gwapiv1.TCPProtocolType:   {"TCPRoute"},
}

func (t *translation) processListener(ci *clusterIndex, gw *gateway, spec *gwapiv1.Listener) *listener {
	l := &listener{gw: gw, spec: spec, ok: gw.addresses != nil}
	gw.status.Listeners = append(gw.status.Listeners, gwapiv1.ListenerStatus{Name: spec.Name})
	l.status = &gw.status.Listeners[len(gw.status.Listeners)-1]
	gen := gw.obj.Generation
	accepted := true

	supported, known := listenerKinds[spec.Protocol]
	if !known {
		l.ok, accepted = false, false
		setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionAccepted), false,
			string(gwapiv1.ListenerReasonUnsupportedProtocol), fmt.Sprintf("protocol %q is not supported", spec.Protocol))
	}
	kinds, resolved := allowedKinds(spec, supported)
	if !resolved {
		setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionResolvedRefs), false,
			string(gwapiv1.ListenerReasonInvalidRouteKinds), "allowedRoutes.kinds names a kind this listener cannot serve")
	}

	if accepted {
		if err := t.listenerTLS(ci, gw, l); err != nil {
			l.ok = false
			if err.Type == string(gwapiv1.ListenerConditionAccepted) {
				accepted = false
			} else {
				resolved = false
			}
			setCondition(&l.status.Conditions, gen, err.Type, false, err.Reason, err.Msg)
		}
	}
	if accepted {
		setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionAccepted), true,
			string(gwapiv1.ListenerReasonAccepted), "Listener is valid")
	} else {
		// A listener that is not accepted serves no route kind (conformance test
		// TLSRouteListenerTerminateNotSupported).
		kinds = []gwapiv1.RouteGroupKind{}
	}
	l.kinds = kinds
	l.status.SupportedKinds = kinds
	if resolved {
		setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionResolvedRefs), true,
			string(gwapiv1.ListenerReasonResolvedRefs), "All references are resolved")
	}
	return l
}

// allowedKinds returns the route kinds a listener accepts: allowedRoutes.kinds filtered to what
// its protocol serves, or everything it serves. ok is false when a listed kind was dropped.
func allowedKinds(spec *gwapiv1.Listener, supported []gwapiv1.Kind) (kinds []gwapiv1.RouteGroupKind, ok bool) {
	group := gwapiv1.Group(groupGateway)
	// The field is required in status; an empty list says nothing can attach.
	kinds = []gwapiv1.RouteGroupKind{}
	if spec.AllowedRoutes == nil || len(spec.AllowedRoutes.Kinds) == 0 {
		for _, k := range supported {
			kinds = append(kinds, gwapiv1.RouteGroupKind{Group: &group, Kind: k})
		}
		return kinds, true
	}
	ok = true
	for _, rk := range spec.AllowedRoutes.Kinds {
		if (rk.Group == nil || *rk.Group == group) && containsKind(supported, rk.Kind) {
			kinds = append(kinds, gwapiv1.RouteGroupKind{Group: &group, Kind: rk.Kind})
		} else {
			ok = false
		}
	}
	return kinds, ok
}

func containsKind(kinds []gwapiv1.Kind, k gwapiv1.Kind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// listenerTLS checks the TLS settings of a listener and loads its certificates.
func (t *translation) listenerTLS(ci *clusterIndex, gw *gateway, l *listener) *condError {
	accepted := string(gwapiv1.ListenerConditionAccepted)
	resolvedRefs := string(gwapiv1.ListenerConditionResolvedRefs)
	spec := l.spec
	mode := gwapiv1.TLSModeTerminate
	if spec.TLS != nil && spec.TLS.Mode != nil {
		mode = *spec.TLS.Mode
	}
	switch spec.Protocol {
	case gwapiv1.HTTPProtocolType, gwapiv1.TCPProtocolType:
		if spec.TLS != nil {
			return newCondError(accepted, string(gwapiv1.ListenerReasonUnsupportedValue), "tls must not be set on a %s listener", spec.Protocol)
		}
		return nil
	case gwapiv1.TLSProtocolType:
		if mode != gwapiv1.TLSModePassthrough {
			return newCondError(accepted, string(gwapiv1.ListenerReasonUnsupportedValue), "TLS listeners support tls.mode Passthrough only")
		}
		return nil
	}
	// HTTPS terminates TLS.
	if mode != gwapiv1.TLSModeTerminate {
		return newCondError(accepted, string(gwapiv1.ListenerReasonUnsupportedValue), "HTTPS listeners support tls.mode Terminate only")
	}
	if spec.TLS == nil || len(spec.TLS.CertificateRefs) == 0 {
		return newCondError(resolvedRefs, string(gwapiv1.ListenerReasonInvalidCertificateRef), "an HTTPS listener needs tls.certificateRefs")
	}
	for _, ref := range spec.TLS.CertificateRefs {
		cert, err := t.certificate(ci, gw, ref)
		if err != nil {
			return err
		}
		l.certs = append(l.certs, cert)
	}
	return nil
}

// certificate loads the kubernetes.io/tls Secret a certificateRef names.
func (t *translation) certificate(ci *clusterIndex, gw *gateway, ref gwapiv1.SecretObjectReference) (*ir.Certificate, *condError) {
	resolvedRefs := string(gwapiv1.ListenerConditionResolvedRefs)
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
		return nil, newCondError(resolvedRefs, string(gwapiv1.ListenerReasonInvalidCertificateRef), "certificateRef %s must be a core Secret", ref.Name)
	}
	ns := gw.obj.Namespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	if !ci.referenceAllowed(groupGateway, kindGateway, gw.obj.Namespace, "", "Secret", ns, string(ref.Name)) {
		return nil, newCondError(resolvedRefs, string(gwapiv1.ListenerReasonRefNotPermitted),
			"no ReferenceGrant in namespace %s allows a Gateway in %s to use Secret %s", ns, gw.obj.Namespace, ref.Name)
	}
	secret := ci.secrets[nsName(ns, string(ref.Name))]
	if secret == nil {
		return nil, newCondError(resolvedRefs, string(gwapiv1.ListenerReasonInvalidCertificateRef), "Secret %s/%s does not exist", ns, ref.Name)
	}
	certPEM, keyPEM := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, newCondError(resolvedRefs, string(gwapiv1.ListenerReasonInvalidCertificateRef), "Secret %s/%s holds no valid TLS certificate and key: %v", ns, ref.Name, err)
	}
	return &ir.Certificate{Name: ci.info.Name + "/" + ns + "/" + string(ref.Name), CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// protocolFamily groups listener protocols that can share a port: HTTPS and TLS are told
// apart by SNI; HTTP and TCP need a port of their own.
func protocolFamily(p gwapiv1.ProtocolType) string {
	if p == gwapiv1.HTTPSProtocolType || p == gwapiv1.TLSProtocolType {
		return "tls"
	}
	return string(p)
}

// conflictReason says why two listeners on one port cannot be told apart, "" when they can.
func conflictReason(a, b *listener) gwapiv1.ListenerConditionReason {
	switch {
	case protocolFamily(a.spec.Protocol) != protocolFamily(b.spec.Protocol):
		return gwapiv1.ListenerReasonProtocolConflict
	case a.hostname() == b.hostname() || a.spec.Protocol == gwapiv1.TCPProtocolType:
		return gwapiv1.ListenerReasonHostnameConflict
	}
	return ""
}

// markConflicts marks listeners of one Gateway that cannot share their port: a protocol that
// cannot be told apart from another on that port, or the same hostname twice. The spec forbids
// picking a winner: every listener of a conflicting pair is Conflicted and not accepted.
// Listeners of a protocol Strait does not serve bind nothing and conflict with nothing.
// HTTPS listeners whose hostnames overlap get OverlappingTLSConfig, which the spec requires
// (HTTP/2 connection coalescing can carry a request to the other listener's certificate).
func markConflicts(ls []*listener) {
	reasons := make([]gwapiv1.ListenerConditionReason, len(ls))
	peers := make([][]string, len(ls))
	overlapping := make([]bool, len(ls))
	for i, a := range ls {
		for j := i + 1; j < len(ls); j++ {
			b := ls[j]
			if a.spec.Port != b.spec.Port || listenerKinds[a.spec.Protocol] == nil || listenerKinds[b.spec.Protocol] == nil {
				continue
			}
			if reason := conflictReason(a, b); reason != "" {
				for _, k := range []int{i, j} {
					if reasons[k] == "" {
						reasons[k] = reason
					}
				}
				peers[i] = append(peers[i], string(b.spec.Name))
				peers[j] = append(peers[j], string(a.spec.Name))
				continue
			}
			if a.spec.Protocol == gwapiv1.HTTPSProtocolType && b.spec.Protocol == gwapiv1.HTTPSProtocolType &&
				a.hostname() != "" && b.hostname() != "" &&
				(hostCovers(a.hostname(), b.hostname()) || hostCovers(b.hostname(), a.hostname())) {
				overlapping[i], overlapping[j] = true, true
			}
		}
	}
	for i, l := range ls {
		gen := l.gw.obj.Generation
		if overlapping[i] {
			setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionOverlappingTLSConfig), true,
				string(gwapiv1.ListenerReasonOverlappingHostnames), "the hostname overlaps the hostname of another HTTPS listener on this port")
		}
		if reasons[i] == "" {
			setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionConflicted), false,
				string(gwapiv1.ListenerReasonNoConflicts), "No conflicts")
			continue
		}
		l.ok = false
		msg := fmt.Sprintf("port %d is shared with listener(s) %s, which cannot be told apart from this one", l.spec.Port, strings.Join(peers[i], ", "))
		setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionConflicted), true, string(reasons[i]), msg)
		if meta.IsStatusConditionTrue(l.status.Conditions, string(gwapiv1.ListenerConditionAccepted)) {
			setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionAccepted), false, string(reasons[i]), msg)
		}
	}
}

// markPortsInUse marks listeners whose address and port an older Gateway already binds, for
// proxies sharing one host. gateways are those of every cluster: a Gateway keeps its ports
// against younger ones whatever cluster they live in.
func (t *translation) markPortsInUse(gateways []*gateway) {
	gateways = slices.Clone(gateways)
	// Stable: Gateways of equal age and name keep the clusters' name order.
	slices.SortStableFunc(gateways, func(a, b *gateway) int { return compareAge(a.obj, b.obj) })
	for _, gw := range gateways {
		for _, l := range gw.listeners {
			if !l.ok {
				continue
			}
			for _, addr := range gw.addresses {
				key := fmt.Sprintf("%s:%d", addr, l.spec.Port)
				owner, taken := t.boundPorts[key]
				if !taken {
					t.boundPorts[key] = gw.node
					continue
				}
				if owner == gw.node {
					continue
				}
				l.ok = false
				setCondition(&l.status.Conditions, gw.obj.Generation, string(gwapiv1.ListenerConditionAccepted), false,
					string(gwapiv1.ListenerReasonPortUnavailable), fmt.Sprintf("%s is already bound by Gateway %s", key, owner))
			}
		}
	}
}

// allowsRoute reports whether a route of kind in namespace routeNS may attach to the listener.
func (l *listener) allowsNamespace(ci *clusterIndex, routeNS string) bool {
	from := gwapiv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		selector = ar.Namespaces.Selector
	}
	switch from {
	case gwapiv1.NamespacesFromAll:
		return true
	case gwapiv1.NamespacesFromSame:
		return routeNS == l.gw.obj.Namespace
	case gwapiv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		return sel.Matches(labels.Set(ci.namespaceLabels(routeNS)))
	}
	return false
}

func (l *listener) allowsKind(kind string) bool {
	for _, k := range l.kinds {
		if string(k.Kind) == kind {
			return true
		}
	}
	return false
}

// finishGatewayStatuses sets the conditions that summarize the listeners: Programmed on each
// listener, and Accepted, Programmed and addresses on each Gateway.
func (t *translation) finishGatewayStatuses(gateways []*gateway) {
	for _, gw := range gateways {
		gen := gw.obj.Generation
		valid := 0
		for _, l := range gw.listeners {
			if l.ok {
				valid++
				setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionProgrammed), true,
					string(gwapiv1.ListenerReasonProgrammed), "Listener is programmed")
			} else {
				setCondition(&l.status.Conditions, gen, string(gwapiv1.ListenerConditionProgrammed), false,
					string(gwapiv1.ListenerReasonInvalid), "Listener is not programmed: see its other conditions")
			}
		}
		if gw.addresses == nil {
			continue // Accepted and Programmed already say why.
		}
		switch {
		case len(gw.listeners) == 0:
			// The API requires a listener; without one the Gateway serves nothing.
			setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), false,
				string(gwapiv1.GatewayReasonInvalid), "Gateway has no listeners")
		case valid == len(gw.listeners):
			setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), true,
				string(gwapiv1.GatewayReasonAccepted), "Gateway is accepted")
		case valid > 0:
			setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), true,
				string(gwapiv1.GatewayReasonListenersNotValid), "Some listeners are not valid: "+invalidListeners(gw))
		default:
			setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionAccepted), false,
				string(gwapiv1.GatewayReasonListenersNotValid), "No listener is valid: "+invalidListeners(gw))
		}
		if valid == 0 {
			setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionProgrammed), false,
				string(gwapiv1.GatewayReasonInvalid), "No listener can be programmed")
			continue
		}
		setCondition(&gw.status.Conditions, gen, string(gwapiv1.GatewayConditionProgrammed), true,
			string(gwapiv1.GatewayReasonProgrammed), "Gateway is programmed")
		ipType := gwapiv1.IPAddressType
		for _, a := range gw.addresses {
			// The unspecified address (0.0.0.0, ::) is where listeners bind, not an address
			// clients can reach; the proxies' advertised addresses stand in for it
			// (WithProxyReports).
			if ip, err := netip.ParseAddr(a); err == nil && ip.IsUnspecified() {
				continue
			}
			gw.status.Addresses = append(gw.status.Addresses, gwapiv1.GatewayStatusAddress{Type: &ipType, Value: a})
		}
	}
}

func invalidListeners(gw *gateway) string {
	var names []string
	for _, l := range gw.listeners {
		if !l.ok {
			names = append(names, string(l.spec.Name))
		}
	}
	return strings.Join(names, ", ")
}

// compareAge orders objects older first, then by namespace and name: the spec's tie-breaker
// wherever two objects compete (Gateways, routes, policies).
func compareAge(a, b metav1.Object) int {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		if ta.Before(&tb) {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}
