package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterLinkKind is the kind of ClusterLink.
const ClusterLinkKind = "ClusterLink"

// DefaultKubeconfigKey is the Secret key that holds the kubeconfig when
// SecretKeyReference.Key is empty.
const DefaultKubeconfigKey = "kubeconfig"

// The Ready condition of a ClusterLink and its reasons.
const (
	// ClusterLinkConditionReady is True when the control plane has connected to the member
	// cluster and synced its resources.
	ClusterLinkConditionReady = "Ready"
	// ClusterLinkReasonSynced: connected and synced (Ready True).
	ClusterLinkReasonSynced = "Synced"
	// ClusterLinkReasonSyncing: connected, the first sync is not complete yet (Ready False).
	ClusterLinkReasonSyncing = "Syncing"
	// ClusterLinkReasonUnreachable: the API server stopped answering; the control plane keeps
	// serving the cluster's last known resources (Ready False).
	ClusterLinkReasonUnreachable = "Unreachable"
	// ClusterLinkReasonInvalidKubeconfig: the kubeconfig Secret is missing, lacks the key or
	// holds no usable kubeconfig (Ready False).
	ClusterLinkReasonInvalidKubeconfig = "InvalidKubeconfig"
	// ClusterLinkReasonNameInUse: a cluster given to the control plane up front (a flag or
	// its config file) already has this name (Ready False).
	ClusterLinkReasonNameInUse = "NameInUse"
)

// ClusterLink declares a member cluster to a control plane running in Kubernetes. It lives in
// the control plane's home cluster; its name is the member cluster's name and must be a DNS
// label. The control plane reaches the member cluster with the kubeconfig stored in a Secret
// in the ClusterLink's namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strait,shortName=cl
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.spec.zone`
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.network`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="metadata.name must be a DNS label: it is the member cluster's name"
type ClusterLink struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec describes the member cluster and how to reach it.
	Spec ClusterLinkSpec `json:"spec"`

	// Status is written by the control plane.
	// +optional
	Status ClusterLinkStatus `json:"status,omitempty"`
}

// ClusterLinkSpec describes a member cluster and how to reach it.
type ClusterLinkSpec struct {
	// Region is the cluster's region, used for locality-aware load balancing and failover.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Region string `json:"region,omitempty"`

	// Zone is the cluster's zone within its region.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Zone string `json:"zone,omitempty"`

	// Network names the network the cluster's endpoints are on. Clusters on the same network
	// reach each other's endpoints directly; others go through an east-west tunnel. Clusters
	// that leave it empty are all on the same, unnamed network.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Network string `json:"network,omitempty"`

	// Labels describe the cluster for policies that select clusters (residency, for example).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// KubeconfigSecretRef names the Secret, in the ClusterLink's namespace, that holds a
	// kubeconfig for the member cluster.
	KubeconfigSecretRef SecretKeyReference `json:"kubeconfigSecretRef"`
}

// SecretKeyReference names one key of a Secret in the referring object's namespace.
type SecretKeyReference struct {
	// Name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key is the key within the Secret's data. Default: kubeconfig.
	// +optional
	// +kubebuilder:default=kubeconfig
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// ClusterLinkStatus is the observed state of a ClusterLink.
type ClusterLinkStatus struct {
	// Conditions describe the link. The Ready condition is True when the control plane has
	// connected to the member cluster and synced its resources.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ClusterLinkList is a list of ClusterLinks.
//
// +kubebuilder:object:root=true
type ClusterLinkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the ClusterLinks.
	Items []ClusterLink `json:"items"`
}
