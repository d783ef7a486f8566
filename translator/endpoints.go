package translator

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// Raw locality priorities, before compaction: the proxy's own cluster, its region, the rest.
const (
	priorityOwnCluster uint32 = iota
	prioritySameRegion
	priorityOther
)

// RefreshEndpoints is the endpoint fast path. Given new Input in which only EndpointSlices
// changed and the proxies of the last full translation, it re-resolves each Backend's
// Localities from the input and returns proxies that share everything else with the old ones:
// listeners and routes are not touched, a backend whose localities did not change keeps its
// pointer, and a proxy none of whose backends changed is returned as is. A backend shared by
// several proxies is resolved once and stays shared. It never mutates the old proxies.
//
// Its cost is one index build plus the endpoints of the proxies' backends; anything other than
// EndpointSlices that changed (Services, exports, routes) needs a full Translate.
func RefreshEndpoints(in *Input, proxies []*ir.Proxy) []*ir.Proxy {
	idx := newIndex(in)
	refreshed := map[*ir.Backend]*ir.Backend{}
	out := make([]*ir.Proxy, len(proxies))
	for i, p := range proxies {
		backends := make([]*ir.Backend, len(p.Backends))
		changed := false
		for j, b := range p.Backends {
			nb, done := refreshed[b]
			if !done {
				nb = idx.refreshBackend(b)
				refreshed[b] = nb
			}
			backends[j] = nb
			changed = changed || nb != b
		}
		if !changed {
			out[i] = p
			continue
		}
		np := *p
		np.Backends = backends
		out[i] = &np
	}
	return out
}

// refreshBackend returns b with its localities resolved again: b itself when they are
// unchanged, otherwise a copy.
func (idx *index) refreshBackend(b *ir.Backend) *ir.Backend {
	localities := idx.localities(b.Target)
	if reflect.DeepEqual(localities, b.Localities) {
		return b
	}
	nb := *b
	nb.Localities = localities
	return &nb
}

// localities returns the endpoints of a target, one Locality per cluster that has any, sorted
// by priority then cluster name. Priorities rank clusters relative to the proxy's cluster
// (Target.From): its own cluster first, then the clusters of its region, then the others; they
// are then compacted so that the priorities present count up from 0 without gaps, which Envoy
// and grpc-go require. Clusters on another network than the proxy's are left out (see
// unreachableClusters).
func (idx *index) localities(target ir.Target) []*ir.Locality {
	from := idx.clusters[target.From]
	type clusterEndpoints struct {
		ci                     *clusterIndex
		endpoints, terminating []*ir.Endpoint
	}
	var found []clusterEndpoints
	anyReady := false
	for _, name := range idx.targetClusters(target) {
		ci := idx.clusters[name]
		if !reachable(from, ci) {
			continue
		}
		eps, terminating := ci.endpoints(nsName(target.Namespace, target.Name), int32(target.Port))
		found = append(found, clusterEndpoints{ci, eps, terminating})
		anyReady = anyReady || slices.ContainsFunc(eps, func(e *ir.Endpoint) bool { return e.Ready })
	}
	var out []*ir.Locality
	for _, f := range found {
		endpoints := f.endpoints
		if !anyReady && len(f.terminating) > 0 {
			// Nothing else is left: terminating endpoints that still serve take the
			// traffic, as Kubernetes' own proxies do.
			endpoints = slices.Concat(endpoints, f.terminating)
			sortEndpoints(endpoints)
		}
		if len(endpoints) == 0 {
			continue
		}
		out = append(out, &ir.Locality{
			Cluster:   f.ci.info.Name,
			Region:    f.ci.info.Region,
			Zone:      f.ci.info.Zone,
			Priority:  rawPriority(from, f.ci),
			Weight:    uint32(len(endpoints)),
			Endpoints: endpoints,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		return out[i].Cluster < out[j].Cluster
	})
	var next uint32
	for i, l := range out {
		raw := l.Priority
		l.Priority = next
		if i+1 < len(out) && out[i+1].Priority != raw {
			next++
		}
	}
	return out
}

// unreachableClusters returns the clusters, sorted, whose endpoints a target could use but that
// sit on another network than the proxy's cluster. localities leaves their endpoints out:
// reaching them needs the east-west gateway tunnel, which the translator does not build yet. A
// route can use this to say why a backend lacks some cluster's endpoints.
func (idx *index) unreachableClusters(target ir.Target) []string {
	from := idx.clusters[target.From]
	var out []string
	for _, name := range idx.targetClusters(target) {
		if ci := idx.clusters[name]; ci != nil && !reachable(from, ci) {
			out = append(out, name)
		}
	}
	return out
}

// reachability returns the ResolvedRefs error for a target (the resolution of obj) whose
// endpoints the proxy in target.From cannot reach at all: a Service of a cluster on another
// network (a mirror), or a ServiceImport every cluster of which that exports it with the port
// is on another network. localities leaves such endpoints out, so without the error the route
// would resolve to a backend without endpoints and answer 503 with nothing saying why. A
// ServiceImport that a reachable cluster serves resolves; its other clusters are only left out
// (unreachableClusters names them).
//
// The reason is BackendNotFound: of Gateway API's reasons it is the one that says the route has
// nothing to send to. Reaching other networks needs the east-west tunnel, which is not built yet.
func (idx *index) reachability(obj backendObject, target ir.Target) *condError {
	unreachable := idx.unreachableClusters(target)
	if len(unreachable) == 0 {
		return nil
	}
	if target.Kind != ir.TargetServiceImport {
		return newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
			"%s: cluster %s is %s, not reachable from cluster %s until the east-west tunnel exists",
			obj, target.Cluster, onNetwork(idx.clusters[target.Cluster]), target.From)
	}
	key := nsName(target.Namespace, target.Name)
	isUnreachable := map[string]bool{}
	for _, name := range unreachable {
		isUnreachable[name] = true
	}
	var serving []string
	for _, name := range idx.targetClusters(target) {
		ci := idx.clusters[name]
		if ci == nil || servicePort(ci.services[key], int32(target.Port)) == nil {
			continue
		}
		if !isUnreachable[name] {
			return nil
		}
		serving = append(serving, fmt.Sprintf("%s %s", name, onNetwork(ci)))
	}
	return newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonBackendNotFound),
		"%s is exported with port %d only by clusters on other networks (%s), not reachable from cluster %s until the east-west tunnel exists",
		obj, target.Port, strings.Join(serving, ", "), target.From)
}

// onNetwork describes the network of a cluster for condition messages: "on network net-a".
func onNetwork(ci *clusterIndex) string {
	if ci == nil || ci.info.Network == "" {
		return "on the unnamed network"
	}
	return "on network " + ci.info.Network
}

// targetClusters returns the clusters, sorted, whose endpoints a target may use: the Service's
// cluster, or every cluster exporting the ServiceImport's namespace/name.
func (idx *index) targetClusters(target ir.Target) []string {
	if target.Kind == ir.TargetServiceImport {
		return idx.exporters[nsName(target.Namespace, target.Name)]
	}
	return []string{target.Cluster}
}

// reachable reports whether a proxy in cluster from reaches endpoints of cluster to directly:
// both are known and on the same network.
func reachable(from, to *clusterIndex) bool {
	return from != nil && to != nil && from.info.Network == to.info.Network
}

// rawPriority ranks cluster to relative to a proxy in cluster from.
func rawPriority(from, to *clusterIndex) uint32 {
	switch {
	case from == to:
		return priorityOwnCluster
	case from.info.Region != "" && from.info.Region == to.info.Region:
		return prioritySameRegion
	default:
		return priorityOther
	}
}

// endpoints returns the endpoints of the port with the given number of Service svc in this
// cluster, from its EndpointSlices, sorted by address then port. The slice port is the one
// named like the Service port (both unnamed when the Service has a single unnamed port). Only
// IPv4 and IPv6 slices count (FQDN endpoints are not supported).
//
// An endpoint is ready unless its slice says it is not ready or terminating. Terminating
// endpoints that still serve are returned apart, ready, for when no endpoint of the backend
// is (see localities); those that no longer serve are left out. An address listed by several
// slices (as while slices are being replaced) counts once, in the best state any of them
// gives it.
func (ci *clusterIndex) endpoints(svc types.NamespacedName, port int32) (eps, terminating []*ir.Endpoint) {
	sp := servicePort(ci.services[svc], port)
	if sp == nil || !isTCP(sp) {
		return nil, nil
	}
	type addrPort struct {
		address string
		port    uint32
	}
	seen := map[addrPort]endpointState{}
	for _, es := range ci.slices[svc] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(es, sp.Name)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			// Addresses are fungible; Kubernetes lets consumers use the first one only.
			if len(ep.Addresses) == 0 {
				continue
			}
			key := addrPort{ep.Addresses[0], target}
			seen[key] = max(seen[key], conditionsState(ep.Conditions))
		}
	}
	// Map order does not matter: both lists are sorted below.
	for key, state := range seen {
		e := &ir.Endpoint{Address: key.address, Port: key.port}
		switch state {
		case endpointReady:
			e.Ready = true
			eps = append(eps, e)
		case endpointNotReady:
			eps = append(eps, e)
		case endpointTerminating:
			e.Ready = true
			terminating = append(terminating, e)
		}
	}
	sortEndpoints(eps)
	sortEndpoints(terminating)
	return eps, terminating
}

// sortEndpoints sorts endpoints by address then port.
func sortEndpoints(eps []*ir.Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].Address != eps[j].Address {
			return eps[i].Address < eps[j].Address
		}
		return eps[i].Port < eps[j].Port
	})
}

// slicePort returns the port number of the EndpointSlice port named name ("" for unnamed).
func slicePort(es *discoveryv1.EndpointSlice, name string) (uint32, bool) {
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn == name && p.Port != nil {
			return uint32(*p.Port), true
		}
	}
	return 0, false
}

// endpointState is what an endpoint's conditions allow, from worst to best.
type endpointState uint8

const (
	// endpointGone: terminating and no longer serving; never used.
	endpointGone endpointState = iota
	// endpointNotReady: not ready (yet); sent as unhealthy, so that it counts against its
	// locality's health.
	endpointNotReady
	// endpointTerminating: terminating but still serving; used only when nothing is ready.
	endpointTerminating
	endpointReady
)

// conditionsState reads an endpoint's conditions as Kubernetes defines them: an unknown
// readiness is ready, an unknown serving defers to readiness, and a terminating endpoint is
// never ready, only serving.
func conditionsState(c discoveryv1.EndpointConditions) endpointState {
	ready := c.Ready == nil || *c.Ready
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	switch {
	case c.Terminating != nil && *c.Terminating && serving:
		return endpointTerminating
	case c.Terminating != nil && *c.Terminating:
		return endpointGone
	case ready:
		return endpointReady
	}
	return endpointNotReady
}
