package status

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// kind writes the status of the objects of one kind.
type kind struct {
	// removable kinds hold one status entry per controller (routes, policies): when the
	// translator stops giving such an object a status, Strait's entries are removed from it.
	removable bool
	// write reads the object, merges want (nil: remove Strait's entries) into its status and
	// updates the status subresource when that changed it. It returns the result label.
	write func(ctx context.Context, c Client, namespace, name string, want any, now metav1.Time) (string, error)
}

// kinds are the kinds whose status the translator computes, by the Kind of translator.Status.
// Supporting another kind is one entry here.
var kinds = map[string]kind{
	"GatewayClass": {write: objectStatus[*gwapiv1.GatewayClass, gwapiv1.GatewayClassStatus]{
		client: func(c Client, _ string) statusClient[*gwapiv1.GatewayClass] {
			return c.Gateway.GatewayV1().GatewayClasses()
		},
		status: func(o *gwapiv1.GatewayClass) *gwapiv1.GatewayClassStatus { return &o.Status },
		ours:   func(o *gwapiv1.GatewayClass) bool { return o.Spec.ControllerName == translator.ControllerName },
		merge:  mergeGatewayClass,
	}.write},
	"Gateway": {write: objectStatus[*gwapiv1.Gateway, gwapiv1.GatewayStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.Gateway] {
			return c.Gateway.GatewayV1().Gateways(ns)
		},
		status: func(o *gwapiv1.Gateway) *gwapiv1.GatewayStatus { return &o.Status },
		merge:  mergeGateway,
	}.write},
	"HTTPRoute": {removable: true, write: objectStatus[*gwapiv1.HTTPRoute, gwapiv1.RouteStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.HTTPRoute] {
			return c.Gateway.GatewayV1().HTTPRoutes(ns)
		},
		status: func(o *gwapiv1.HTTPRoute) *gwapiv1.RouteStatus { return &o.Status.RouteStatus },
		wantAs: routeStatusOf(func(s *gwapiv1.HTTPRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus }),
		merge:  mergeRoute,
	}.write},
	"GRPCRoute": {removable: true, write: objectStatus[*gwapiv1.GRPCRoute, gwapiv1.RouteStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.GRPCRoute] {
			return c.Gateway.GatewayV1().GRPCRoutes(ns)
		},
		status: func(o *gwapiv1.GRPCRoute) *gwapiv1.RouteStatus { return &o.Status.RouteStatus },
		wantAs: routeStatusOf(func(s *gwapiv1.GRPCRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus }),
		merge:  mergeRoute,
	}.write},
	"TLSRoute": {removable: true, write: objectStatus[*gwapiv1.TLSRoute, gwapiv1.RouteStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.TLSRoute] {
			return c.Gateway.GatewayV1().TLSRoutes(ns)
		},
		status: func(o *gwapiv1.TLSRoute) *gwapiv1.RouteStatus { return &o.Status.RouteStatus },
		wantAs: routeStatusOf(func(s *gwapiv1.TLSRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus }),
		merge:  mergeRoute,
	}.write},
	"TCPRoute": {removable: true, write: objectStatus[*gwapiv1.TCPRoute, gwapiv1.RouteStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.TCPRoute] {
			return c.Gateway.GatewayV1().TCPRoutes(ns)
		},
		status: func(o *gwapiv1.TCPRoute) *gwapiv1.RouteStatus { return &o.Status.RouteStatus },
		wantAs: routeStatusOf(func(s *gwapiv1.TCPRouteStatus) *gwapiv1.RouteStatus { return &s.RouteStatus }),
		merge:  mergeRoute,
	}.write},
	"BackendTLSPolicy": {removable: true, write: objectStatus[*gwapiv1.BackendTLSPolicy, gwapiv1.PolicyStatus]{
		client: func(c Client, ns string) statusClient[*gwapiv1.BackendTLSPolicy] {
			return c.Gateway.GatewayV1().BackendTLSPolicies(ns)
		},
		status: func(o *gwapiv1.BackendTLSPolicy) *gwapiv1.PolicyStatus { return &o.Status },
		merge:  mergePolicy,
	}.write},
	straitv1alpha1.BackendTrafficPolicyKind: {removable: true, write: objectStatus[*straitv1alpha1.BackendTrafficPolicy, gwapiv1.PolicyStatus]{
		client: func(c Client, ns string) statusClient[*straitv1alpha1.BackendTrafficPolicy] {
			return straitClient[straitv1alpha1.BackendTrafficPolicy]{
				c.Dynamic.Resource(straitv1alpha1.BackendTrafficPolicies).Namespace(ns),
				straitv1alpha1.BackendTrafficPolicyKind}
		},
		status: func(o *straitv1alpha1.BackendTrafficPolicy) *gwapiv1.PolicyStatus { return &o.Status },
		merge:  mergePolicy,
	}.write},
	translator.ServiceExportKind: {write: objectStatus[*mcsv1alpha1.ServiceExport, mcsv1alpha1.ServiceExportStatus]{
		client: func(c Client, ns string) statusClient[*mcsv1alpha1.ServiceExport] {
			return c.MCS.MulticlusterV1alpha1().ServiceExports(ns)
		},
		status: func(o *mcsv1alpha1.ServiceExport) *mcsv1alpha1.ServiceExportStatus { return &o.Status },
		merge:  mergeServiceExport,
	}.write},
}

// statusClient is the part of a generated typed client the writer uses.
type statusClient[O any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (O, error)
	UpdateStatus(ctx context.Context, obj O, opts metav1.UpdateOptions) (O, error)
}

// straitClient is the statusClient of one of Strait's own kinds, whose Go type is T: it has
// no generated typed client, so it reads and writes through the dynamic client.
type straitClient[T any] struct {
	resource dynamic.ResourceInterface
	kind     string
}

// Get reads the object and converts it to T.
func (c straitClient[T]) Get(ctx context.Context, name string, opts metav1.GetOptions) (*T, error) {
	u, err := c.resource.Get(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return c.typed(u)
}

// UpdateStatus writes obj's status through the status subresource.
func (c straitClient[T]) UpdateStatus(ctx context.Context, obj *T, opts metav1.UpdateOptions) (*T, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s: %w", c.kind, err)
	}
	u := &unstructured.Unstructured{Object: content}
	// The API server needs the type, which a typed object read from an unstructured one
	// may lack.
	u.SetAPIVersion(straitv1alpha1.SchemeGroupVersion.String())
	u.SetKind(c.kind)
	updated, err := c.resource.UpdateStatus(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	return c.typed(updated)
}

// typed converts an object read from the API server to T.
func (c straitClient[T]) typed(u *unstructured.Unstructured) (*T, error) {
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("convert %s: %w", c.kind, err)
	}
	return obj, nil
}

// routeStatusOf returns a wantAs for a route kind whose status type T embeds RouteStatus.
func routeStatusOf[T any](inner func(*T) *gwapiv1.RouteStatus) func(any) (*gwapiv1.RouteStatus, bool) {
	return func(v any) (*gwapiv1.RouteStatus, bool) {
		s, ok := v.(*T)
		if !ok {
			return nil, false
		}
		return inner(s), true
	}
}

// objectStatus writes the status S of objects of type O.
type objectStatus[O metav1.Object, S any] struct {
	// client returns the typed client of the kind in a namespace ("" for cluster-scoped kinds).
	client func(c Client, namespace string) statusClient[O]
	// status points into the object at the part of its status that is merged.
	status func(O) *S
	// wantAs converts the translator's status to *S; nil when it is *S already.
	wantAs func(any) (*S, bool)
	// ours reports whether Strait may write the object's status at all; nil means yes.
	ours func(O) bool
	// merge returns the status the object should have: want merged into live, keeping what
	// other controllers wrote. want is nil when Strait's entries are to be removed.
	// generation is the live object's, for conditions that lack an observedGeneration.
	merge func(live, want *S, generation int64, now metav1.Time) S
}

func (k objectStatus[O, S]) write(ctx context.Context, c Client, namespace, name string, want any, now metav1.Time) (string, error) {
	var w *S
	if want != nil {
		var ok bool
		if k.wantAs != nil {
			w, ok = k.wantAs(want)
		} else {
			w, ok = want.(*S)
		}
		if !ok {
			return resultError, fmt.Errorf("status is a %T, not the kind's status type", want)
		}
	}
	client := k.client(c, namespace)
	obj, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading: %w", err)
	}
	if k.ours != nil && !k.ours(obj) {
		return resultNotOurs, nil
	}
	live := k.status(obj)
	merged := k.merge(live, w, obj.GetGeneration(), now)
	// Semantic equality treats nil and empty lists alike, as the API server's round trip does.
	if equality.Semantic.DeepEqual(*live, merged) {
		return resultUnchanged, nil
	}
	*live = merged
	if _, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("updating status: %w", err)
	}
	return resultWritten, nil
}
