package xds

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-gw/strait/translator/ir"
)

// Resources are the xDS resources of one proxy node. Every slice is sorted by resource name
// and every resource has passed its ValidateAll.
type Resources struct {
	// Listeners are socket listeners, one per IR listener (API listeners for proxyless gRPC).
	Listeners []*listenerv3.Listener
	// Routes are the route tables the listeners' connection managers fetch over RDS.
	Routes []*routev3.RouteConfiguration
	// Clusters are the backends, each fetching its endpoints over EDS.
	Clusters []*clusterv3.Cluster
	// Endpoints are the endpoints of each cluster, by locality.
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets are the certificates TLS listeners serve, fetched over SDS.
	Secrets []*tlsv3.Secret
}

// Build maps the IR of one proxy node to Envoy resources. It fails, naming the resource, when
// the IR breaks its contract (an unknown backend, a chain with no action) or when a resource
// would not pass Envoy's validation; nothing it returns needs checking again.
func Build(p *ir.Proxy) (*Resources, error) {
	if p == nil {
		return nil, errors.New("build xds: nil proxy")
	}
	b := &builder{
		backends: make(map[string]*ir.Backend, len(p.Backends)),
		affinity: make(map[string]bool),
		routes:   make(map[string]*routev3.RouteConfiguration),
		secrets:  make(map[string]*tlsv3.Secret),
	}
	for _, be := range p.Backends {
		if _, dup := b.backends[be.Name]; dup {
			return nil, fmt.Errorf("backend %q: duplicate name", be.Name)
		}
		b.backends[be.Name] = be
	}

	res := &Resources{}
	// Listeners first: building their chains collects the route tables and certificates
	// they reference and the backends that need hash-based load balancing, which the
	// clusters built below depend on.
	for _, l := range p.Listeners {
		lis, err := b.listener(l)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		res.Listeners = append(res.Listeners, lis)
	}
	for _, be := range p.Backends {
		c, err := b.cluster(be)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", be.Name, err)
		}
		res.Clusters = append(res.Clusters, c)
		res.Endpoints = append(res.Endpoints, clusterLoadAssignment(be))
	}
	for _, rc := range b.routes {
		res.Routes = append(res.Routes, rc)
	}
	for _, s := range b.secrets {
		res.Secrets = append(res.Secrets, s)
	}
	if err := res.finish(); err != nil {
		return nil, err
	}
	return res, nil
}

// builder holds what one Build collects while it walks the IR.
type builder struct {
	backends map[string]*ir.Backend
	// affinity names the backends of routes with session affinity; their clusters hash.
	affinity map[string]bool
	routes   map[string]*routev3.RouteConfiguration
	secrets  map[string]*tlsv3.Secret
}

// validator is implemented by every generated Envoy message.
type validator interface {
	proto.Message
	ValidateAll() error
}

// typedConfig validates m and packs it into an Any. Validating a resource does not look
// inside its Any fields, so every packed message is checked here.
func typedConfig(m validator) (*anypb.Any, error) {
	if err := m.ValidateAll(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	a, err := anypb.New(m)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return a, nil
}

// mustTypedConfig packs a constant message at package initialisation.
func mustTypedConfig(m validator) *anypb.Any {
	a, err := typedConfig(m)
	if err != nil {
		panic(err)
	}
	return a
}

// adsConfigSource points a reference (RDS, EDS, SDS) at the ADS stream it came from.
func adsConfigSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// finish sorts every resource type by name and validates each resource.
func (r *Resources) finish() error {
	return errors.Join(
		sortAndValidate("listener", r.Listeners, (*listenerv3.Listener).GetName),
		sortAndValidate("route configuration", r.Routes, (*routev3.RouteConfiguration).GetName),
		sortAndValidate("cluster", r.Clusters, (*clusterv3.Cluster).GetName),
		sortAndValidate("endpoints", r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName),
		sortAndValidate("secret", r.Secrets, (*tlsv3.Secret).GetName),
	)
}

func sortAndValidate[T validator](kind string, items []T, name func(T) string) error {
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(name(a), name(b)) })
	for i, item := range items {
		if i > 0 && name(items[i-1]) == name(item) {
			return fmt.Errorf("%s %q: duplicate name", kind, name(item))
		}
		if err := item.ValidateAll(); err != nil {
			return fmt.Errorf("%s %q: %w", kind, name(item), err)
		}
	}
	return nil
}
