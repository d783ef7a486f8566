package translator

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	"github.com/strait-gw/strait/translator/ir"
)

// MirrorOfClusterLabel is set by the mirror writer on the Services it creates. Its value is the
// cluster whose exported Service the mirror stands for; the mirror is named
// "<service>-<cluster>".
const MirrorOfClusterLabel = "strait.dev/mirror-of-cluster"

// Application protocols a Service port may declare that Strait speaks: the standard ones of
// KEP-3726, and the IANA service names http and https (compared without regard to case, as
// IANA service names are; Gateway API's conformance suite writes "HTTPS").
const (
	appProtocolH2C   = "kubernetes.io/h2c"
	appProtocolWS    = "kubernetes.io/ws"
	appProtocolWSS   = "kubernetes.io/wss"
	appProtocolHTTP  = "http"
	appProtocolHTTPS = "https"
)

// reasonInvalidBackendTLS is the route's ResolvedRefs reason for a backend whose
// BackendTLSPolicy cannot be honored. Gateway API requires ResolvedRefs False in that case but
// names no reason; this is the one Envoy Gateway uses.
const reasonInvalidBackendTLS = "InvalidBackendTLS"

// caCertKey is the key of a CA bundle in a ConfigMap or Secret a BackendTLSPolicy refers to.
const caCertKey = "ca.crt"

// maxPolicyAncestors is the most ancestors Gateway API allows in a PolicyStatus.
const maxPolicyAncestors = 16

// backendKey identifies a resolved backend within one translation. One Service port resolves
// to different backends for proxies in different clusters (from decides locality priorities)
// and for route kinds that speak different protocols to it (name carries the protocol).
type backendKey struct {
	// from is the proxy's cluster, ir.Target.From.
	from string
	// name is ir.Backend.Name.
	name string
}

// backendObject is the object a backendRef names, with Gateway API's defaults applied.
type backendObject struct {
	group, kind, namespace, name string
}

// String names the object for condition messages, e.g. "Service default/web".
func (o backendObject) String() string {
	return fmt.Sprintf("%s %s/%s", o.kind, o.namespace, o.name)
}

// resolveBackendRef resolves one backendRef of a route in cluster ci (the route's cluster, which
// is also the proxy's cluster), for the Gateway gw (namespace/name, used as the ancestor in
// BackendTLSPolicy statuses). routeKind ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute") and
// routeNS are the "from" side of ReferenceGrant checks.
//
// A Service is a Service of ci, or, when ci has no such Service or only a mirror of it, a mirror
// name "<service>-<cluster>" standing for the exported Service of another cluster. A
// ServiceImport spans every cluster that exports the namespace/name. The backend is shared
// through t.backends, so many routes on one Service port resolve its endpoints once. The
// BackendTrafficPolicy of ci that targets obj (see backendTraffic) sets the backend's health
// checks, outlier detection, load balancing, circuit breakers and connect timeout.
//
// The error is a ResolvedRefs condition with the reason Gateway API requires: InvalidKind,
// RefNotPermitted, BackendNotFound, UnsupportedProtocol, or reasonInvalidBackendTLS when a
// BackendTLSPolicy attached to the backend cannot be honored (the route must then answer 500
// rather than send plaintext).
func (t *translation) resolveBackendRef(ci *clusterIndex, gw types.NamespacedName, routeKind, routeNS string, ref gwapiv1.BackendObjectReference) (*ir.Backend, *condError) {
	obj := backendObject{group: "", kind: "Service", namespace: routeNS, name: string(ref.Name)}
	if ref.Group != nil {
		obj.group = string(*ref.Group)
	}
	if ref.Kind != nil {
		obj.kind = string(*ref.Kind)
	}
	if ref.Namespace != nil && *ref.Namespace != "" {
		obj.namespace = string(*ref.Namespace)
	}
	isService := obj.group == "" && obj.kind == "Service"
	isImport := obj.group == mcsv1alpha1.GroupName && obj.kind == "ServiceImport"
	if !isService && !isImport {
		return nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonInvalidKind),
			"backendRef %q of group %q and kind %q is not supported: use a Service or a %s ServiceImport", obj.name, obj.group, obj.kind, mcsv1alpha1.GroupName)
	}
	// Grants are checked before existence so that a route cannot probe other namespaces.
	if !ci.referenceAllowed(gwapiv1.GroupName, routeKind, routeNS, obj.group, obj.kind, obj.namespace, obj.name) {
		return nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonRefNotPermitted),
			"%s in another namespace is not allowed by any ReferenceGrant", obj)
	}
	if ref.Port == nil {
		return nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
			"backendRef to %s has no port", obj)
	}

	var target ir.Target
	var sp *corev1.ServicePort
	var err *condError
	if isImport {
		target, sp, err = t.idx.importTarget(ci, obj, *ref.Port)
	} else {
		target, sp, err = t.idx.serviceTarget(ci, obj, *ref.Port)
	}
	if err != nil {
		return nil, err
	}
	if err := t.idx.reachability(obj, target); err != nil {
		return nil, err
	}
	speaks, declared, needsTLS, err := backendProtocol(routeKind, obj, sp)
	if err != nil {
		return nil, err
	}

	// Connections forwarded byte for byte (TCPRoute, TLSRoute) are never re-encrypted.
	var tls *ir.UpstreamTLS
	if speaks != ir.AppTCP {
		if tls, err = t.backendTLS(ci, gw, obj, sp.Name); err != nil {
			return nil, err
		}
		// The TLS of https and kubernetes.io/wss is configured by a BackendTLSPolicy only;
		// without one the port cannot be spoken to, and plaintext is no substitute.
		if tls == nil && needsTLS {
			return nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonUnsupportedProtocol),
				"port %d of %s speaks %s, which needs a BackendTLSPolicy", sp.Port, obj, *sp.AppProtocol)
		}
	}

	traffic := t.backendTraffic(ci, gw, obj, sp.Name)

	name := backendName(target)
	// A route kind that needs another protocol than the port declares (gRPC's HTTP/2, TCP
	// forwarding) gets a backend of its own, so that one proxy never has two backends of one name.
	if speaks != declared {
		name += "/" + strings.ToLower(string(speaks))
	}
	key := backendKey{from: target.From, name: name}
	if b := t.backends[key]; b != nil {
		return b, nil
	}
	b := &ir.Backend{
		Name:        name,
		Target:      target,
		AppProtocol: speaks,
		TLS:         tls,
		Localities:  t.idx.localities(target),
	}
	if traffic != nil {
		traffic.applyTo(b)
	}
	t.backends[key] = b
	return b, nil
}

// backendName is the name of the backend of a target before any protocol suffix:
// "<cluster>/<namespace>/<service>/<port>" for a Service (a mirror names the exporting cluster,
// so it is the same backend as a direct reference there) and
// "import/<namespace>/<service>/<port>" for a ServiceImport.
func backendName(t ir.Target) string {
	if t.Kind == ir.TargetServiceImport {
		return fmt.Sprintf("import/%s/%s/%d", t.Namespace, t.Name, t.Port)
	}
	return fmt.Sprintf("%s/%s/%s/%d", t.Cluster, t.Namespace, t.Name, t.Port)
}

// serviceTarget resolves a Service reference of a route in cluster ci: a Service of ci, or a
// mirror of another cluster's exported Service (see mirrorSource).
func (idx *index) serviceTarget(ci *clusterIndex, obj backendObject, port int32) (ir.Target, *corev1.ServicePort, *condError) {
	cluster, service := ci.info.Name, obj.name
	if svc := ci.services[nsName(obj.namespace, obj.name)]; svc == nil || svc.Labels[MirrorOfClusterLabel] != "" {
		var ok bool
		if cluster, service, ok = idx.mirrorSource(ci, obj.namespace, obj.name); !ok {
			return ir.Target{}, nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
				"%s not found in cluster %s, and no other cluster exports a Service it mirrors", obj, ci.info.Name)
		}
	}
	sp := servicePort(idx.clusters[cluster].services[nsName(obj.namespace, service)], port)
	if sp == nil {
		return ir.Target{}, nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
			"%s has no port %d", obj, port)
	}
	return ir.Target{
		Kind:      ir.TargetService,
		Cluster:   cluster,
		Namespace: obj.namespace,
		Name:      service,
		Port:      uint32(port),
		From:      ci.info.Name,
	}, sp, nil
}

// importTarget resolves a ServiceImport reference of a route in cluster ci. No ServiceImport
// object needs to exist: the exporting clusters define it (namespace sameness). The port is
// described by the first exporting cluster, in name order, whose Service has it.
func (idx *index) importTarget(ci *clusterIndex, obj backendObject, port int32) (ir.Target, *corev1.ServicePort, *condError) {
	key := nsName(obj.namespace, obj.name)
	exporters := idx.exporters[key]
	if len(exporters) == 0 {
		return ir.Target{}, nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
			"%s: no cluster exports Service %s", obj, key)
	}
	for _, cluster := range exporters {
		if sp := servicePort(idx.clusters[cluster].services[key], port); sp != nil {
			return ir.Target{
				Kind:      ir.TargetServiceImport,
				Namespace: obj.namespace,
				Name:      obj.name,
				Port:      uint32(port),
				From:      ci.info.Name,
			}, sp, nil
		}
	}
	return ir.Target{}, nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
		"%s has no port %d in any exporting cluster (%s)", obj, port, strings.Join(exporters, ", "))
}

// mirrorSource resolves the mirror Service name "<service>-<cluster>" in cluster ci to the other
// cluster and the Service of namespace ns it exports. Cluster names are DNS labels and may
// contain "-", so every split point is tried, longest cluster name first; only a split naming a
// cluster that exports that Service counts. A Service of ci labeled MirrorOfClusterLabel can
// only stand for the cluster its label names.
func (idx *index) mirrorSource(ci *clusterIndex, ns, name string) (cluster, service string, ok bool) {
	var only string
	if svc := ci.services[nsName(ns, name)]; svc != nil {
		only = svc.Labels[MirrorOfClusterLabel]
		if cluster, service, ok = idx.shortenedMirrorSource(ci, svc); ok {
			return cluster, service, true
		}
	}
	for i := 1; i < len(name)-1; i++ {
		if name[i] != '-' {
			continue
		}
		service, cluster = name[:i], name[i+1:]
		if cluster == ci.info.Name || (only != "" && cluster != only) {
			continue
		}
		key := nsName(ns, service)
		if src := idx.clusters[cluster]; src != nil && src.exported[key] && src.services[key] != nil {
			return cluster, service, true
		}
	}
	return "", "", false
}

// servicePort returns the port of svc with the given number, nil if there is none. A Service
// may carry TCP and UDP on one number (DNS does); the TCP port is preferred.
func servicePort(svc *corev1.Service, port int32) *corev1.ServicePort {
	if svc == nil {
		return nil
	}
	var found *corev1.ServicePort
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Port != port {
			continue
		}
		if isTCP(sp) {
			return sp
		}
		found = sp
	}
	return found
}

// isTCP reports whether a Service port is TCP, the default protocol.
func isTCP(sp *corev1.ServicePort) bool {
	return sp.Protocol == "" || sp.Protocol == corev1.ProtocolTCP
}

// backendProtocol returns the protocol a route of routeKind speaks to port sp of obj, the
// protocol the port declares with its appProtocol (HTTP/1.1 when it declares none), and whether
// the declared protocol runs over TLS (https, kubernetes.io/wss), which the caller must then
// find in a BackendTLSPolicy. GRPCRoutes speak HTTP/2 (h2c, or h2 over the policy's TLS) to
// any HTTP port; TCPRoutes and TLSRoutes forward bytes whatever the port declares.
//
// An appProtocol that Strait cannot speak makes the backend invalid with UnsupportedProtocol, as
// Gateway API requires: a port that says it speaks something else must not get HTTP/1.1.
func backendProtocol(routeKind string, obj backendObject, sp *corev1.ServicePort) (speaks, declared ir.AppProtocol, needsTLS bool, err *condError) {
	if !isTCP(sp) {
		return "", "", false, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonUnsupportedProtocol),
			"port %d is %s; only TCP backends are supported", sp.Port, sp.Protocol)
	}
	declared, needsTLS, known := declaredProtocol(sp.AppProtocol)
	switch routeKind {
	case "TCPRoute", "TLSRoute":
		return ir.AppTCP, declared, false, nil
	}
	if !known {
		return "", "", false, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonUnsupportedProtocol),
			"port %d of %s has appProtocol %q, which is not supported: leave it unset or use %s, %s or %s, or %s or %s with a BackendTLSPolicy",
			sp.Port, obj, *sp.AppProtocol, appProtocolHTTP, appProtocolH2C, appProtocolWS, appProtocolHTTPS, appProtocolWSS)
	}
	if routeKind == "GRPCRoute" {
		if declared == ir.AppWebSocket {
			return "", "", false, newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonUnsupportedProtocol),
				"port %d speaks %s, which cannot carry gRPC", sp.Port, *sp.AppProtocol)
		}
		return ir.AppH2C, declared, needsTLS, nil
	}
	return declared, declared, needsTLS, nil
}

// declaredProtocol returns the protocol an appProtocol declares and whether it runs over TLS;
// known is false for a protocol Strait does not speak. No appProtocol declares HTTP/1.1.
func declaredProtocol(appProtocol *string) (proto ir.AppProtocol, overTLS, known bool) {
	if appProtocol == nil {
		return ir.AppHTTP1, false, true
	}
	switch p := *appProtocol; {
	case p == "" || strings.EqualFold(p, appProtocolHTTP):
		return ir.AppHTTP1, false, true
	case strings.EqualFold(p, appProtocolHTTPS):
		return ir.AppHTTP1, true, true
	case p == appProtocolH2C:
		return ir.AppH2C, false, true
	case p == appProtocolWS:
		return ir.AppWebSocket, false, true
	case p == appProtocolWSS:
		return ir.AppWebSocket, true, true
	}
	return "", false, false
}

// backendTLS returns the TLS that the BackendTLSPolicy attached to port portName of obj (in the
// route's cluster ci) asks for, nil when no policy is attached, and records the status of every
// policy involved for the Gateway gw. A policy that cannot be honored is an error: Gateway API
// forbids falling back to plaintext.
func (t *translation) backendTLS(ci *clusterIndex, gw types.NamespacedName, obj backendObject, portName string) (*ir.UpstreamTLS, *condError) {
	effective, conflicted := attachedPolicy(ci.res.BackendTLSPolicies, backendTLSTargets, obj, portName)
	for _, p := range conflicted {
		if anc := t.policyAncestor(ci.info.Name, "BackendTLSPolicy", p, gatewayRef(gw)); anc != nil {
			setPolicyCondition(anc, p.Generation, string(gwapiv1.PolicyConditionAccepted), newCondError(
				string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonConflicted),
				"BackendTLSPolicy %s/%s takes precedence for %s", effective.Namespace, effective.Name, obj), "")
		}
	}
	if effective == nil {
		return nil, nil
	}
	tls, accepted, resolvedRefs := ci.evaluateBackendTLSPolicy(effective)
	if anc := t.policyAncestor(ci.info.Name, "BackendTLSPolicy", effective, gatewayRef(gw)); anc != nil {
		setPolicyCondition(anc, effective.Generation, string(gwapiv1.PolicyConditionAccepted), accepted,
			"BackendTLSPolicy is accepted")
		setPolicyCondition(anc, effective.Generation, string(gwapiv1.BackendTLSPolicyConditionResolvedRefs), resolvedRefs,
			"All references are resolved")
	}
	var problems []string
	for _, e := range []*condError{accepted, resolvedRefs} {
		if e != nil {
			problems = append(problems, e.Error())
		}
	}
	if len(problems) > 0 {
		return nil, newCondError(string(gwapiv1.RouteConditionResolvedRefs), reasonInvalidBackendTLS,
			"BackendTLSPolicy %s/%s for %s cannot be honored: %s", effective.Namespace, effective.Name, obj, strings.Join(problems, "; "))
	}
	return tls, nil
}

// evaluateBackendTLSPolicy validates a BackendTLSPolicy and builds the TLS it asks for.
// accepted and resolvedRefs are the policy's Accepted and ResolvedRefs problems, nil when the
// condition holds.
func (ci *clusterIndex) evaluateBackendTLSPolicy(p *gwapiv1.BackendTLSPolicy) (tls *ir.UpstreamTLS, accepted, resolvedRefs *condError) {
	invalid := func(format string, args ...any) {
		if accepted == nil {
			accepted = newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonInvalid), format, args...)
		}
	}
	v := p.Spec.Validation
	tls = &ir.UpstreamTLS{SNI: string(v.Hostname)}
	if v.Hostname == "" {
		invalid("validation.hostname is required")
	}
	for _, san := range v.SubjectAltNames {
		switch san.Type {
		case gwapiv1.HostnameSubjectAltNameType:
			tls.SubjectAltNames = append(tls.SubjectAltNames, string(san.Hostname))
		case gwapiv1.URISubjectAltNameType:
			tls.SubjectAltNames = append(tls.SubjectAltNames, string(san.URI))
		default:
			invalid("subjectAltName type %q is not supported", san.Type)
		}
	}
	wellKnown := ""
	if v.WellKnownCACertificates != nil {
		wellKnown = string(*v.WellKnownCACertificates)
	}
	switch {
	case wellKnown != "" && len(v.CACertificateRefs) > 0:
		invalid("validation sets both caCertificateRefs and wellKnownCACertificates")
	case wellKnown == string(gwapiv1.WellKnownCACertificatesSystem):
		tls.WellKnownCA = true
	case wellKnown != "":
		invalid("wellKnownCACertificates %q is not supported; use %q", wellKnown, gwapiv1.WellKnownCACertificatesSystem)
	case len(v.CACertificateRefs) == 0:
		invalid("validation sets neither caCertificateRefs nor wellKnownCACertificates")
	default:
		tls.CACertPEM, resolvedRefs = ci.caBundle(p.Namespace, v.CACertificateRefs)
		if tls.CACertPEM == nil && accepted == nil {
			accepted = newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.BackendTLSPolicyReasonNoValidCACertificate),
				"no caCertificateRef is valid")
		}
	}
	return tls, accepted, resolvedRefs
}

// caBundle concatenates the CA certificates that refs (in namespace ns) point to. The error
// names every invalid reference, with the reason of the first.
func (ci *clusterIndex) caBundle(ns string, refs []gwapiv1.LocalObjectReference) ([]byte, *condError) {
	var bundle []byte
	var first *condError
	var msgs []string
	for _, ref := range refs {
		data, err := ci.caCertificate(ns, ref)
		if err != nil {
			if first == nil {
				first = err
			}
			msgs = append(msgs, err.Msg)
			continue
		}
		bundle = append(bundle, data...)
	}
	if first != nil {
		first.Msg = strings.Join(msgs, "; ")
	}
	return bundle, first
}

// caCertificate returns the PEM CA certificates under key ca.crt of the ConfigMap or Secret ref
// points to in namespace ns.
func (ci *clusterIndex) caCertificate(ns string, ref gwapiv1.LocalObjectReference) ([]byte, *condError) {
	invalidRef := func(format string, args ...any) *condError {
		return newCondError(string(gwapiv1.BackendTLSPolicyConditionResolvedRefs),
			string(gwapiv1.BackendTLSPolicyReasonInvalidCACertificateRef), format, args...)
	}
	var data []byte
	switch {
	case ref.Group == "" && ref.Kind == "ConfigMap":
		cm := ci.configMaps[nsName(ns, string(ref.Name))]
		if cm == nil {
			return nil, invalidRef("ConfigMap %s/%s not found", ns, ref.Name)
		}
		s, ok := cm.Data[caCertKey]
		if !ok {
			return nil, invalidRef("ConfigMap %s/%s has no key %s", ns, ref.Name, caCertKey)
		}
		data = []byte(s)
	case ref.Group == "" && ref.Kind == "Secret":
		secret := ci.secrets[nsName(ns, string(ref.Name))]
		if secret == nil {
			return nil, invalidRef("Secret %s/%s not found", ns, ref.Name)
		}
		var ok bool
		if data, ok = secret.Data[caCertKey]; !ok {
			return nil, invalidRef("Secret %s/%s has no key %s", ns, ref.Name, caCertKey)
		}
	default:
		return nil, newCondError(string(gwapiv1.BackendTLSPolicyConditionResolvedRefs), string(gwapiv1.BackendTLSPolicyReasonInvalidKind),
			"caCertificateRef %q of group %q and kind %q is not supported: use a ConfigMap or a Secret", ref.Name, ref.Group, ref.Kind)
	}
	if err := checkCertificatesPEM(data); err != nil {
		return nil, invalidRef("%s %s/%s key %s: %v", ref.Kind, ns, ref.Name, caCertKey, err)
	}
	return data, nil
}

// checkCertificatesPEM checks that data is one or more PEM certificates and nothing else.
func checkCertificatesPEM(data []byte) error {
	n := 0
	for rest := data; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return errors.New("data outside PEM blocks")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", n+1, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}

// setPolicyCondition sets condition condType of a policy ancestor: False with the problem's
// reason, or True with reason condType (Gateway API's True reasons for Accepted and ResolvedRefs
// are their types) and okMsg. A policy reaches one Gateway through every backend it attaches
// to; the first False wins, so that a problem shows whatever the order of the routes.
func setPolicyCondition(anc *gwapiv1.PolicyAncestorStatus, generation int64, condType string, problem *condError, okMsg string) {
	for _, c := range anc.Conditions {
		if c.Type == condType && c.Status == metav1.ConditionFalse {
			return
		}
	}
	if problem != nil {
		setCondition(&anc.Conditions, generation, condType, false, problem.Reason, problem.Msg)
		return
	}
	setCondition(&anc.Conditions, generation, condType, true, condType, okMsg)
}
