package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StraitConfigKind is the kind of the configuration file.
const StraitConfigKind = "StraitConfig"

// Defaults applied by StraitConfig.Default to fields left empty.
const (
	// DefaultBindAddress keeps Gateway listeners on loopback unless asked otherwise, so that a
	// first `strait run` exposes nothing to the network.
	DefaultBindAddress = "127.0.0.1"
	// DefaultXDSAddress is Envoy's conventional xDS port, on loopback.
	DefaultXDSAddress = "127.0.0.1:18000"
	// DefaultAdminAddress is Envoy's conventional admin port, on loopback.
	DefaultAdminAddress = "127.0.0.1:9901"
)

// StraitConfig is the configuration file of `strait run` and `strait translate`: the member
// clusters, each with a directory of manifests, and the addresses the all-in-one process
// listens on. It is a file format, not a CRD, and is decoded strictly (unknown fields are
// errors).
//
//	apiVersion: strait.dev/v1alpha1
//	kind: StraitConfig
//	clusters:
//	- name: us
//	  region: us-east
//	  zone: us-east-1a
//	  network: net-a
//	  labels: {residency: us}
//	  manifests: clusters/us
//	proxy:
//	  bindAddress: 127.0.0.1
//	xds: 127.0.0.1:18000
//	admin: 127.0.0.1:9901
//
// +kubebuilder:object:root=true
type StraitConfig struct {
	metav1.TypeMeta `json:",inline"`

	// Clusters are the member clusters. At least one is required; names are unique.
	Clusters []ClusterConfig `json:"clusters"`

	// Proxy configures the edge proxy of the all-in-one process.
	// +optional
	Proxy ProxyConfig `json:"proxy,omitempty"`

	// XDS is the host:port the xDS server listens on. Default: 127.0.0.1:18000.
	// +optional
	XDS string `json:"xds,omitempty"`

	// Admin is the host:port of the admin server (/healthz, /readyz, /metrics, /debug/...).
	// Default: 127.0.0.1:9901.
	// +optional
	Admin string `json:"admin,omitempty"`
}

// ClusterConfig describes one member cluster, whose resources are read either from a directory
// of manifests (the file provider) or from its API server through a kubeconfig (the Kubernetes
// provider of `strait controller`). Exactly one of Manifests and Kubeconfig is set.
type ClusterConfig struct {
	// Name identifies the cluster: a DNS label (RFC 1123), unique among the clusters.
	Name string `json:"name"`

	// Region is the cluster's region, used for locality-aware load balancing and failover.
	// +optional
	Region string `json:"region,omitempty"`

	// Zone is the cluster's zone within its region.
	// +optional
	Zone string `json:"zone,omitempty"`

	// Network names the network the cluster's endpoints are on. Clusters on the same network
	// reach each other's endpoints directly; others go through an east-west tunnel. Clusters
	// that leave it empty are all on the same, unnamed network.
	// +optional
	Network string `json:"network,omitempty"`

	// Labels describe the cluster for policies that select clusters (residency, for example).
	// Keys and values follow Kubernetes label syntax.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Manifests is the directory holding the cluster's YAML manifests, read recursively.
	// A relative path is relative to the directory of the configuration file.
	// +optional
	Manifests string `json:"manifests,omitempty"`

	// Kubeconfig is the path of a kubeconfig file for the cluster's API server; its current
	// context is used. A relative path is relative to the directory of the configuration file.
	// Only `strait controller` reads such clusters.
	// +optional
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// ProxyConfig configures the edge proxy of the all-in-one process.
type ProxyConfig struct {
	// BindAddress is the IP address Gateway listeners bind to unless the Gateway names an IP
	// address in spec.addresses. Default: 127.0.0.1 (loopback only); use 0.0.0.0 or :: to
	// listen on every interface.
	// +optional
	BindAddress string `json:"bindAddress,omitempty"`
}

// Default fills every empty field that has a default (see the Default* constants) and the
// type metadata.
func (c *StraitConfig) Default() {
	if c.APIVersion == "" {
		c.APIVersion = SchemeGroupVersion.String()
	}
	if c.Kind == "" {
		c.Kind = StraitConfigKind
	}
	if c.Proxy.BindAddress == "" {
		c.Proxy.BindAddress = DefaultBindAddress
	}
	if c.XDS == "" {
		c.XDS = DefaultXDSAddress
	}
	if c.Admin == "" {
		c.Admin = DefaultAdminAddress
	}
}
