package kubernetes

import (
	"cmp"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// factories are the informer factories of one member cluster.
type factories struct {
	kube    informers.SharedInformerFactory
	gateway gwinformers.SharedInformerFactory
	mcs     mcsinformers.SharedInformerFactory
	// strait watches Strait's own kinds, which have no generated clientset: trim turns its
	// unstructured objects into typed ones before they enter the cache.
	strait dynamicinformer.DynamicSharedInformerFactory
}

func newFactories(c *Clients) *factories {
	// No periodic resync: the translator gets every change from the watches, and a resync
	// would only replay the cache.
	return &factories{
		kube:    informers.NewSharedInformerFactory(c.Kube, 0),
		gateway: gwinformers.NewSharedInformerFactory(c.Gateway, 0),
		mcs:     mcsinformers.NewSharedInformerFactory(c.MCS, 0),
		strait:  dynamicinformer.NewDynamicSharedInformerFactory(c.Dynamic, 0),
	}
}

func (f *factories) start(stop <-chan struct{}) {
	f.kube.Start(stop)
	f.gateway.Start(stop)
	f.mcs.Start(stop)
	f.strait.Start(stop)
}

// shutdown waits for every informer goroutine to end; the stop channel must be closed.
func (f *factories) shutdown() {
	f.kube.Shutdown()
	f.gateway.Shutdown()
	f.mcs.Shutdown()
	f.strait.Shutdown()
}

// kind is one kind of object the translator reads.
type kind struct {
	// name names the kind in logs.
	name string
	// resource is what discovery must list for the kind to be watched.
	resource schema.GroupVersionResource
	// informer returns the kind's informer from the factories (creating it).
	informer func(*factories) cache.SharedIndexInformer
	// specOnly says the translator reads the kind's metadata and spec, never its status: an
	// update that leaves metadata.generation, labels and annotations alone (a status write,
	// Strait's own included) changes nothing the translator sees.
	specOnly bool
	// fill sets the kind's field of res from the cached objects.
	fill func(res *translator.ClusterResources, objs []any)
	// referenced says the translator reads only the objects other objects refer to
	// (Secrets, ConfigMaps): the others are left out of the Input and their changes ignored.
	referenced bool
}

var (
	coreV1      = corev1.SchemeGroupVersion
	discoveryV1 = discoveryv1.SchemeGroupVersion
	gatewayV1   = schema.GroupVersion(gwapiv1.GroupVersion)
	mcsV1alpha1 = mcsv1alpha1.SchemeGroupVersion
)

// kinds are the kinds the translator reads (translator.ClusterResources), in its order.
var kinds = []kind{
	{name: "Namespace", resource: coreV1.WithResource("namespaces"),
		informer: func(f *factories) cache.SharedIndexInformer { return f.kube.Core().V1().Namespaces().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*corev1.Namespace { return &r.Namespaces })},
	{name: "GatewayClass", resource: gatewayV1.WithResource("gatewayclasses"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.gateway.Gateway().V1().GatewayClasses().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*gwapiv1.GatewayClass { return &r.GatewayClasses })},
	{name: "Gateway", resource: gatewayV1.WithResource("gateways"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.gateway.Gateway().V1().Gateways().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*gwapiv1.Gateway { return &r.Gateways })},
	{name: "HTTPRoute", resource: gatewayV1.WithResource("httproutes"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.gateway.Gateway().V1().HTTPRoutes().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*gwapiv1.HTTPRoute { return &r.HTTPRoutes })},
	{name: "GRPCRoute", resource: gatewayV1.WithResource("grpcroutes"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.gateway.Gateway().V1().GRPCRoutes().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*gwapiv1.GRPCRoute { return &r.GRPCRoutes })},
	{name: "TLSRoute", resource: gatewayV1.WithResource("tlsroutes"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.gateway.Gateway().V1().TLSRoutes().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*gwapiv1.TLSRoute { return &r.TLSRoutes })},
	{name: "TCPRoute", resource: gatewayV1.WithResource("tcproutes"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.gateway.Gateway().V1().TCPRoutes().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*gwapiv1.TCPRoute { return &r.TCPRoutes })},
	{name: "ReferenceGrant", resource: gatewayV1.WithResource("referencegrants"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.gateway.Gateway().V1().ReferenceGrants().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*gwapiv1.ReferenceGrant { return &r.ReferenceGrants })},
	{name: "BackendTLSPolicy", resource: gatewayV1.WithResource("backendtlspolicies"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.gateway.Gateway().V1().BackendTLSPolicies().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*gwapiv1.BackendTLSPolicy { return &r.BackendTLSPolicies })},
	{name: "Service", resource: coreV1.WithResource("services"),
		informer: func(f *factories) cache.SharedIndexInformer { return f.kube.Core().V1().Services().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*corev1.Service { return &r.Services })},
	{name: "EndpointSlice", resource: discoveryV1.WithResource("endpointslices"),
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.kube.Discovery().V1().EndpointSlices().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*discoveryv1.EndpointSlice { return &r.EndpointSlices })},
	{name: "Secret", resource: coreV1.WithResource("secrets"), referenced: true,
		informer: secretInformer,
		fill:     fill(func(r *translator.ClusterResources) *[]*corev1.Secret { return &r.Secrets })},
	{name: "ConfigMap", resource: coreV1.WithResource("configmaps"), referenced: true,
		informer: func(f *factories) cache.SharedIndexInformer { return f.kube.Core().V1().ConfigMaps().Informer() },
		fill:     fill(func(r *translator.ClusterResources) *[]*corev1.ConfigMap { return &r.ConfigMaps })},
	{name: "ServiceExport", resource: mcsV1alpha1.WithResource("serviceexports"), specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.mcs.Multicluster().V1alpha1().ServiceExports().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*mcsv1alpha1.ServiceExport { return &r.ServiceExports })},
	{name: "ServiceImport", resource: mcsV1alpha1.WithResource("serviceimports"),
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.mcs.Multicluster().V1alpha1().ServiceImports().Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*mcsv1alpha1.ServiceImport { return &r.ServiceImports })},
	{name: "BackendTrafficPolicy", resource: straitv1alpha1.BackendTrafficPolicies, specOnly: true,
		informer: func(f *factories) cache.SharedIndexInformer {
			return f.strait.ForResource(straitv1alpha1.BackendTrafficPolicies).Informer()
		},
		fill: fill(func(r *translator.ClusterResources) *[]*straitv1alpha1.BackendTrafficPolicy {
			return &r.BackendTrafficPolicies
		})},
}

// ignoredSecretTypes are Secret types the translator never reads and that can be many
// and large (Helm keeps every release of every chart in one): the server leaves them out of
// the watch.
var ignoredSecretTypes = []corev1.SecretType{
	corev1.SecretTypeServiceAccountToken,
	corev1.SecretTypeDockercfg,
	corev1.SecretTypeDockerConfigJson,
	corev1.SecretTypeBasicAuth,
	corev1.SecretTypeSSHAuth,
	corev1.SecretTypeBootstrapToken,
	"helm.sh/release.v1",
}

// secretInformer watches the Secrets of every type but the ignored ones.
func secretInformer(f *factories) cache.SharedIndexInformer {
	selectors := make([]fields.Selector, len(ignoredSecretTypes))
	for i, t := range ignoredSecretTypes {
		selectors[i] = fields.OneTermNotEqualSelector("type", string(t))
	}
	selector := fields.AndSelectors(selectors...).String()
	return f.kube.InformerFor(&corev1.Secret{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredSecretInformer(c, metav1.NamespaceAll, resync, cache.Indexers{},
			func(o *metav1.ListOptions) { o.FieldSelector = selector })
	})
}

// fill returns a kind's fill function: the objects of type T, sorted by namespace and name
// (the translator's output is then deterministic), nil when there is none.
func fill[T metav1.Object](field func(*translator.ClusterResources) *[]T) func(*translator.ClusterResources, []any) {
	return func(res *translator.ClusterResources, objs []any) {
		var out []T
		for _, o := range objs {
			if t, ok := o.(T); ok {
				out = append(out, t)
			}
		}
		slices.SortFunc(out, func(a, b T) int {
			return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
		})
		*field(res) = out
	}
}

// keptDataKeys are the only Secret and ConfigMap keys the translator reads: a Gateway's
// certificate and key, and a BackendTLSPolicy's CA bundle.
var keptDataKeys = []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt"}

// lastApplied is kubectl's copy of the whole object, as large as the object itself.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// straitScheme knows Strait's own kinds, which trim turns from unstructured into typed.
var straitScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := straitv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// trim drops, before an object enters the cache, what the translator never reads:
// managedFields and kubectl's last-applied annotation of every object, and every Secret and
// ConfigMap key but keptDataKeys. It turns the unstructured objects of Strait's kinds into
// typed ones, once per event rather than at every translation. It runs on the object just
// decoded from the watch, which nothing else holds yet.
func trim(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		obj = typed(u)
	}
	switch o := obj.(type) {
	case *corev1.Secret:
		maps.DeleteFunc(o.Data, func(k string, _ []byte) bool { return !slices.Contains(keptDataKeys, k) })
		o.StringData = nil
	case *corev1.ConfigMap:
		maps.DeleteFunc(o.Data, func(k string, _ string) bool { return !slices.Contains(keptDataKeys, k) })
		o.BinaryData = nil
	}
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
		}
	}
	return obj, nil
}

// typed converts an object of one of Strait's kinds to its Go type. An object that does not
// convert (the CRD's schema makes that unlikely) stays unstructured: fill leaves it out of the
// Input, as it would an object of an unknown kind.
func typed(u *unstructured.Unstructured) any {
	t, err := straitScheme.New(u.GroupVersionKind())
	if err != nil {
		return u
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
		return u
	}
	return t
}

// relevantUpdate says whether an update may change what the translator reads: a relist
// after a broken watch replays every object unchanged, and status writes (ours too) leave a
// specOnly kind's input alone.
func relevantUpdate(k *kind, oldObj, newObj any) bool {
	o, ok1 := oldObj.(metav1.Object)
	n, ok2 := newObj.(metav1.Object)
	if !ok1 || !ok2 {
		return true
	}
	if o.GetResourceVersion() == n.GetResourceVersion() {
		return false
	}
	if !k.specOnly {
		return true
	}
	return o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
		!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}
