package mirror

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsfake "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned/fake"

	"github.com/strait-gw/strait/translator"
)

// fakeCluster is a member cluster with fake clientsets.
type fakeCluster struct {
	kube *kfake.Clientset
	mcs  *mcsfake.Clientset
}

// writes counts the calls that change objects (everything but get, list and watch).
func (f *fakeCluster) writes() int {
	n := 0
	for _, cs := range []interface{ Actions() []k8stesting.Action }{f.kube, f.mcs} {
		for _, a := range cs.Actions() {
			switch a.GetVerb() {
			case "get", "list", "watch":
			default:
				n++
			}
		}
	}
	return n
}

func (f *fakeCluster) clearActions() {
	f.kube.ClearActions()
	f.mcs.ClearActions()
}

func newFakeCluster(objs ...runtime.Object) *fakeCluster {
	var kube, mcs []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*mcsv1alpha1.ServiceImport); ok {
			mcs = append(mcs, o)
		} else {
			kube = append(kube, o)
		}
	}
	return &fakeCluster{kube: kfake.NewClientset(kube...), mcs: mcsfake.NewSimpleClientset(mcs...)}
}

func testWriter(t *testing.T, isLeader func() bool, clusters map[string]*fakeCluster) *Writer {
	t.Helper()
	w, err := New(nil, Options{
		Clients: func(name string) (Clients, bool) {
			c, ok := clusters[name]
			if !ok {
				return Clients{}, false
			}
			return Clients{Kube: c.kube, MCS: c.mcs}, true
		},
		IsLeader: isLeader,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.queue.ShutDown)
	return w
}

// drain reconciles every queued cluster, synchronously.
func drain(t *testing.T, w *Writer) {
	t.Helper()
	for w.queue.Len() > 0 {
		w.queue.ProcessNext(t.Context())
	}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func service(name string, labels map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}

func exported(name string) *corev1.Service {
	return service(name, map[string]string{translator.ExportLabel: "true"})
}

func slice(service string, addresses ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
	}
	for _, a := range addresses {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return es
}

// member returns the resources of a cluster on network net with namespace default.
func member(name, net string, services []*corev1.Service, slices ...*discoveryv1.EndpointSlice) *translator.ClusterResources {
	return &translator.ClusterResources{
		Cluster:        translator.Cluster{Name: name, Network: net},
		Namespaces:     []*corev1.Namespace{namespace("default")},
		Services:       services,
		EndpointSlices: slices,
	}
}

func input(clusters ...*translator.ClusterResources) *translator.Input {
	return &translator.Input{Clusters: clusters}
}

func getService(t *testing.T, c *fakeCluster, name string) (*corev1.Service, bool) {
	t.Helper()
	s, err := c.kube.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, true
}

func listSlices(t *testing.T, c *fakeCluster) []discoveryv1.EndpointSlice {
	t.Helper()
	l, err := c.kube.DiscoveryV1().EndpointSlices("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func getImport(t *testing.T, c *fakeCluster, name string) (*mcsv1alpha1.ServiceImport, bool) {
	t.Helper()
	si, err := c.mcs.MulticlusterV1alpha1().ServiceImports("default").Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return si, true
}

func TestMirrorsAppliedOnceAndUpdatedOnChange(t *testing.T) {
	us, eu := newFakeCluster(), newFakeCluster()
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	in := input(
		member("eu", "net", nil),
		member("us", "net", []*corev1.Service{exported("podinfo")}, slice("podinfo", "10.0.0.1")),
	)
	w.update(in)
	drain(t, w)

	mirror, ok := getService(t, eu, "podinfo-us")
	if !ok {
		t.Fatal("no mirror podinfo-us in eu")
	}
	if mirror.Labels[translator.MirrorOfClusterLabel] != "us" || mirror.Labels[translator.ManagedByLabel] != translator.ManagedByValue {
		t.Errorf("mirror labels %v", mirror.Labels)
	}
	slices := listSlices(t, eu)
	if len(slices) != 1 || len(slices[0].Endpoints) != 1 || slices[0].Endpoints[0].Addresses[0] != "10.0.0.1" {
		t.Errorf("eu slices %+v, want one with 10.0.0.1", slices)
	}
	for name, c := range map[string]*fakeCluster{"us": us, "eu": eu} {
		si, ok := getImport(t, c, "podinfo")
		if !ok {
			t.Fatalf("no ServiceImport podinfo in %s", name)
		}
		if len(si.Status.Clusters) != 1 || si.Status.Clusters[0].Cluster != "us" {
			t.Errorf("%s: ServiceImport clusters %+v, want us", name, si.Status.Clusters)
		}
		if len(si.Status.Conditions) != 1 || si.Status.Conditions[0].LastTransitionTime.IsZero() {
			t.Errorf("%s: ServiceImport conditions %+v, want Reachable with a transition time", name, si.Status.Conditions)
		}
	}
	if _, ok := getService(t, us, "podinfo-us"); ok {
		t.Error("a cluster got a mirror of its own Service")
	}

	// Nothing changed: a resync reads but writes nothing.
	us.clearActions()
	eu.clearActions()
	w.Resync()
	drain(t, w)
	if n := us.writes() + eu.writes(); n != 0 {
		t.Errorf("resync of unchanged mirrors wrote %d times: %v %v", n, us.kube.Actions(), eu.kube.Actions())
	}
	if got := testutil.ToFloat64(w.metrics.writes.WithLabelValues("Service", actionUnchanged)); got != 1 {
		t.Errorf("unchanged Service metric = %v, want 1", got)
	}

	// An endpoint changes: only the mirror slice is written.
	w.update(input(
		member("eu", "net", nil),
		member("us", "net", []*corev1.Service{exported("podinfo")}, slice("podinfo", "10.0.0.1", "10.0.0.2")),
	))
	drain(t, w)
	if n := eu.writes(); n != 1 {
		t.Errorf("an endpoint change made %d writes in eu, want 1: %v", n, eu.kube.Actions())
	}
	if n := us.writes(); n != 0 {
		t.Errorf("an endpoint change made %d writes in us, want 0", n)
	}
	if s := listSlices(t, eu); len(s) != 1 || len(s[0].Endpoints) != 2 {
		t.Errorf("eu slices after the change %+v, want two endpoints", s)
	}
}

func TestGarbageCollection(t *testing.T) {
	// eu holds a Service named like a mirror that Strait did not make, and one with the
	// mirror label but not Strait's managed-by label: neither is Strait's to delete.
	theirs := service("cache-us", nil)
	lookalike := service("old-us", map[string]string{translator.MirrorOfClusterLabel: "us"})
	us, eu := newFakeCluster(), newFakeCluster(theirs, lookalike)
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	w.update(input(
		member("eu", "net", []*corev1.Service{theirs, lookalike}),
		member("us", "net", []*corev1.Service{exported("podinfo"), exported("web")}, slice("podinfo", "10.0.0.1")),
	))
	drain(t, w)
	if _, ok := getService(t, eu, "web-us"); !ok {
		t.Fatal("no mirror web-us in eu")
	}

	// web is no longer exported: its mirror and ServiceImports go, podinfo's stay.
	w.update(input(
		member("eu", "net", []*corev1.Service{theirs, lookalike}),
		member("us", "net", []*corev1.Service{exported("podinfo"), service("web", nil)}, slice("podinfo", "10.0.0.1")),
	))
	drain(t, w)
	if _, ok := getService(t, eu, "web-us"); ok {
		t.Error("the mirror of a Service no longer exported was kept")
	}
	for name, c := range map[string]*fakeCluster{"us": us, "eu": eu} {
		if _, ok := getImport(t, c, "web"); ok {
			t.Errorf("%s: the ServiceImport of a Service no longer exported was kept", name)
		}
		if _, ok := getImport(t, c, "podinfo"); !ok {
			t.Errorf("%s: the ServiceImport of podinfo went too", name)
		}
	}
	if _, ok := getService(t, eu, "podinfo-us"); !ok {
		t.Error("the mirror of podinfo went too")
	}

	// Cluster us is removed: its mirrors and the ServiceImports only it exported leave eu;
	// nothing is done in us.
	us.clearActions()
	w.update(input(member("eu", "net", []*corev1.Service{theirs, lookalike})))
	drain(t, w)
	if _, ok := getService(t, eu, "podinfo-us"); ok {
		t.Error("the mirror of a removed cluster was kept")
	}
	if s := listSlices(t, eu); len(s) != 0 {
		t.Errorf("mirror slices of a removed cluster were kept: %+v", s)
	}
	if _, ok := getImport(t, eu, "podinfo"); ok {
		t.Error("the ServiceImport of a removed cluster's export was kept")
	}
	if len(us.kube.Actions())+len(us.mcs.Actions()) != 0 {
		t.Errorf("the removed cluster was called: %v", us.kube.Actions())
	}
	for _, name := range []string{"cache-us", "old-us"} {
		if _, ok := getService(t, eu, name); !ok {
			t.Errorf("Service %s, not labeled as Strait's, was deleted", name)
		}
	}
}

func TestNameTakenLeftAlone(t *testing.T) {
	theirs := service("podinfo-us", nil)
	theirImport := &mcsv1alpha1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"},
		Spec: mcsv1alpha1.ServiceImportSpec{Type: mcsv1alpha1.Headless}}
	us, eu := newFakeCluster(), newFakeCluster(theirs, theirImport)
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	euRes := member("eu", "net", []*corev1.Service{theirs})
	euRes.ServiceImports = []*mcsv1alpha1.ServiceImport{theirImport}
	w.update(input(euRes, member("us", "net", []*corev1.Service{exported("podinfo")})))
	drain(t, w)
	if n := eu.writes(); n != 0 {
		t.Errorf("%d writes in eu, whose objects of those names are not Strait's: %v %v", n, eu.kube.Actions(), eu.mcs.Actions())
	}
	if _, ok := getImport(t, us, "podinfo"); !ok {
		t.Error("us did not get its ServiceImport")
	}

	// The Input does not show eu's Service yet: creating the mirror finds the name taken and
	// leaves the object alone.
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{exported("podinfo")})))
	drain(t, w)
	s, ok := getService(t, eu, "podinfo-us")
	if !ok || s.Labels[translator.ManagedByLabel] != "" {
		t.Errorf("the Service podinfo-us that Strait did not make was changed: %+v", s)
	}
	if got := testutil.ToFloat64(w.metrics.writes.WithLabelValues("Service", actionNameTaken)); got != 1 {
		t.Errorf("name_taken metric = %v, want 1", got)
	}
}

func TestOtherNetworkMirrorHasNoEndpoints(t *testing.T) {
	us, onprem := newFakeCluster(), newFakeCluster()
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "onprem": onprem})
	w.update(input(
		member("onprem", "private", nil),
		member("us", "net", []*corev1.Service{exported("podinfo")}, slice("podinfo", "10.0.0.1")),
	))
	drain(t, w)
	m, ok := getService(t, onprem, "podinfo-us")
	if !ok {
		t.Fatal("no mirror in onprem")
	}
	if m.Annotations[translator.UnreachableAnnotation] == "" {
		t.Errorf("the mirror of a cluster on another network does not say it is unreachable: %v", m.Annotations)
	}
	if s := listSlices(t, onprem); len(s) != 0 {
		t.Errorf("the mirror of a cluster on another network got endpoints: %+v", s)
	}
	si, _ := getImport(t, onprem, "podinfo")
	if si == nil || len(si.Status.Conditions) != 1 || si.Status.Conditions[0].Status != metav1.ConditionFalse {
		t.Errorf("onprem ServiceImport %+v, want Reachable False", si)
	}
}

func TestNotLeaderWritesNothing(t *testing.T) {
	leader := false
	us, eu := newFakeCluster(), newFakeCluster()
	w := testWriter(t, func() bool { return leader }, map[string]*fakeCluster{"us": us, "eu": eu})
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{exported("podinfo")})))
	drain(t, w)
	if n := len(us.kube.Actions()) + len(eu.kube.Actions()) + len(us.mcs.Actions()) + len(eu.mcs.Actions()); n != 0 {
		t.Fatalf("a follower made %d API calls", n)
	}
	leader = true
	w.Resync()
	drain(t, w)
	if _, ok := getService(t, eu, "podinfo-us"); !ok {
		t.Error("no mirror after becoming leader")
	}
}

func TestConflictRetried(t *testing.T) {
	us, eu := newFakeCluster(), newFakeCluster()
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{exported("podinfo")}, slice("podinfo", "10.0.0.1"))))
	drain(t, w)

	conflicts := 1
	eu.kube.PrependReactor("update", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts == 0 {
			return false, nil, nil
		}
		conflicts--
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, "podinfo-us", nil)
	})
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{exported("podinfo")}, slice("podinfo", "10.0.0.9"))))
	drain(t, w)
	if w.queue.NumRequeues("eu") != 1 {
		t.Fatalf("eu requeued %d times after a conflict, want 1", w.queue.NumRequeues("eu"))
	}
	// The retry comes after the rate limiter's delay; wait for it to be queued again.
	deadline := time.Now().Add(10 * time.Second)
	for w.queue.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	drain(t, w)
	if s := listSlices(t, eu); len(s) != 1 || s[0].Endpoints[0].Addresses[0] != "10.0.0.9" {
		t.Errorf("after the retry eu slices are %+v, want 10.0.0.9", s)
	}
	if w.queue.NumRequeues("eu") != 0 {
		t.Error("a successful retry was not forgotten by the rate limiter")
	}
}

func TestHeadlessChangeRecreates(t *testing.T) {
	us, eu := newFakeCluster(), newFakeCluster()
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	svc := exported("db")
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{svc})))
	drain(t, w)
	headless := svc.DeepCopy()
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	w.update(input(member("eu", "net", nil), member("us", "net", []*corev1.Service{headless})))
	drain(t, w)
	m, ok := getService(t, eu, "db-us")
	if !ok || m.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("mirror after the Service became headless: %+v, want a headless mirror", m)
	}
}

// TestStartStops checks the runner reads inputs, reconciles and returns when its context ends.
func TestStartStops(t *testing.T) {
	us, eu := newFakeCluster(), newFakeCluster()
	inputs := make(chan *translator.Input, 1)
	w := testWriter(t, nil, map[string]*fakeCluster{"us": us, "eu": eu})
	w.inputs = inputs
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	inputs <- input(member("eu", "net", nil), member("us", "net", []*corev1.Service{exported("podinfo")}))
	for {
		if _, ok := getService(t, eu, "podinfo-us"); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v", err)
	}
}
