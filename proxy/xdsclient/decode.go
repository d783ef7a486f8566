package xdsclient

import (
	"crypto/sha256"
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceType indexes the five resource types a proxy subscribes to.
type resourceType int

const (
	listenerType resourceType = iota
	routeType
	clusterType
	endpointType
	secretType
	numTypes
)

// allTypes lists the types in the order a new stream subscribes to them: the wildcard types
// first, whose resources name the others.
var allTypes = []resourceType{listenerType, clusterType, routeType, endpointType, secretType}

// kinds describes each resource type.
var kinds = [numTypes]struct {
	url  string
	name string // the message name, as logs and NACKs call it
	new  func() validator
	// refs returns the names of the resources of other types a resource references.
	refs func(validator) (refs, error)
}{
	listenerType: {resource.ListenerType, "Listener", func() validator { return &listenerv3.Listener{} }, listenerRefs},
	routeType:    {resource.RouteType, "RouteConfiguration", func() validator { return &routev3.RouteConfiguration{} }, noRefs},
	clusterType:  {resource.ClusterType, "Cluster", func() validator { return &clusterv3.Cluster{} }, clusterRefs},
	endpointType: {resource.EndpointType, "ClusterLoadAssignment", func() validator { return &endpointv3.ClusterLoadAssignment{} }, noRefs},
	secretType:   {resource.SecretType, "Secret", func() validator { return &tlsv3.Secret{} }, noRefs},
}

// typeOf returns the resource type of a type URL.
func typeOf(url string) (resourceType, bool) {
	for t := range numTypes {
		if kinds[t].url == url {
			return t, true
		}
	}
	return 0, false
}

func (t resourceType) String() string { return kinds[t].name }

// wildcard reports whether the type is subscribed to as a whole, as Envoy does listeners and
// clusters; the others are subscribed to by the names those reference.
func (t resourceType) wildcard() bool { return t == listenerType || t == clusterType }

// validator is implemented by every generated Envoy message.
type validator interface {
	proto.Message
	ValidateAll() error
}

// refs are the names of the resources of each type one resource references.
type refs [numTypes][]string

// entry is one resource that decoded and passed validation.
type entry struct {
	msg validator
	// version is the resource's delta xDS version; state of the world has none.
	version string
	// hash identifies the resource's content, whichever protocol delivered it.
	hash [sha256.Size]byte
	refs refs
}

// decode unmarshals and validates a resource of type t, and finds what it references. The
// fields validation would not look into that references come from (connection managers, TLS
// contexts) are unmarshalled and validated too. The name is known, even on error, once the
// resource unmarshals.
func decode(t resourceType, a *anypb.Any) (string, *entry, error) {
	if a == nil {
		return "", nil, errors.New("no resource body")
	}
	if a.GetTypeUrl() != kinds[t].url {
		return "", nil, fmt.Errorf("type %s in a %s response", a.GetTypeUrl(), t)
	}
	msg := kinds[t].new()
	if err := proto.Unmarshal(a.GetValue(), msg); err != nil {
		return "", nil, fmt.Errorf("unmarshal: %w", err)
	}
	name := resourceName(msg)
	if err := msg.ValidateAll(); err != nil {
		return name, nil, fmt.Errorf("validate: %w", err)
	}
	r, err := kinds[t].refs(msg)
	if err != nil {
		return name, nil, err
	}
	return name, &entry{msg: msg, hash: sha256.Sum256(a.GetValue()), refs: r}, nil
}

// resourceError names a rejected resource: by name, or by its position in the response when
// it did not unmarshal.
func resourceError(t resourceType, name string, index int, err error) error {
	if name == "" {
		return fmt.Errorf("%s #%d: %w", t, index, err)
	}
	return fmt.Errorf("%s %q: %w", t, name, err)
}

func resourceName(m validator) string {
	switch m := m.(type) {
	case *listenerv3.Listener:
		return m.GetName()
	case *routev3.RouteConfiguration:
		return m.GetName()
	case *clusterv3.Cluster:
		return m.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return m.GetClusterName()
	case *tlsv3.Secret:
		return m.GetName()
	}
	return ""
}

func noRefs(validator) (refs, error) { return refs{}, nil }

// listenerRefs finds the route configurations the listener's connection managers fetch over
// RDS and the secrets its TLS contexts fetch over SDS. Every reference is fetched on the ADS
// stream, whatever config source it names: the stream is the only source a proxy has.
func listenerRefs(m validator) (refs, error) {
	l := m.(*listenerv3.Listener)
	var r refs
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	configs := []*anypb.Any{l.GetApiListener().GetApiListener()}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			configs = append(configs, f.GetTypedConfig())
		}
		var tc tlsv3.DownstreamTlsContext
		if err := unpack(fc.GetTransportSocket(), &tc); err != nil {
			return r, fmt.Errorf("filter chain %q: %w", fc.GetName(), err)
		}
		r[secretType] = append(r[secretType], sdsNames(tc.GetCommonTlsContext())...)
		if s := tc.GetSessionTicketKeysSdsSecretConfig(); s != nil {
			r[secretType] = append(r[secretType], s.GetName())
		}
	}
	for _, c := range configs {
		var hcm hcmv3.HttpConnectionManager
		if !c.MessageIs(&hcm) {
			continue
		}
		if err := unpackAny(c, &hcm); err != nil {
			return r, err
		}
		if name := hcm.GetRds().GetRouteConfigName(); name != "" {
			r[routeType] = append(r[routeType], name)
		}
	}
	return r, nil
}

// clusterRefs finds the endpoints an EDS cluster fetches and the secrets its TLS contexts
// fetch over SDS.
func clusterRefs(m validator) (refs, error) {
	c := m.(*clusterv3.Cluster)
	var r refs
	if c.GetType() == clusterv3.Cluster_EDS {
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		r[endpointType] = []string{name}
	}
	sockets := []*corev3.TransportSocket{c.GetTransportSocket()}
	for _, match := range c.GetTransportSocketMatches() {
		sockets = append(sockets, match.GetTransportSocket())
	}
	for _, ts := range sockets {
		var tc tlsv3.UpstreamTlsContext
		if err := unpack(ts, &tc); err != nil {
			return r, err
		}
		r[secretType] = append(r[secretType], sdsNames(tc.GetCommonTlsContext())...)
	}
	return r, nil
}

// unpack unmarshals a transport socket's config into tc when it holds one; a socket of
// another kind (or none) leaves tc empty.
func unpack(ts *corev3.TransportSocket, tc validator) error {
	if c := ts.GetTypedConfig(); c.MessageIs(tc) {
		return unpackAny(c, tc)
	}
	return nil
}

func unpackAny(a *anypb.Any, m validator) error {
	name := m.ProtoReflect().Descriptor().Name()
	if err := a.UnmarshalTo(m); err != nil {
		return fmt.Errorf("unmarshal %s: %w", name, err)
	}
	if err := m.ValidateAll(); err != nil {
		return fmt.Errorf("validate %s: %w", name, err)
	}
	return nil
}

// sdsNames lists the secrets a TLS context fetches over SDS.
func sdsNames(c *tlsv3.CommonTlsContext) []string {
	var names []string
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		names = append(names, s.GetName())
	}
	for _, s := range []*tlsv3.SdsSecretConfig{
		c.GetValidationContextSdsSecretConfig(),
		c.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(),
	} {
		if s != nil {
			names = append(names, s.GetName())
		}
	}
	return names
}
