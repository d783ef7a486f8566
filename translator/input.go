package translator

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

// Input is everything the translator reads: the resources of every member cluster.
// The translator never mutates it.
type Input struct {
	// Clusters are the member clusters, sorted by name.
	Clusters []*ClusterResources `json:"clusters"`
	// BindAddress is where Gateway listeners bind unless the Gateway names an IP in
	// spec.addresses.
	BindAddress string `json:"bindAddress"`
	// AddressPool, when valid, gives every Gateway IPs of its own instead of BindAddress:
	// a Gateway without spec.addresses gets a free IP of the pool, and spec.addresses must
	// be free IPs of the pool (see assignAddresses).
	AddressPool netip.Prefix `json:"addressPool,omitzero"`
	// SharedHost says every proxy runs on one host (strait run): listeners of different
	// Gateways on one address and port then conflict, and the later one is not programmed.
	SharedHost bool `json:"sharedHost,omitempty"`
}

// Cluster describes a member cluster.
type Cluster struct {
	// Name is a DNS label, unique among the member clusters.
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone,omitempty"`
	// Network: clusters on the same network reach each other's endpoints directly.
	Network string            `json:"network,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// ClusterResources are the resources read from one member cluster.
type ClusterResources struct {
	Cluster Cluster `json:"cluster"`

	Namespaces         []*corev1.Namespace          `json:"namespaces,omitempty"`
	GatewayClasses     []*gwapiv1.GatewayClass      `json:"gatewayClasses,omitempty"`
	Gateways           []*gwapiv1.Gateway           `json:"gateways,omitempty"`
	HTTPRoutes         []*gwapiv1.HTTPRoute         `json:"httpRoutes,omitempty"`
	GRPCRoutes         []*gwapiv1.GRPCRoute         `json:"grpcRoutes,omitempty"`
	TLSRoutes          []*gwapiv1.TLSRoute          `json:"tlsRoutes,omitempty"`
	TCPRoutes          []*gwapiv1.TCPRoute          `json:"tcpRoutes,omitempty"`
	ReferenceGrants    []*gwapiv1.ReferenceGrant    `json:"referenceGrants,omitempty"`
	BackendTLSPolicies []*gwapiv1.BackendTLSPolicy  `json:"backendTLSPolicies,omitempty"`
	Services           []*corev1.Service            `json:"services,omitempty"`
	EndpointSlices     []*discoveryv1.EndpointSlice `json:"endpointSlices,omitempty"`
	Secrets            []*corev1.Secret             `json:"secrets,omitempty"`
	ConfigMaps         []*corev1.ConfigMap          `json:"configMaps,omitempty"`
	ServiceExports     []*mcsv1alpha1.ServiceExport `json:"serviceExports,omitempty"`
	ServiceImports     []*mcsv1alpha1.ServiceImport `json:"serviceImports,omitempty"`

	BackendTrafficPolicies []*straitv1alpha1.BackendTrafficPolicy `json:"backendTrafficPolicies,omitempty"`
}
