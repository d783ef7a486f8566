package translator

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// ExportLabel on a Service exports it to the other clusters, like a ServiceExport does.
const ExportLabel = "strait.dev/export"

// index answers the translator's lookups in constant time. It is built once per translation
// and only reads the Input.
type index struct {
	clusters map[string]*clusterIndex
	// order is the cluster names, sorted.
	order []string
	// exporters maps an exported namespace/name to the clusters that export it, sorted.
	exporters map[types.NamespacedName][]string
}

// clusterIndex holds one cluster's objects by namespace/name.
type clusterIndex struct {
	info           Cluster
	res            *ClusterResources
	namespaces     map[string]*corev1.Namespace
	services       map[types.NamespacedName]*corev1.Service
	secrets        map[types.NamespacedName]*corev1.Secret
	configMaps     map[types.NamespacedName]*corev1.ConfigMap
	serviceImports map[types.NamespacedName]*mcsv1alpha1.ServiceImport
	serviceExports map[types.NamespacedName]*mcsv1alpha1.ServiceExport
	// slices maps a Service to its EndpointSlices (label kubernetes.io/service-name).
	slices map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// exported holds the Services exported by a ServiceExport or the export label.
	exported map[types.NamespacedName]bool
	// grants maps a namespace to the ReferenceGrants in it.
	grants map[string][]*gwapiv1.ReferenceGrant
}

func newIndex(in *Input) *index {
	idx := &index{
		clusters:  make(map[string]*clusterIndex, len(in.Clusters)),
		exporters: map[types.NamespacedName][]string{},
	}
	for _, res := range in.Clusters {
		ci := &clusterIndex{
			info:           res.Cluster,
			res:            res,
			namespaces:     make(map[string]*corev1.Namespace, len(res.Namespaces)),
			services:       make(map[types.NamespacedName]*corev1.Service, len(res.Services)),
			secrets:        make(map[types.NamespacedName]*corev1.Secret, len(res.Secrets)),
			configMaps:     make(map[types.NamespacedName]*corev1.ConfigMap, len(res.ConfigMaps)),
			serviceImports: make(map[types.NamespacedName]*mcsv1alpha1.ServiceImport, len(res.ServiceImports)),
			serviceExports: make(map[types.NamespacedName]*mcsv1alpha1.ServiceExport, len(res.ServiceExports)),
			slices:         make(map[types.NamespacedName][]*discoveryv1.EndpointSlice),
			exported:       map[types.NamespacedName]bool{},
			grants:         map[string][]*gwapiv1.ReferenceGrant{},
		}
		for _, ns := range res.Namespaces {
			ci.namespaces[ns.Name] = ns
		}
		for _, s := range res.Services {
			key := nsName(s.Namespace, s.Name)
			ci.services[key] = s
			if s.Labels[ExportLabel] == "true" {
				ci.exported[key] = true
			}
		}
		for _, s := range res.Secrets {
			ci.secrets[nsName(s.Namespace, s.Name)] = s
		}
		for _, c := range res.ConfigMaps {
			ci.configMaps[nsName(c.Namespace, c.Name)] = c
		}
		for _, si := range res.ServiceImports {
			ci.serviceImports[nsName(si.Namespace, si.Name)] = si
		}
		for _, es := range res.EndpointSlices {
			svc := es.Labels[discoveryv1.LabelServiceName]
			if svc == "" {
				continue
			}
			key := nsName(es.Namespace, svc)
			ci.slices[key] = append(ci.slices[key], es)
		}
		for _, se := range res.ServiceExports {
			key := nsName(se.Namespace, se.Name)
			ci.serviceExports[key] = se
			ci.exported[key] = true
		}
		for _, g := range res.ReferenceGrants {
			ci.grants[g.Namespace] = append(ci.grants[g.Namespace], g)
		}
		idx.clusters[res.Cluster.Name] = ci
		idx.order = append(idx.order, res.Cluster.Name)
	}
	// Input.Clusters is sorted, so every exporters list is too.
	for _, name := range idx.order {
		ci := idx.clusters[name]
		for key := range ci.exported {
			// An export of a Service that does not exist exports nothing.
			if ci.services[key] != nil {
				idx.exporters[key] = append(idx.exporters[key], name)
			}
		}
	}
	return idx
}

// namespaceLabels returns the labels of a namespace, with the kubernetes.io/metadata.name label
// the API server adds, also for namespaces that are not declared (as in a directory of files).
func (ci *clusterIndex) namespaceLabels(name string) map[string]string {
	labels := map[string]string{corev1.LabelMetadataName: name}
	if ns := ci.namespaces[name]; ns != nil {
		for k, v := range ns.Labels {
			labels[k] = v
		}
	}
	return labels
}

// referenceAllowed reports whether a ReferenceGrant in the target namespace lets an object of
// fromGroup/fromKind in fromNamespace refer to toGroup/toKind named toName.
func (ci *clusterIndex) referenceAllowed(fromGroup, fromKind, fromNamespace, toGroup, toKind, toNamespace, toName string) bool {
	if fromNamespace == toNamespace {
		return true
	}
	for _, g := range ci.grants[toNamespace] {
		from := false
		for _, f := range g.Spec.From {
			if string(f.Group) == fromGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNamespace {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, t := range g.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || *t.Name == "" || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}

func nsName(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}
