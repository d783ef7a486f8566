package file

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// object is what every API type read from manifests is.
type object interface {
	metav1.Object
	runtime.Object
}

// kind is one resource kind the file provider reads.
type kind struct {
	// gvk is the group, version and kind of the Go type the kind is decoded into; decoded
	// objects carry it in their TypeMeta, whatever apiVersion the file used.
	gvk schema.GroupVersionKind
	// versions are the versions accepted in apiVersion.
	versions []string
	// clusterScoped kinds have no namespace.
	clusterScoped bool
	// newObject returns an empty object of the kind.
	newObject func() object
	// add appends an object of the kind to its slice of a cluster's resources; nil when
	// translator.ClusterResources has no place for the kind.
	add func(*translator.ClusterResources, object)
	// sort sorts the kind's slice by namespace and name; nil when add is.
	sort func(*translator.ClusterResources)
}

// Gateway API versions accepted besides v1: those for which gateway-api v1.6.3 still has Go
// types, all wire-compatible with v1 (see the package documentation).
var (
	gatewayVersions        = []string{"v1", "v1beta1"}
	referenceGrantVersions = []string{"v1", "v1beta1", "v1alpha2"}
	alpha2RouteVersions    = []string{"v1", "v1alpha2"}
	tlsRouteVersions       = []string{"v1", "v1alpha3", "v1alpha2"}
	backendTLSVersions     = []string{"v1", "v1alpha3"}
)

// gatewayV1 is the version of the gateway-api types every Gateway API kind is decoded into.
var gatewayV1 = schema.GroupVersion(gwapiv1.GroupVersion)

// kinds are the kinds the file provider reads, by group and kind. Documents of other kinds
// are skipped with a warning.
var kinds = indexKinds(
	newKind(gatewayV1.WithKind("GatewayClass"), gatewayVersions, true,
		func(cr *translator.ClusterResources) *[]*gwapiv1.GatewayClass { return &cr.GatewayClasses }),
	newKind(gatewayV1.WithKind("Gateway"), gatewayVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.Gateway { return &cr.Gateways }),
	newKind(gatewayV1.WithKind("HTTPRoute"), gatewayVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.HTTPRoute { return &cr.HTTPRoutes }),
	newKind(gatewayV1.WithKind("GRPCRoute"), alpha2RouteVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.GRPCRoute { return &cr.GRPCRoutes }),
	newKind(gatewayV1.WithKind("TLSRoute"), tlsRouteVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.TLSRoute { return &cr.TLSRoutes }),
	newKind(gatewayV1.WithKind("TCPRoute"), alpha2RouteVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.TCPRoute { return &cr.TCPRoutes }),
	newKind(gatewayV1.WithKind("ReferenceGrant"), referenceGrantVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.ReferenceGrant { return &cr.ReferenceGrants }),
	newKind(gatewayV1.WithKind("BackendTLSPolicy"), backendTLSVersions, false,
		func(cr *translator.ClusterResources) *[]*gwapiv1.BackendTLSPolicy { return &cr.BackendTLSPolicies }),
	newKind(corev1.SchemeGroupVersion.WithKind("Namespace"), []string{"v1"}, true,
		func(cr *translator.ClusterResources) *[]*corev1.Namespace { return &cr.Namespaces }),
	newKind(corev1.SchemeGroupVersion.WithKind("Service"), []string{"v1"}, false,
		func(cr *translator.ClusterResources) *[]*corev1.Service { return &cr.Services }),
	newKind(corev1.SchemeGroupVersion.WithKind("Secret"), []string{"v1"}, false,
		func(cr *translator.ClusterResources) *[]*corev1.Secret { return &cr.Secrets }),
	newKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"), []string{"v1"}, false,
		func(cr *translator.ClusterResources) *[]*corev1.ConfigMap { return &cr.ConfigMaps }),
	newKind(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"), []string{"v1"}, false,
		func(cr *translator.ClusterResources) *[]*discoveryv1.EndpointSlice { return &cr.EndpointSlices }),
	newKind(mcsv1alpha1.SchemeGroupVersion.WithKind("ServiceExport"), []string{"v1alpha1"}, false,
		func(cr *translator.ClusterResources) *[]*mcsv1alpha1.ServiceExport { return &cr.ServiceExports }),
	newKind(mcsv1alpha1.SchemeGroupVersion.WithKind("ServiceImport"), []string{"v1alpha1"}, false,
		func(cr *translator.ClusterResources) *[]*mcsv1alpha1.ServiceImport { return &cr.ServiceImports }),
	newKind(straitv1alpha1.SchemeGroupVersion.WithKind(straitv1alpha1.BackendTrafficPolicyKind), []string{"v1alpha1"}, false,
		func(cr *translator.ClusterResources) *[]*straitv1alpha1.BackendTrafficPolicy {
			return &cr.BackendTrafficPolicies
		}),
	// ClusterLinks are validated, but the file provider takes its clusters from the config
	// file and translator.Input has no place for them: they are skipped with a warning.
	newKind[straitv1alpha1.ClusterLink](straitv1alpha1.SchemeGroupVersion.WithKind(straitv1alpha1.ClusterLinkKind), []string{"v1alpha1"}, false, nil),
)

// newKind describes the kind whose Go type is T. slice returns the kind's slice in a
// cluster's resources, or is nil when there is none.
func newKind[T any, P interface {
	*T
	object
}](gvk schema.GroupVersionKind, versions []string, clusterScoped bool, slice func(*translator.ClusterResources) *[]P) kind {
	k := kind{
		gvk:           gvk,
		versions:      versions,
		clusterScoped: clusterScoped,
		newObject:     func() object { return P(new(T)) },
	}
	if slice != nil {
		k.add = func(cr *translator.ClusterResources, obj object) {
			s := slice(cr)
			*s = append(*s, obj.(P))
		}
		k.sort = func(cr *translator.ClusterResources) {
			slices.SortFunc(*slice(cr), func(a, b P) int {
				return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
			})
		}
	}
	return k
}

func indexKinds(ks ...kind) map[schema.GroupKind]kind {
	m := make(map[schema.GroupKind]kind, len(ks))
	for _, k := range ks {
		m[k.gvk.GroupKind()] = k
	}
	return m
}
