package mirror

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/translator"
)

// fieldManager names the writer in the objects' managedFields.
const fieldManager = "strait-mirror-writer"

// straitAnnotations are the annotations Strait sets; one of them on a live object that the
// wanted object lacks must go.
var straitAnnotations = []string{translator.MirrorOfServiceAnnotation, translator.UnreachableAnnotation}

var (
	listOwned = metav1.ListOptions{LabelSelector: ownedSelector}
	createOpt = metav1.CreateOptions{FieldManager: fieldManager}
	updateOpt = metav1.UpdateOptions{FieldManager: fieldManager}
)

func serviceOps(c kubernetes.Interface) kindOps[*corev1.Service] {
	return kindOps[*corev1.Service]{
		kind: "Service",
		list: func(ctx context.Context) ([]*corev1.Service, error) {
			l, err := c.CoreV1().Services("").List(ctx, listOwned)
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
		create: func(ctx context.Context, o *corev1.Service) (*corev1.Service, error) {
			return c.CoreV1().Services(o.Namespace).Create(ctx, o.DeepCopy(), createOpt)
		},
		update: func(ctx context.Context, o *corev1.Service) (*corev1.Service, error) {
			return c.CoreV1().Services(o.Namespace).Update(ctx, o, updateOpt)
		},
		delete: func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
			return c.CoreV1().Services(ns).Delete(ctx, name, opts)
		},
		same: func(live, want *corev1.Service) bool {
			return sameMeta(&live.ObjectMeta, &want.ObjectMeta) && live.Spec.Type == want.Spec.Type &&
				len(live.Spec.Selector) == 0 && equality.Semantic.DeepEqual(portsOf(live), portsOf(want))
		},
		apply: func(live, want *corev1.Service) *corev1.Service {
			out := live.DeepCopy()
			applyMeta(&out.ObjectMeta, &want.ObjectMeta)
			out.Spec.Type = want.Spec.Type
			out.Spec.Selector = nil
			out.Spec.Ports = slices.Clone(want.Spec.Ports)
			return out
		},
		// A Service's clusterIP cannot change: headless and not are different objects.
		recreate: func(live, want *corev1.Service) bool {
			return (live.Spec.ClusterIP == corev1.ClusterIPNone) != (want.Spec.ClusterIP == corev1.ClusterIPNone)
		},
	}
}

// portsOf returns the fields of a Service's ports Strait sets (the API server fills in others,
// like nodePort for other Service types).
func portsOf(s *corev1.Service) []corev1.ServicePort {
	out := make([]corev1.ServicePort, 0, len(s.Spec.Ports))
	for _, p := range s.Spec.Ports {
		out = append(out, corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: p.TargetPort})
	}
	return out
}

func sliceOps(c kubernetes.Interface) kindOps[*discoveryv1.EndpointSlice] {
	return kindOps[*discoveryv1.EndpointSlice]{
		kind: "EndpointSlice",
		list: func(ctx context.Context) ([]*discoveryv1.EndpointSlice, error) {
			l, err := c.DiscoveryV1().EndpointSlices("").List(ctx, listOwned)
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
		create: func(ctx context.Context, o *discoveryv1.EndpointSlice) (*discoveryv1.EndpointSlice, error) {
			return c.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o.DeepCopy(), createOpt)
		},
		update: func(ctx context.Context, o *discoveryv1.EndpointSlice) (*discoveryv1.EndpointSlice, error) {
			return c.DiscoveryV1().EndpointSlices(o.Namespace).Update(ctx, o, updateOpt)
		},
		delete: func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
			return c.DiscoveryV1().EndpointSlices(ns).Delete(ctx, name, opts)
		},
		same: func(live, want *discoveryv1.EndpointSlice) bool {
			return sameMeta(&live.ObjectMeta, &want.ObjectMeta) &&
				equality.Semantic.DeepEqual(live.Ports, want.Ports) && equality.Semantic.DeepEqual(live.Endpoints, want.Endpoints)
		},
		apply: func(live, want *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
			out := live.DeepCopy()
			applyMeta(&out.ObjectMeta, &want.ObjectMeta)
			w := want.DeepCopy()
			out.Ports, out.Endpoints = w.Ports, w.Endpoints
			return out
		},
		recreate: func(live, want *discoveryv1.EndpointSlice) bool { return live.AddressType != want.AddressType },
	}
}

func importOps(c mcsclient.Interface) kindOps[*mcsv1alpha1.ServiceImport] {
	return kindOps[*mcsv1alpha1.ServiceImport]{
		kind: "ServiceImport",
		list: func(ctx context.Context) ([]*mcsv1alpha1.ServiceImport, error) {
			l, err := c.MulticlusterV1alpha1().ServiceImports("").List(ctx, listOwned)
			if err != nil {
				return nil, err
			}
			return pointers(l.Items), nil
		},
		create: func(ctx context.Context, o *mcsv1alpha1.ServiceImport) (*mcsv1alpha1.ServiceImport, error) {
			// The status subresource ignores a status sent with the object: syncStatus writes it.
			o = o.DeepCopy()
			o.Status = mcsv1alpha1.ServiceImportStatus{}
			return c.MulticlusterV1alpha1().ServiceImports(o.Namespace).Create(ctx, o, createOpt)
		},
		update: func(ctx context.Context, o *mcsv1alpha1.ServiceImport) (*mcsv1alpha1.ServiceImport, error) {
			return c.MulticlusterV1alpha1().ServiceImports(o.Namespace).Update(ctx, o, updateOpt)
		},
		delete: func(ctx context.Context, ns, name string, opts metav1.DeleteOptions) error {
			return c.MulticlusterV1alpha1().ServiceImports(ns).Delete(ctx, name, opts)
		},
		same: func(live, want *mcsv1alpha1.ServiceImport) bool {
			return sameMeta(&live.ObjectMeta, &want.ObjectMeta) && live.Spec.Type == want.Spec.Type &&
				equality.Semantic.DeepEqual(live.Spec.Ports, want.Spec.Ports)
		},
		apply: func(live, want *mcsv1alpha1.ServiceImport) *mcsv1alpha1.ServiceImport {
			out := live.DeepCopy()
			applyMeta(&out.ObjectMeta, &want.ObjectMeta)
			out.Spec.Type = want.Spec.Type
			out.Spec.Ports = slices.Clone(want.Spec.Ports)
			return out
		},
		recreate: func(_, _ *mcsv1alpha1.ServiceImport) bool { return false },
		syncStatus: func(ctx context.Context, written, want *mcsv1alpha1.ServiceImport) (bool, error) {
			out := written.DeepCopy()
			out.Status.Clusters = slices.Clone(want.Status.Clusters)
			// SetStatusCondition keeps a condition's lastTransitionTime unless its status changed.
			var conds []metav1.Condition
			for _, c := range want.Status.Conditions {
				if old := meta.FindStatusCondition(written.Status.Conditions, c.Type); old != nil {
					conds = append(conds, *old)
				}
				c.ObservedGeneration = written.Generation
				meta.SetStatusCondition(&conds, c)
			}
			out.Status.Conditions = conds
			if equality.Semantic.DeepEqual(out.Status, written.Status) {
				return false, nil
			}
			_, err := c.MulticlusterV1alpha1().ServiceImports(out.Namespace).UpdateStatus(ctx, out, updateOpt)
			return true, err
		},
	}
}

// sameMeta reports whether live has want's labels and exactly want's Strait annotations.
func sameMeta(live, want *metav1.ObjectMeta) bool {
	for k, v := range want.Labels {
		if lv, ok := live.Labels[k]; !ok || lv != v {
			return false
		}
	}
	for _, k := range straitAnnotations {
		lv, lok := live.Annotations[k]
		wv, wok := want.Annotations[k]
		if lok != wok || lv != wv {
			return false
		}
	}
	return true
}

// applyMeta sets want's labels and Strait annotations on out, keeping everything else.
func applyMeta(out, want *metav1.ObjectMeta) {
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		out.Labels[k] = v
	}
	for _, k := range straitAnnotations {
		v, ok := want.Annotations[k]
		switch {
		case ok && out.Annotations == nil:
			out.Annotations = map[string]string{k: v}
		case ok:
			out.Annotations[k] = v
		default:
			delete(out.Annotations, k)
		}
	}
}

// pointers returns pointers to the items of a list.
func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
