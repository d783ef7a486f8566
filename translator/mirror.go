package translator

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// Labels and annotations on the objects Strait keeps in member clusters for exported Services.
const (
	// ManagedByLabel marks every object the mirror writer owns; it never touches an object
	// without it.
	ManagedByLabel = "strait.dev/managed-by"
	// ManagedByValue is ManagedByLabel's value.
	ManagedByValue = "strait"
	// MirrorOfServiceAnnotation on a mirror Service names the exported Service it stands for
	// (in the same namespace of the cluster MirrorOfClusterLabel names). The mirror's name
	// says it too, unless it had to be shortened (see MirrorName).
	MirrorOfServiceAnnotation = "strait.dev/mirror-of-service"
	// UnreachableAnnotation on a mirror Service says why it has no endpoints: the exporting
	// cluster is on another network.
	UnreachableAnnotation = "strait.dev/unreachable"
	// EndpointSliceManager is the endpointslice.kubernetes.io/managed-by value of mirror
	// EndpointSlices, so that Kubernetes' EndpointSlice controller leaves them alone.
	EndpointSliceManager = "mirror-controller.strait.dev"
	// ConditionReachable is the ServiceImport condition that says whether every exporting
	// cluster's endpoints are reachable from the ServiceImport's cluster.
	ConditionReachable = "Reachable"
)

// Reasons of a ServiceImport's Reachable condition and of MirrorNotes.
const (
	ReasonReachable          = "Reachable"
	ReasonNetworkUnreachable = "NetworkUnreachable"
	// ReasonNameTaken: an object Strait did not make already has the mirror's or the
	// ServiceImport's name; Strait leaves it alone and makes nothing in its place.
	ReasonNameTaken = "NameTaken"
	// ReasonNotMirrorable: an ExternalName Service has no endpoints to mirror.
	ReasonNotMirrorable = "NotMirrorable"
)

// maxNameLength is the longest Service name: Service names are DNS-1035 labels.
const maxNameLength = 63

// Mirrors is what the mirror writer keeps in the member clusters for the exported Services.
type Mirrors struct {
	// Clusters holds the objects wanted in each member cluster, sorted by cluster name.
	// Every member cluster has an entry, also one that wants nothing: the writer deletes the
	// objects of Strait's that a cluster no longer wants.
	Clusters []*ClusterMirrors `json:"clusters"`
	// Notes say where an export could not be mirrored as asked, sorted by cluster, namespace,
	// name and reason. They are never silent: the writer logs them.
	Notes []MirrorNote `json:"notes,omitempty"`
}

// ClusterMirrors are the objects wanted in one member cluster, each sorted by namespace and
// name, all labeled ManagedByLabel.
type ClusterMirrors struct {
	Cluster string `json:"cluster"`
	// Services are the mirrors of other clusters' exported Services.
	Services []*corev1.Service `json:"services,omitempty"`
	// EndpointSlices hold the ready endpoints of the mirrored Services, for mirrors of
	// clusters on the same network.
	EndpointSlices []*discoveryv1.EndpointSlice `json:"endpointSlices,omitempty"`
	// ServiceImports stand for every exported namespace/name, status included.
	ServiceImports []*mcsv1alpha1.ServiceImport `json:"serviceImports,omitempty"`
}

// MirrorNote says why an object for an exported Service is missing or incomplete in a cluster.
type MirrorNote struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	// Name is the object's (the mirror's or the ServiceImport's).
	Name    string `json:"name"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// MirrorName returns the name of the mirror of Service service of cluster cluster:
// "<service>-<cluster>", or, when that is longer than the 63 characters a Service name may
// have, its first 54 characters (without a trailing "-") followed by "-" and 8 hexadecimal
// digits of the SHA-256 of "<service>-<cluster>". A shortened name cannot be read back into
// service and cluster; the mirror's label and annotation name them.
func MirrorName(service, cluster string) string {
	name := service + "-" + cluster
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	const hashLen = 8
	prefix := strings.TrimRight(name[:maxNameLength-hashLen-1], "-")
	return prefix + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

// shortenedMirrorSource resolves a mirror Service of cluster ci whose name MirrorName had to
// shorten, which mirrorSource cannot split into service and cluster: the mirror writer's own
// mirror (ManagedByLabel) names them in its label and annotation, and its name must be the one
// MirrorName gives them, so that no other Service can claim to be a mirror this way.
func (idx *index) shortenedMirrorSource(ci *clusterIndex, svc *corev1.Service) (cluster, service string, ok bool) {
	cluster, service = svc.Labels[MirrorOfClusterLabel], svc.Annotations[MirrorOfServiceAnnotation]
	if !isStraitManaged(&svc.ObjectMeta) || cluster == "" || service == "" || cluster == ci.info.Name ||
		MirrorName(service, cluster) != svc.Name || len(service)+1+len(cluster) <= maxNameLength {
		return "", "", false
	}
	key := nsName(svc.Namespace, service)
	if src := idx.clusters[cluster]; src != nil && src.exported[key] && src.services[key] != nil {
		return cluster, service, true
	}
	return "", "", false
}

// ComputeMirrors returns the objects that stand for the exported Services of every cluster in
// the others. A Service is exported by a ServiceExport of its namespace and name or by the
// ExportLabel; Strait's own mirrors are never exported. For a Service S of namespace N
// exported by cluster C:
//
//   - in every other cluster D that has namespace N (a Namespace object in D's input), a
//     mirror Service MirrorName(S, C) with S's ports and no selector, and, when C and D are on
//     the same network, one EndpointSlice per EndpointSlice of S with its ready endpoints. When
//     they are not, the mirror has no endpoints, carries UnreachableAnnotation, and a note
//     says so: reaching C needs the east-west tunnel.
//   - in every cluster that has namespace N (the exporters included), a ServiceImport S whose
//     ports are the union of the exporters' ports, whose type is Headless when the Service
//     of the oldest export (see oldestExport) is headless and ClusterSetIP otherwise, and
//     whose status lists the exporting clusters and whether they are all reachable.
//
// An object of that name that Strait did not make (no ManagedByLabel) is left alone: nothing
// is made in its place, and a note says so. Like Translate, ComputeMirrors mutates nothing.
func ComputeMirrors(in *Input) *Mirrors {
	idx := newIndex(in)
	m := &mirrorComputation{idx: idx, wanted: map[string]*ClusterMirrors{}}
	out := &Mirrors{}
	for _, name := range idx.order {
		cm := &ClusterMirrors{Cluster: name}
		m.wanted[name] = cm
		out.Clusters = append(out.Clusters, cm)
	}
	for _, key := range m.exportedNames() {
		sources := m.sources(key)
		if len(sources) == 0 {
			continue
		}
		for _, src := range sources {
			for _, name := range idx.order {
				if name != src.cluster.info.Name {
					m.mirror(idx.clusters[name], src)
				}
			}
		}
		for _, name := range idx.order {
			m.serviceImport(idx.clusters[name], key, sources)
		}
	}
	for _, cm := range out.Clusters {
		sortByName(cm.Services)
		sortByName(cm.EndpointSlices)
		sortByName(cm.ServiceImports)
	}
	slices.SortFunc(m.notes, func(a, b MirrorNote) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Reason, b.Reason))
	})
	out.Notes = m.notes
	return out
}

// mirrorComputation is the state of one ComputeMirrors call.
type mirrorComputation struct {
	idx    *index
	wanted map[string]*ClusterMirrors
	notes  []MirrorNote
}

// exportSource is one cluster's exported Service.
type exportSource struct {
	cluster *clusterIndex
	svc     *corev1.Service
	// since is when the export began: its ServiceExport's creation or, for a Service exported
	// by the ExportLabel, the Service's. The oldest export wins conflicts.
	since metav1.Time
}

// exportedNames returns every exported namespace/name, sorted.
func (m *mirrorComputation) exportedNames() []types.NamespacedName {
	keys := make([]types.NamespacedName, 0, len(m.idx.exporters))
	for key := range m.idx.exporters {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b types.NamespacedName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return keys
}

// sources returns exportSources(key), with a note for each ExternalName Service left out.
func (m *mirrorComputation) sources(key types.NamespacedName) []exportSource {
	sources, externalName := m.idx.exportSources(key)
	for _, name := range externalName {
		m.note(name, key.Namespace, key.Name, ReasonNotMirrorable, "an ExternalName Service has no endpoints to mirror or import")
	}
	return sources
}

// exportSources returns the clusters' exported Services of key, in cluster name order,
// leaving out Strait's own mirrors and ExternalName Services, and the clusters whose
// exported Service is an ExternalName one (it has no endpoints).
func (idx *index) exportSources(key types.NamespacedName) (sources []exportSource, externalName []string) {
	for _, name := range idx.exporters[key] {
		ci := idx.clusters[name]
		svc := ci.services[key]
		switch {
		case isStraitManaged(&svc.ObjectMeta):
			continue
		case svc.Spec.Type == corev1.ServiceTypeExternalName:
			externalName = append(externalName, name)
			continue
		}
		since := svc.CreationTimestamp
		if se := ci.serviceExports[key]; se != nil {
			since = se.CreationTimestamp
		}
		sources = append(sources, exportSource{cluster: ci, svc: svc, since: since})
	}
	return sources, externalName
}

// oldestExport returns the source whose export is the oldest, the cluster name breaking
// ties: the multi-cluster services API resolves conflicts between exporters in its favor.
func oldestExport(sources []exportSource) exportSource {
	return slices.MinFunc(sources, func(a, b exportSource) int {
		return cmp.Or(a.since.Compare(b.since.Time), cmp.Compare(a.cluster.info.Name, b.cluster.info.Name))
	})
}

func (m *mirrorComputation) note(cluster, namespace, name, reason, msg string) {
	m.notes = append(m.notes, MirrorNote{Cluster: cluster, Namespace: namespace, Name: name, Reason: reason, Message: msg})
}

// hasNamespace reports whether objects of namespace ns can be made in cluster ci.
func hasNamespace(ci *clusterIndex, ns string) bool {
	return ci.namespaces[ns] != nil
}

// isStraitManaged reports whether an object was made by Strait's mirror writer.
func isStraitManaged(meta *metav1.ObjectMeta) bool {
	return meta.Labels[ManagedByLabel] == ManagedByValue
}

// mirror adds the mirror of src to cluster dst.
func (m *mirrorComputation) mirror(dst *clusterIndex, src exportSource) {
	ns, srcCluster := src.svc.Namespace, src.cluster.info.Name
	if !hasNamespace(dst, ns) {
		return
	}
	name := MirrorName(src.svc.Name, srcCluster)
	if existing := dst.services[nsName(ns, name)]; existing != nil && !isStraitManaged(&existing.ObjectMeta) {
		m.note(dst.info.Name, ns, name, ReasonNameTaken,
			fmt.Sprintf("a Service not made by Strait has the name of the mirror of Service %s of cluster %s; no mirror is made", src.svc.Name, srcCluster))
		return
	}
	labels := map[string]string{ManagedByLabel: ManagedByValue, MirrorOfClusterLabel: srcCluster}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   ns,
			Labels:      labels,
			Annotations: map[string]string{MirrorOfServiceAnnotation: src.svc.Name},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: mirrorPorts(src.svc.Spec.Ports)},
	}
	if src.svc.Spec.ClusterIP == corev1.ClusterIPNone {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	cm := m.wanted[dst.info.Name]
	cm.Services = append(cm.Services, svc)
	if !reachable(dst, src.cluster) {
		msg := fmt.Sprintf("cluster %s is %s, not reachable from cluster %s until the east-west tunnel exists; the mirror has no endpoints",
			srcCluster, onNetwork(src.cluster), dst.info.Name)
		svc.Annotations[UnreachableAnnotation] = msg
		m.note(dst.info.Name, ns, name, ReasonNetworkUnreachable, msg)
		return
	}
	for _, es := range src.cluster.slices[nsName(ns, src.svc.Name)] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN endpoints name hosts only the source cluster can resolve.
		}
		cm.EndpointSlices = append(cm.EndpointSlices, mirrorSlice(es, name, labels))
	}
}

// mirrorPorts copies a Service's ports for a mirror: protocol and targetPort are spelled out
// (targetPort means nothing without a selector) so that the API server's defaults do not make
// the mirror look changed; node ports are not copied.
func mirrorPorts(ports []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, 0, len(ports))
	for _, p := range ports {
		out = append(out, corev1.ServicePort{
			Name:        p.Name,
			Protocol:    cmp.Or(p.Protocol, corev1.ProtocolTCP),
			AppProtocol: p.AppProtocol,
			Port:        p.Port,
			TargetPort:  intstr.FromInt32(p.Port),
		})
	}
	return out
}

// mirrorSlice returns the mirror of EndpointSlice es for the mirror Service named mirror: its
// ports (protocol spelled out) and the addresses of its ready endpoints, and of those
// terminating but still serving with their conditions, without the node, zone and pod they
// name in the source cluster. It is named "<mirror>-<8 hex digits of the SHA-256 of es's name>".
func mirrorSlice(es *discoveryv1.EndpointSlice, mirror string, mirrorLabels map[string]string) *discoveryv1.EndpointSlice {
	labels := map[string]string{
		discoveryv1.LabelServiceName: mirror,
		discoveryv1.LabelManagedBy:   EndpointSliceManager,
	}
	for k, v := range mirrorLabels {
		labels[k] = v
	}
	sum := sha256.Sum256([]byte(es.Name))
	out := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      mirror + "-" + hex.EncodeToString(sum[:4]),
			Namespace: es.Namespace,
			Labels:    labels,
		},
		AddressType: es.AddressType,
		Ports:       make([]discoveryv1.EndpointPort, 0, len(es.Ports)),
		// The field is required; an empty list says there are no ready endpoints.
		Endpoints: []discoveryv1.Endpoint{},
	}
	for _, p := range es.Ports {
		p.Protocol = ptr.To(cmp.Or(ptr.Deref(p.Protocol, ""), corev1.ProtocolTCP))
		out.Ports = append(out.Ports, p)
	}
	for _, ep := range es.Endpoints {
		if len(ep.Addresses) == 0 {
			continue
		}
		var conditions discoveryv1.EndpointConditions
		switch conditionsState(ep.Conditions) {
		case endpointReady:
			conditions.Ready = ptr.To(true)
		case endpointTerminating:
			// Mirrored as it is, so that the cluster's own proxies use it only as they
			// would the source cluster's: when no endpoint is ready.
			conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
		default:
			continue
		}
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{Addresses: slices.Clone(ep.Addresses), Conditions: conditions})
	}
	slices.SortFunc(out.Endpoints, func(a, b discoveryv1.Endpoint) int { return cmp.Compare(a.Addresses[0], b.Addresses[0]) })
	return out
}

// serviceImport adds the ServiceImport of key, exported by sources, to cluster dst.
func (m *mirrorComputation) serviceImport(dst *clusterIndex, key types.NamespacedName, sources []exportSource) {
	exporting := dst.services[key] != nil && slices.ContainsFunc(sources, func(s exportSource) bool { return s.cluster == dst })
	if !exporting && !hasNamespace(dst, key.Namespace) {
		return
	}
	if existing := dst.serviceImports[key]; existing != nil && !isStraitManaged(&existing.ObjectMeta) {
		m.note(dst.info.Name, key.Namespace, key.Name, ReasonNameTaken,
			"a ServiceImport not made by Strait exists (another multi-cluster services controller's?); Strait leaves it alone")
		return
	}
	oldest := oldestExport(sources)
	si := &mcsv1alpha1.ServiceImport{
		TypeMeta: metav1.TypeMeta{APIVersion: mcsv1alpha1.GroupVersion.String(), Kind: "ServiceImport"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      key.Name,
			Namespace: key.Namespace,
			Labels:    map[string]string{ManagedByLabel: ManagedByValue},
		},
		Spec: mcsv1alpha1.ServiceImportSpec{Type: importType(oldest.svc), Ports: importPorts(oldest, sources)},
	}
	var unreachable []string
	for _, s := range sources {
		si.Status.Clusters = append(si.Status.Clusters, mcsv1alpha1.ClusterStatus{Cluster: s.cluster.info.Name})
		if !reachable(dst, s.cluster) {
			unreachable = append(unreachable, s.cluster.info.Name+" "+onNetwork(s.cluster))
		}
	}
	cond := metav1.Condition{Type: ConditionReachable, Status: metav1.ConditionTrue, Reason: ReasonReachable,
		Message: "every exporting cluster is on the network of cluster " + dst.info.Name}
	if len(unreachable) > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonNetworkUnreachable
		cond.Message = fmt.Sprintf("exporting clusters not reachable from cluster %s (%s) until the east-west tunnel exists: %s",
			dst.info.Name, onNetwork(dst), strings.Join(unreachable, ", "))
		m.note(dst.info.Name, key.Namespace, key.Name, ReasonNetworkUnreachable, cond.Message)
	}
	si.Status.Conditions = []metav1.Condition{cond}
	cm := m.wanted[dst.info.Name]
	cm.ServiceImports = append(cm.ServiceImports, si)
}

// importPorts returns the union of the sources' Service ports, by number and protocol, sorted.
// Where exporters describe one port differently, or give one name to different ports, the
// oldest export's port wins, as the multi-cluster services API resolves conflicts: port names
// stay unique, as in a Service.
func importPorts(oldest exportSource, sources []exportSource) []mcsv1alpha1.ServicePort {
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	seen := map[portKey]bool{}
	names := map[string]bool{}
	var out []mcsv1alpha1.ServicePort
	add := func(svc *corev1.Service) {
		for _, p := range svc.Spec.Ports {
			k := portKey{p.Port, cmp.Or(p.Protocol, corev1.ProtocolTCP)}
			if seen[k] || names[p.Name] {
				continue
			}
			seen[k], names[p.Name] = true, true
			out = append(out, mcsv1alpha1.ServicePort{Name: p.Name, Protocol: k.protocol, AppProtocol: p.AppProtocol, Port: p.Port})
		}
	}
	add(oldest.svc)
	for _, s := range sources {
		add(s.svc)
	}
	slices.SortFunc(out, func(a, b mcsv1alpha1.ServicePort) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out
}

// sortByName sorts objects by namespace and name.
func sortByName[T metav1.Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}
