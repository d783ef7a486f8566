package translator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator/ir"
)

// BackendTrafficPolicies attach to Services and ServiceImports of their own cluster and
// namespace and apply to the backendRefs of that cluster's routes naming them: a policy on a
// ServiceImport in cluster us configures the Gateways of us that use the import, and a policy
// on the same ServiceImport in eu configures those of eu. Policies of different clusters never
// combine; each Gateway follows the policy of its own cluster, which its owners control.
//
// A policy's status has one ancestor per Gateway of its cluster whose routes use a target.
// A target that is missing, or a policy no Gateway uses yet, is reported with the target
// itself as the ancestor, so that the status always says whether the policy was accepted.

const backendTrafficPolicyKind = straitv1alpha1.BackendTrafficPolicyKind

// trafficPolicy is a BackendTrafficPolicy checked and translated into the Backend fields it
// sets, once per translation.
type trafficPolicy struct {
	// name is "<cluster>/<namespace>/<name>", ir.Backend.Policy.
	name string
	// invalid says why the policy cannot be honored; the other fields are then unset.
	invalid          *condError
	healthCheck      *ir.HealthCheck
	outlierDetection *ir.OutlierDetection
	loadBalancer     *ir.LoadBalancer
	circuitBreaker   *ir.CircuitBreaker
	connectTimeout   time.Duration
}

// trafficTargets returns the targetRefs of a BackendTrafficPolicy.
func trafficTargets(p *straitv1alpha1.BackendTrafficPolicy) []gwapiv1.LocalPolicyTargetReferenceWithSectionName {
	return p.Spec.TargetRefs
}

// backendTraffic returns the BackendTrafficPolicy that applies to port portName of obj for
// the routes of cluster ci, nil when none does or it is invalid, and records the status of
// every policy involved for the Gateway gw. An invalid policy leaves the backend with its
// defaults: unlike TLS, nothing about it makes the backend unsafe to use.
func (t *translation) backendTraffic(ci *clusterIndex, gw types.NamespacedName, obj backendObject, portName string) *trafficPolicy {
	effective, conflicted := attachedPolicy(ci.res.BackendTrafficPolicies, trafficTargets, obj, portName)
	for _, p := range conflicted {
		if anc := t.policyAncestor(ci.info.Name, backendTrafficPolicyKind, p, gatewayRef(gw)); anc != nil {
			setPolicyCondition(anc, p.Generation, string(gwapiv1.PolicyConditionAccepted), conflictedWith(effective, obj), "")
		}
	}
	if effective == nil {
		return nil
	}
	tp := t.trafficPolicy(ci.info.Name, effective)
	if anc := t.policyAncestor(ci.info.Name, backendTrafficPolicyKind, effective, gatewayRef(gw)); anc != nil {
		setPolicyCondition(anc, effective.Generation, string(gwapiv1.PolicyConditionAccepted), tp.invalid, "BackendTrafficPolicy is accepted")
	}
	if tp.invalid != nil {
		return nil
	}
	return tp
}

func conflictedWith(winner *straitv1alpha1.BackendTrafficPolicy, obj backendObject) *condError {
	return newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonConflicted),
		"BackendTrafficPolicy %s/%s takes precedence for %s", winner.Namespace, winner.Name, obj)
}

// trafficPolicy translates p, a policy of cluster, once.
func (t *translation) trafficPolicy(cluster string, p *straitv1alpha1.BackendTrafficPolicy) *trafficPolicy {
	if tp := t.trafficPolicies[p]; tp != nil {
		return tp
	}
	tp := translateTrafficPolicy(&p.Spec)
	tp.name = cluster + "/" + p.Namespace + "/" + p.Name
	t.trafficPolicies[p] = tp
	return tp
}

// applyTo sets the fields of b that the policy sets. An HTTP health check without a host name
// sends the backend's DNS name.
func (tp *trafficPolicy) applyTo(b *ir.Backend) {
	b.Policy = tp.name
	b.HealthCheck, b.OutlierDetection, b.LoadBalancer, b.CircuitBreaker, b.ConnectTimeout = tp.healthCheck, tp.outlierDetection, tp.loadBalancer, tp.circuitBreaker, tp.connectTimeout
	if hc := tp.healthCheck; hc != nil && hc.HTTP != nil && hc.HTTP.Host == "" {
		// The policy's check is shared by its backends: each gets a copy with its own host.
		withHost, http := *hc, *hc.HTTP
		http.Host = serviceDNSName(b.Target)
		withHost.HTTP = &http
		b.HealthCheck = &withHost
	}
}

// serviceDNSName is the name a Service or ServiceImport has in cluster DNS (KEP-1645 for the
// clusterset domain).
func serviceDNSName(target ir.Target) string {
	if target.Kind == ir.TargetServiceImport {
		return target.Name + "." + target.Namespace + ".svc.clusterset.local"
	}
	return target.Name + "." + target.Namespace + ".svc.cluster.local"
}

// specChecker collects the problems of a policy spec. The API server checks most of them with
// the CRD's schema, but manifests read from files are only decoded, so every one is checked
// again here.
type specChecker struct{ problems []string }

func (c *specChecker) invalid(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// duration parses an optional Gateway API duration, def when unset; it must be positive.
func (c *specChecker) duration(field string, d *gwapiv1.Duration, def string) time.Duration {
	s := def
	if d != nil {
		s = string(*d)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		c.invalid("%s: %q is not a positive duration", field, s)
		return 0
	}
	return v
}

// count returns an optional count, def when unset; it must be in [lo, hi].
func (c *specChecker) count(field string, v *int32, def, lo, hi int32) uint32 {
	n := def
	if v != nil {
		n = *v
	}
	if n < lo || n > hi {
		c.invalid("%s: %d is not in [%d, %d]", field, n, lo, hi)
		return 0
	}
	return uint32(n)
}

// translateTrafficPolicy checks a policy spec and translates it, with the API's defaults for
// unset fields.
func translateTrafficPolicy(spec *straitv1alpha1.BackendTrafficPolicySpec) *trafficPolicy {
	c := &specChecker{}
	tp := &trafficPolicy{}
	if hc := spec.HealthCheck; hc != nil && hc.Active != nil {
		tp.healthCheck = c.healthCheck(hc.Active)
	}
	if od := spec.OutlierDetection; od != nil {
		tp.outlierDetection = &ir.OutlierDetection{
			Consecutive5xx:           c.count("outlierDetection.consecutive5xx", od.Consecutive5xx, straitv1alpha1.DefaultOutlierConsecutive5xx, 1, maxInt32),
			ConsecutiveGatewayErrors: c.count("outlierDetection.consecutiveGatewayErrors", od.ConsecutiveGatewayErrors, straitv1alpha1.DefaultOutlierConsecutiveGatewayErrors, 1, maxInt32),
			Interval:                 c.duration("outlierDetection.interval", od.Interval, straitv1alpha1.DefaultOutlierInterval),
			BaseEjectionTime:         c.duration("outlierDetection.baseEjectionTime", od.BaseEjectionTime, straitv1alpha1.DefaultOutlierBaseEjectionTime),
			MaxEjectionPercent:       c.count("outlierDetection.maxEjectionPercent", od.MaxEjectionPercent, straitv1alpha1.DefaultOutlierMaxEjectionPercent, 0, 100),
		}
	}
	if lb := spec.LoadBalancer; lb != nil {
		tp.loadBalancer = c.loadBalancer(lb)
	}
	if cb := spec.CircuitBreaker; cb != nil {
		tp.circuitBreaker = &ir.CircuitBreaker{
			MaxConnections:      c.count("circuitBreaker.maxConnections", cb.MaxConnections, straitv1alpha1.DefaultMaxConnections, 1, maxInt32),
			MaxPendingRequests:  c.count("circuitBreaker.maxPendingRequests", cb.MaxPendingRequests, straitv1alpha1.DefaultMaxPendingRequests, 0, maxInt32),
			MaxParallelRequests: c.count("circuitBreaker.maxParallelRequests", cb.MaxParallelRequests, straitv1alpha1.DefaultMaxParallelRequests, 0, maxInt32),
			MaxParallelRetries:  c.count("circuitBreaker.maxParallelRetries", cb.MaxParallelRetries, straitv1alpha1.DefaultMaxParallelRetries, 0, maxInt32),
		}
	}
	if spec.ConnectTimeout != nil {
		tp.connectTimeout = c.duration("connectTimeout", spec.ConnectTimeout, "")
	}
	if len(c.problems) > 0 {
		return &trafficPolicy{invalid: newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonInvalid),
			"%s", strings.Join(c.problems, "; "))}
	}
	return tp
}

const maxInt32 = 1<<31 - 1

func (c *specChecker) healthCheck(a *straitv1alpha1.ActiveHealthCheck) *ir.HealthCheck {
	hc := &ir.HealthCheck{
		Interval:           c.duration("healthCheck.active.interval", a.Interval, straitv1alpha1.DefaultHealthCheckInterval),
		Timeout:            c.duration("healthCheck.active.timeout", a.Timeout, straitv1alpha1.DefaultHealthCheckTimeout),
		UnhealthyThreshold: c.count("healthCheck.active.unhealthyThreshold", a.UnhealthyThreshold, straitv1alpha1.DefaultHealthCheckUnhealthyThreshold, 1, 100),
		HealthyThreshold:   c.count("healthCheck.active.healthyThreshold", a.HealthyThreshold, straitv1alpha1.DefaultHealthCheckHealthyThreshold, 1, 100),
	}
	switch a.Type {
	case straitv1alpha1.ActiveHealthCheckHTTP, "":
		h := &ir.HTTPHealthCheck{Path: straitv1alpha1.DefaultHealthCheckPath, ExpectedStatuses: []int{straitv1alpha1.DefaultHealthCheckStatus}}
		if a.HTTP != nil {
			if a.HTTP.Path != "" {
				h.Path = a.HTTP.Path
			}
			if a.HTTP.Hostname != nil {
				h.Host = string(*a.HTTP.Hostname)
			}
			if len(a.HTTP.ExpectedStatuses) > 0 {
				h.ExpectedStatuses = h.ExpectedStatuses[:0]
				for _, s := range a.HTTP.ExpectedStatuses {
					if s < 100 || s > 599 {
						c.invalid("healthCheck.active.http.expectedStatuses: %d is not an HTTP status", s)
					}
					h.ExpectedStatuses = append(h.ExpectedStatuses, int(s))
				}
				slices.Sort(h.ExpectedStatuses)
				h.ExpectedStatuses = slices.Compact(h.ExpectedStatuses)
			}
		}
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n") {
			c.invalid("healthCheck.active.http.path: %q must start with / and hold no spaces", h.Path)
		}
		hc.HTTP = h
	case straitv1alpha1.ActiveHealthCheckTCP:
		if a.HTTP != nil {
			c.invalid("healthCheck.active.http is only allowed when type is HTTP")
		}
	default:
		c.invalid("healthCheck.active.type: %q is not HTTP or TCP", a.Type)
	}
	return hc
}

func (c *specChecker) loadBalancer(lb *straitv1alpha1.LoadBalancer) *ir.LoadBalancer {
	out := &ir.LoadBalancer{Type: ir.LoadBalancerType(lb.Type)}
	switch lb.Type {
	case straitv1alpha1.LoadBalancerRoundRobin, straitv1alpha1.LoadBalancerLeastRequest, straitv1alpha1.LoadBalancerRandom:
		if lb.ConsistentHash != nil {
			c.invalid("loadBalancer.consistentHash is only allowed for RingHash and Maglev")
		}
	case straitv1alpha1.LoadBalancerRingHash, straitv1alpha1.LoadBalancerMaglev:
		if lb.ConsistentHash == nil {
			c.invalid("loadBalancer.consistentHash is required for %s", lb.Type)
			break
		}
		out.Hash = c.consistentHash(lb.ConsistentHash)
	default:
		c.invalid("loadBalancer.type: %q is not RoundRobin, LeastRequest, Random, RingHash or Maglev", lb.Type)
	}
	return out
}

func (c *specChecker) consistentHash(h *straitv1alpha1.ConsistentHash) *ir.SessionAffinity {
	if (h.Type == straitv1alpha1.ConsistentHashHeader) != (h.Header != nil) {
		c.invalid("loadBalancer.consistentHash.header is required when type is Header and not allowed otherwise")
	}
	if (h.Type == straitv1alpha1.ConsistentHashCookie) != (h.Cookie != nil) {
		c.invalid("loadBalancer.consistentHash.cookie is required when type is Cookie and not allowed otherwise")
	}
	switch {
	case h.Type == straitv1alpha1.ConsistentHashHeader && h.Header != nil:
		if h.Header.Name == "" {
			c.invalid("loadBalancer.consistentHash.header.name is required")
		}
		return &ir.SessionAffinity{Type: ir.AffinityHeader, Name: strings.ToLower(string(h.Header.Name))}
	case h.Type == straitv1alpha1.ConsistentHashCookie && h.Cookie != nil:
		if h.Cookie.Name == "" {
			c.invalid("loadBalancer.consistentHash.cookie.name is required")
		}
		a := &ir.SessionAffinity{Type: ir.AffinityCookie, Name: h.Cookie.Name}
		if h.Cookie.TTL != nil {
			a.TTL = c.duration("loadBalancer.consistentHash.cookie.ttl", h.Cookie.TTL, "")
		}
		return a
	case h.Type == straitv1alpha1.ConsistentHashSourceIP:
		return &ir.SessionAffinity{Type: ir.AffinitySourceIP}
	case h.Type != straitv1alpha1.ConsistentHashHeader && h.Type != straitv1alpha1.ConsistentHashCookie:
		c.invalid("loadBalancer.consistentHash.type: %q is not Header, Cookie or SourceIP", h.Type)
	}
	return nil
}

// finishTrafficPolicies records the status of the BackendTrafficPolicies of cluster ci that the
// routes did not (fully) report: targets that are missing or not of a supported kind, and
// policies that no Gateway uses, each with the target as the ancestor. It runs after the
// cluster's routes, which record the Gateways that use each policy.
func (t *translation) finishTrafficPolicies(ci *clusterIndex) {
	for _, p := range ci.res.BackendTrafficPolicies {
		usedByGateway := false
		if s := t.statuses[statusKey{ci.info.Name, backendTrafficPolicyKind, p.Namespace, p.Name}]; s != nil {
			st, _ := s.Status.(*gwapiv1.PolicyStatus)
			usedByGateway = st != nil && len(st.Ancestors) > 0
		}
		for _, ref := range p.Spec.TargetRefs {
			problem := t.idx.checkTarget(ci, p.Namespace, ref)
			if problem == nil && usedByGateway {
				continue
			}
			if problem == nil {
				obj := backendObject{group: string(ref.Group), kind: string(ref.Kind), namespace: p.Namespace, name: string(ref.Name)}
				section := ""
				if ref.SectionName != nil {
					section = string(*ref.SectionName)
				}
				if winner, _ := attachedPolicy(ci.res.BackendTrafficPolicies, trafficTargets, obj, section); winner != p {
					problem = conflictedWith(winner, obj)
				} else {
					problem = t.trafficPolicy(ci.info.Name, p).invalid
				}
			}
			if anc := t.policyAncestor(ci.info.Name, backendTrafficPolicyKind, p, targetAncestor(p.Namespace, ref)); anc != nil {
				setPolicyCondition(anc, p.Generation, string(gwapiv1.PolicyConditionAccepted), problem,
					"BackendTrafficPolicy is accepted; no route of a Gateway of this cluster uses the target yet")
			}
		}
	}
}

// targetAncestor is a policy's target as the ancestor of its status.
func targetAncestor(namespace string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) gwapiv1.ParentReference {
	group, kind, ns := ref.Group, ref.Kind, gwapiv1.Namespace(namespace)
	return gwapiv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: ref.Name, SectionName: ref.SectionName}
}

// checkTarget says why a policy of cluster ci in namespace ns cannot attach to ref: a kind
// other than Service and ServiceImport is Invalid; a Service that neither exists in ci nor is
// the mirror of another cluster's exported Service, a ServiceImport that no cluster exports,
// or a sectionName that names no port, is TargetNotFound.
func (idx *index) checkTarget(ci *clusterIndex, ns string, ref gwapiv1.LocalPolicyTargetReferenceWithSectionName) *condError {
	key := nsName(ns, string(ref.Name))
	var services []*corev1.Service
	switch {
	case ref.Group == "" && ref.Kind == "Service":
		if svc := ci.services[key]; svc != nil && svc.Labels[MirrorOfClusterLabel] == "" {
			services = append(services, svc)
		} else if cluster, service, ok := idx.mirrorSource(ci, ns, string(ref.Name)); ok {
			services = append(services, idx.clusters[cluster].services[nsName(ns, service)])
		}
	case ref.Group == mcsv1alpha1.GroupName && ref.Kind == "ServiceImport":
		for _, cluster := range idx.exporters[key] {
			services = append(services, idx.clusters[cluster].services[key])
		}
	default:
		return newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonInvalid),
			"targetRef %q of group %q and kind %q is not supported: use a Service or a %s ServiceImport", ref.Name, ref.Group, ref.Kind, mcsv1alpha1.GroupName)
	}
	if len(services) == 0 {
		why := "not found"
		if ref.Kind == "ServiceImport" {
			why = "not found: no cluster exports a Service of that namespace and name"
		}
		return newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonTargetNotFound),
			"%s %s/%s %s", ref.Kind, ns, ref.Name, why)
	}
	if ref.SectionName == nil || *ref.SectionName == "" {
		return nil
	}
	for _, svc := range services {
		for _, sp := range svc.Spec.Ports {
			if sp.Name == string(*ref.SectionName) {
				return nil
			}
		}
	}
	return newCondError(string(gwapiv1.PolicyConditionAccepted), string(gwapiv1.PolicyReasonTargetNotFound),
		"%s %s/%s has no port named %q", ref.Kind, ns, ref.Name, *ref.SectionName)
}
