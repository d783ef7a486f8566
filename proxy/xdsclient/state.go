package xdsclient

import (
	"crypto/sha256"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/strait-gw/strait/xds"
)

// state is every valid resource received and still wanted, by type and name: what the
// control plane believes the proxy has, whether Apply accepted it or not. It outlives
// streams, so that a new stream starts from it.
type state struct {
	resources [numTypes]map[string]*entry
	// received marks the types a response has arrived for. For a wildcard type, having no
	// resources before the first means not knowing them yet.
	received [numTypes]bool
}

func newState() *state {
	s := &state{}
	for t := range numTypes {
		s.resources[t] = make(map[string]*entry)
	}
	return s
}

// names is a set of resource names.
type names map[string]bool

// sorted lists the names in order.
func (n names) sorted() []string { return slices.Sorted(maps.Keys(n)) }

// wanted returns, for each type subscribed to by name, the names the listeners and
// clusters reference.
func (s *state) wanted() [numTypes]names {
	var w [numTypes]names
	for t := range numTypes {
		if !t.wildcard() {
			w[t] = make(names)
		}
	}
	for _, t := range []resourceType{listenerType, clusterType} {
		for _, e := range s.resources[t] {
			for ref, refNames := range e.refs {
				for _, name := range refNames {
					if name != "" && w[ref] != nil {
						w[ref][name] = true
					}
				}
			}
		}
	}
	return w
}

// prune drops the resources no longer referenced, as Envoy drops a route table with the
// last listener that uses it.
func (s *state) prune(want [numTypes]names) {
	for t := range numTypes {
		if t.wildcard() {
			continue
		}
		maps.DeleteFunc(s.resources[t], func(name string, _ *entry) bool { return !want[t][name] })
	}
}

// complete reports whether every type has been received and every referenced resource is
// present.
func (s *state) complete(want [numTypes]names) bool {
	for t := range numTypes {
		if t.wildcard() {
			if !s.received[t] {
				return false
			}
			continue
		}
		for name := range want[t] {
			if _, ok := s.resources[t][name]; !ok {
				return false
			}
		}
	}
	return true
}

// versions returns the delta versions of the resources of one type, for a new stream's
// initial_resource_versions.
func (s *state) versions(t resourceType) map[string]string {
	out := make(map[string]string)
	for name, e := range s.resources[t] {
		if e.version != "" {
			out[name] = e.version
		}
	}
	return out
}

// fingerprint identifies a configuration by the content of its resources.
type fingerprint [numTypes]map[string][sha256.Size]byte

func (f *fingerprint) equal(o *fingerprint) bool {
	if f == nil || o == nil {
		return f == o
	}
	for t := range numTypes {
		if !maps.Equal(f[t], o[t]) {
			return false
		}
	}
	return true
}

// fingerprint identifies the configuration the state holds.
func (s *state) fingerprint() *fingerprint {
	fp := &fingerprint{}
	for t := range numTypes {
		fp[t] = make(map[string][sha256.Size]byte, len(s.resources[t]))
		for name, e := range s.resources[t] {
			fp[t][name] = e.hash
		}
	}
	return fp
}

// configuration assembles the resources as Apply receives them, sorted by name. The
// messages are the state's own, shared and never modified.
func (s *state) configuration() *xds.Resources {
	return &xds.Resources{
		Listeners: sorted[*listenerv3.Listener](s.resources[listenerType]),
		Routes:    sorted[*routev3.RouteConfiguration](s.resources[routeType]),
		Clusters:  sorted[*clusterv3.Cluster](s.resources[clusterType]),
		Endpoints: sorted[*endpointv3.ClusterLoadAssignment](s.resources[endpointType]),
		Secrets:   sorted[*tlsv3.Secret](s.resources[secretType]),
	}
}

func sorted[T validator](m map[string]*entry) []T {
	out := make([]T, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name].msg.(T))
	}
	return out
}
