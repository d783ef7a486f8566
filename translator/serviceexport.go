package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
)

// ServiceExportKind is the Kind of the statuses of ServiceExports (Status.Kind).
const ServiceExportKind = "ServiceExport"

// ReasonMirrorService is the reason of a ServiceExport's Valid condition when its Service is
// one of Strait's mirrors, which are never exported again.
const ReasonMirrorService = "MirrorService"

// processServiceExports sets the status of every ServiceExport of a cluster, with the
// conditions of the multi-cluster services API (mcs-api v0.5.2, KEP-1645): Valid (the
// Service exists and can be exported), Ready (Strait exports it) and, for valid exports,
// Conflict (the exporting clusters' Services disagree). A Service exported by the ExportLabel
// has no ServiceExport, hence no status, but takes part in its namespace/name's conflicts.
func (t *translation) processServiceExports(ci *clusterIndex) {
	for key, se := range ci.serviceExports {
		st := statusOf[mcsv1alpha1.ServiceExportStatus](t, ci.info.Name, ServiceExportKind, se)
		st.Conditions = t.idx.serviceExportConditions(ci, key, se.Generation)
	}
}

// serviceExportConditions returns the conditions of the ServiceExport key of cluster ci.
func (idx *index) serviceExportConditions(ci *clusterIndex, key types.NamespacedName, generation int64) []metav1.Condition {
	var conds []metav1.Condition
	set := func(typ mcsv1alpha1.ServiceExportConditionType, status bool, reason, msg string) {
		setCondition(&conds, generation, string(typ), status, reason, msg)
	}
	svc := ci.services[key]
	if reason, why := unexportable(ci, key, svc); reason != "" {
		set(mcsv1alpha1.ServiceExportConditionValid, false, reason, why)
		// A Service yet to be created is waited for; a Service of the wrong kind is not.
		ready := mcsv1alpha1.ServiceExportReasonFailed
		if svc == nil {
			ready = mcsv1alpha1.ServiceExportReasonPending
		}
		set(mcsv1alpha1.ServiceExportConditionReady, false, string(ready), "not exported: "+why)
		return conds
	}
	set(mcsv1alpha1.ServiceExportConditionValid, true, string(mcsv1alpha1.ServiceExportReasonValid),
		fmt.Sprintf("Service %s can be exported", key))
	set(mcsv1alpha1.ServiceExportConditionReady, true, string(mcsv1alpha1.ServiceExportReasonExported), idx.exportedTo(ci, key))
	sources, _ := idx.exportSources(key)
	if reasons, msg := exportConflicts(sources); len(reasons) > 0 {
		set(mcsv1alpha1.ServiceExportConditionConflict, true, strings.Join(reasons, ","), msg)
	} else {
		set(mcsv1alpha1.ServiceExportConditionConflict, false, string(mcsv1alpha1.ServiceExportReasonNoConflicts),
			"the exporting clusters' Services agree on ports and headlessness")
	}
	return conds
}

// unexportable returns the reason and message of a Valid condition that is False, or "" when
// Service svc (nil: missing) of namespace/name key in cluster ci can be exported.
func unexportable(ci *clusterIndex, key types.NamespacedName, svc *corev1.Service) (reason, msg string) {
	switch {
	case svc == nil:
		return string(mcsv1alpha1.ServiceExportReasonNoService), fmt.Sprintf("cluster %s has no Service %s", ci.info.Name, key)
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return string(mcsv1alpha1.ServiceExportReasonInvalidServiceType),
			fmt.Sprintf("Service %s is of type ExternalName: it has no endpoints to export", key)
	case isStraitManaged(&svc.ObjectMeta):
		return ReasonMirrorService, fmt.Sprintf("Service %s is Strait's mirror of cluster %s's Service; mirrors are not exported again",
			key, svc.Labels[MirrorOfClusterLabel])
	}
	return "", ""
}

// exportedTo returns the message of the Ready condition of cluster ci's export of key: the
// clusters that get its mirror.
func (idx *index) exportedTo(ci *clusterIndex, key types.NamespacedName) string {
	var to []string
	for _, name := range idx.order {
		if dst := idx.clusters[name]; dst != ci && hasNamespace(dst, key.Namespace) {
			to = append(to, name)
		}
	}
	if len(to) == 0 {
		return fmt.Sprintf("exported: a ServiceImport backend in cluster %s; no other cluster has namespace %s to mirror it in", ci.info.Name, key.Namespace)
	}
	return fmt.Sprintf("exported to clusters %s (mirror %s, ServiceImport %s)", strings.Join(to, ", "), MirrorName(key.Name, ci.info.Name), key.Name)
}

// exportConflicts returns the Conflict reasons and message of the exports of one
// namespace/name: where an exporting cluster's Service differs from the oldest export's in
// its ports or its headlessness. The oldest export wins (the multi-cluster services API's
// rule): the ServiceImport takes its type and, for a port the exporters describe differently,
// its description; the other ports join the union.
func exportConflicts(sources []exportSource) (reasons []string, msg string) {
	if len(sources) < 2 {
		return nil, ""
	}
	oldest := oldestExport(sources)
	winner := fmt.Sprintf("the oldest export (cluster %s) wins", oldest.cluster.info.Name)
	var ports, headless, notHeadless []string
	for _, s := range sources {
		if !slices.Equal(portSet(s.svc), portSet(oldest.svc)) {
			ports = append(ports, s.cluster.info.Name)
		}
		if isHeadless(s.svc) {
			headless = append(headless, s.cluster.info.Name)
		} else {
			notHeadless = append(notHeadless, s.cluster.info.Name)
		}
	}
	var msgs []string
	if len(ports) > 0 {
		reasons = append(reasons, string(mcsv1alpha1.ServiceExportReasonPortConflict))
		msgs = append(msgs, fmt.Sprintf("the ports of %s differ from those of cluster %s: the ServiceImport has the union of the ports and, where they disagree on a port's name, %s",
			clusterList(ports), oldest.cluster.info.Name, winner))
	}
	if len(headless) > 0 && len(notHeadless) > 0 {
		reasons = append(reasons, string(mcsv1alpha1.ServiceExportReasonTypeConflict))
		msgs = append(msgs, fmt.Sprintf("the Service is headless in %s and not in %s: %s, the ServiceImport is %s",
			clusterList(headless), clusterList(notHeadless), winner, importType(oldest.svc)))
	}
	return reasons, strings.Join(msgs, "; ")
}

// clusterList names clusters in a message: "cluster us", "clusters eu, us".
func clusterList(names []string) string {
	if len(names) == 1 {
		return "cluster " + names[0]
	}
	return "clusters " + strings.Join(names, ", ")
}

// exportedPort is what the exports of a Service must agree on about one of its ports.
type exportedPort struct {
	name, protocol, appProtocol string
	port                        int32
}

// portSet returns a Service's ports, sorted, with the API server's default protocol.
func portSet(svc *corev1.Service) []exportedPort {
	out := make([]exportedPort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, exportedPort{name: p.Name, protocol: string(cmp.Or(p.Protocol, corev1.ProtocolTCP)),
			appProtocol: ptr.Deref(p.AppProtocol, ""), port: p.Port})
	}
	slices.SortFunc(out, func(a, b exportedPort) int {
		return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.protocol, b.protocol), cmp.Compare(a.name, b.name))
	})
	return out
}

func isHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// importType is the ServiceImport type an exported Service gives.
func importType(svc *corev1.Service) mcsv1alpha1.ServiceImportType {
	if isHeadless(svc) {
		return mcsv1alpha1.Headless
	}
	return mcsv1alpha1.ClusterSetIP
}
