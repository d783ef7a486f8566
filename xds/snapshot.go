package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// servedTypes are the resource types a snapshot holds, with their type URLs.
var servedTypes = []struct {
	typ types.ResponseType
	url string
}{
	{types.Cluster, resource.ClusterType},
	{types.Endpoint, resource.EndpointType},
	{types.Listener, resource.ListenerType},
	{types.Route, resource.RouteType},
	{types.Secret, resource.SecretType},
}

// typeSet is the resources of one type with versions derived from their content, so that a
// type whose resources did not change keeps its version and no client is sent it again.
type typeSet struct {
	// version is the state-of-the-world version: a hash of every name and resource version.
	version string
	items   []types.Resource
	// versions maps each resource name to the hash of its content: its delta xDS version.
	versions map[string]string
}

// variant is one snapshot's worth of typeSets, indexed by response type.
type variant [types.UnknownType]typeSet

// hasher hashes resources; a resource shared by two variants is hashed once.
type hasher map[types.Resource]string

var marshalDeterministic = proto.MarshalOptions{Deterministic: true}

func (h hasher) hash(r types.Resource) (string, error) {
	if v, ok := h[r]; ok {
		return v, nil
	}
	b, err := marshalDeterministic.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("marshal %s %q: %w", r.ProtoReflect().Descriptor().Name(), cache.GetResourceName(r), err)
	}
	// The same hash go-control-plane gives the resources it sends to delta clients, which
	// they send back on reconnect: with it, a resumed stream resends only what changed.
	v := cache.HashResource(b)
	h[r] = v
	return v, nil
}

// newTypeSet versions items, which are sorted by name.
func newTypeSet[T types.Resource](items []T, h hasher) (typeSet, error) {
	ts := typeSet{items: make([]types.Resource, len(items)), versions: make(map[string]string, len(items))}
	all := sha256.New()
	for i, item := range items {
		v, err := h.hash(item)
		if err != nil {
			return typeSet{}, err
		}
		name := cache.GetResourceName(item)
		ts.items[i] = item
		ts.versions[name] = v
		// Names and versions have no NUL or newline, so the encoding is unambiguous.
		fmt.Fprintf(all, "%s\x00%s\n", name, v)
	}
	ts.version = hex.EncodeToString(all.Sum(nil)[:8])
	return ts, nil
}

func newVariant(r *Resources, h hasher) (variant, error) {
	var v variant
	var err error
	if v[types.Listener], err = newTypeSet(r.Listeners, h); err != nil {
		return v, err
	}
	if v[types.Route], err = newTypeSet(r.Routes, h); err != nil {
		return v, err
	}
	if v[types.Cluster], err = newTypeSet(r.Clusters, h); err != nil {
		return v, err
	}
	if v[types.Endpoint], err = newTypeSet(r.Endpoints, h); err != nil {
		return v, err
	}
	if v[types.Secret], err = newTypeSet(r.Secrets, h); err != nil {
		return v, err
	}
	return v, nil
}

// snapshot assembles a go-control-plane snapshot with per-type versions. Its version map is
// filled here from the content hashes, so the cache never marshals the resources again for
// delta clients, and the endpoint fast path reuses the other types' maps as they are.
func (v *variant) snapshot() *cache.Snapshot {
	s := &cache.Snapshot{VersionMap: make(map[string]map[string]string, len(servedTypes))}
	for _, t := range servedTypes {
		ts := v[t.typ]
		s.Resources[t.typ] = cache.NewResources(ts.version, ts.items)
		s.VersionMap[t.url] = ts.versions
	}
	return s
}

// consistentProxyless is Snapshot.Consistent for a proxyless variant. go-control-plane finds
// route references in filter chains only, not in API listeners, so those are checked here,
// and the rest (clusters and their endpoints) by Consistent on the variant without listeners
// and routes.
func (v *variant) consistentProxyless() error {
	referenced := make(map[string]bool)
	for _, r := range v[types.Listener].items {
		var hcm hcmv3.HttpConnectionManager
		if err := r.(*listenerv3.Listener).GetApiListener().GetApiListener().UnmarshalTo(&hcm); err != nil {
			return fmt.Errorf("listener %q: %w", cache.GetResourceName(r), err)
		}
		referenced[hcm.GetRds().GetRouteConfigName()] = true
	}
	routes := v[types.Route].versions
	for name := range routes {
		if !referenced[name] {
			return fmt.Errorf("route configuration %q: no listener references it", name)
		}
	}
	for name := range referenced {
		if _, ok := routes[name]; !ok {
			return fmt.Errorf("route configuration %q: referenced but missing", name)
		}
	}
	rest := *v
	rest[types.Listener], rest[types.Route] = typeSet{}, typeSet{}
	return rest.snapshot().Consistent()
}
