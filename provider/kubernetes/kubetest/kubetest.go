// Package kubetest makes fake member clusters for tests of the Kubernetes provider and of
// the code that uses it: fake clientsets of client-go, Gateway API and MCS, and a fake dynamic
// client for Strait's own kinds, whose discovery serves every kind Strait reads.
package kubetest

import (
	"os"
	"reflect"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsfake "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned/fake"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

// DisableWatchList makes client-go's informers list and then watch, rather than stream the
// list through a watch (the WatchListClient feature), which the fake clientsets cannot do
// (and mcs-api's does not even say so: its informers would wait for a bookmark that never
// comes). Call it from TestMain, before any informer starts: client-go reads the setting
// once.
func DisableWatchList() {
	if err := os.Setenv("KUBE_FEATURE_WatchListClient", "false"); err != nil {
		panic(err)
	}
}

// Resources are the resources the fake clusters' discovery serves, by group and version.
var Resources = map[schema.GroupVersion][]string{
	corev1.SchemeGroupVersion:      {"namespaces", "services", "secrets", "configmaps"},
	discoveryv1.SchemeGroupVersion: {"endpointslices"},
	schema.GroupVersion(gwapiv1.GroupVersion): {"gatewayclasses", "gateways", "httproutes", "grpcroutes",
		"tlsroutes", "tcproutes", "referencegrants", "backendtlspolicies"},
	mcsv1alpha1.SchemeGroupVersion:    {"serviceexports", "serviceimports"},
	straitv1alpha1.SchemeGroupVersion: {straitv1alpha1.BackendTrafficPolicies.Resource},
}

// gatewayResources maps Gateway API Go types to their resources: the fake guesses a kind's
// resource, and Gateway makes "gatewaies".
var gatewayResources = map[string]string{
	"GatewayClass": "gatewayclasses", "Gateway": "gateways", "HTTPRoute": "httproutes", "GRPCRoute": "grpcroutes",
	"TLSRoute": "tlsroutes", "TCPRoute": "tcproutes", "ReferenceGrant": "referencegrants",
	"BackendTLSPolicy": "backendtlspolicies",
}

// Cluster is a fake member cluster.
type Cluster struct {
	Kube    *kubefake.Clientset
	Gateway *gwfake.Clientset
	MCS     *mcsfake.Clientset
	Dynamic *dynamicfake.FakeDynamicClient
	watches atomic.Int32
}

// NewCluster returns a fake cluster holding objs, each in the clientset of its group.
func NewCluster(objs ...runtime.Object) *Cluster {
	var kube, mcs, strait []runtime.Object
	c := &Cluster{Gateway: gwfake.NewSimpleClientset()}
	for _, o := range objs {
		switch o.(type) {
		case *mcsv1alpha1.ServiceExport, *mcsv1alpha1.ServiceImport:
			mcs = append(mcs, o)
		case *straitv1alpha1.BackendTrafficPolicy:
			strait = append(strait, o)
		default:
			if r, ok := gatewayResources[reflect.TypeOf(o).Elem().Name()]; ok && reflect.TypeOf(o).Elem().PkgPath() == reflect.TypeFor[gwapiv1.Gateway]().PkgPath() {
				// Gateway API kinds are registered in several versions: file them as v1.
				gvr := schema.GroupVersion(gwapiv1.GroupVersion).WithResource(r)
				if err := c.Gateway.Tracker().Create(gvr, o, o.(metav1.Object).GetNamespace()); err != nil {
					panic(err)
				}
				continue
			}
			kube = append(kube, o)
		}
	}
	c.Kube = kubefake.NewClientset(kube...)
	c.MCS = mcsfake.NewSimpleClientset(mcs...)
	scheme := runtime.NewScheme()
	if err := straitv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	c.Dynamic = dynamicfake.NewSimpleDynamicClient(scheme, strait...)
	countWatch := func(k8stesting.Action) (bool, watch.Interface, error) {
		c.watches.Add(1)
		return false, nil, nil
	}
	c.Kube.PrependWatchReactor("*", countWatch)
	c.Gateway.PrependWatchReactor("*", countWatch)
	c.MCS.PrependWatchReactor("*", countWatch)
	c.Dynamic.PrependWatchReactor("*", countWatch)
	d := c.Kube.Discovery().(*fakediscovery.FakeDiscovery)
	for gv, names := range Resources {
		l := &metav1.APIResourceList{GroupVersion: gv.String()}
		for _, n := range names {
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: n})
		}
		d.Resources = append(d.Resources, l)
	}
	return c
}

// Watches is the number of watches opened on the cluster so far: the fakes do not replay
// what happened between an informer's list and its watch, so a test that changes objects
// waits until every informer watches.
func (c *Cluster) Watches() int { return int(c.watches.Load()) }
