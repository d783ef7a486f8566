// This test runs against real API servers started by e2e/localcluster.

package mirror

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/e2e/localcluster"
	"github.com/strait-gw/strait/provider/kubernetes/kubetest"
	"github.com/strait-gw/strait/translator"
)

// TestLocalClusters mirrors an exported Service of us into eu on two real API servers,
// checks that a second pass writes nothing (what Strait writes reads back equal after the
// API server's defaulting), and that the mirror goes when the export does.
func TestLocalClusters(t *testing.T) {
	fleet := localcluster.StartForTest(t, localcluster.Options{Clusters: []string{"us", "eu"}})
	// clients are an admin's; the writer acts as the member ClusterRole's ServiceAccount,
	// whose role must allow its writes.
	clients, members := map[string]Clients{}, map[string]Clients{}
	for _, c := range fleet.Clusters {
		clients[c.Name] = Clients{Kube: kubernetes.NewForConfigOrDie(c.Config), MCS: mcsclient.NewForConfigOrDie(c.Config)}
		kubetest.ApplyMemberRBAC(t, c.Config)
		member, err := c.ClientConfig(kubetest.MemberUser)
		if err != nil {
			t.Fatal(err)
		}
		members[c.Name] = Clients{Kube: kubernetes.NewForConfigOrDie(member), MCS: mcsclient.NewForConfigOrDie(member)}
	}
	w, err := New(nil, Options{Clients: func(name string) (Clients, bool) { c, ok := members[name]; return c, ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.queue.ShutDown)
	ctx := t.Context()
	us, eu := clients["us"].Kube, clients["eu"].Kube

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default", Labels: map[string]string{translator.ExportLabel: "true"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, AppProtocol: new("http")}}},
	}
	svc, err = us.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "podinfo-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "podinfo", discoveryv1.LabelManagedBy: "test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(9898))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
	}
	if _, err := us.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pass := func() {
		t.Helper()
		w.update(readInput(t, clients))
		w.Resync()
		for w.queue.Len() > 0 {
			w.queue.ProcessNext(ctx)
		}
		if n := w.queue.NumRequeues("us") + w.queue.NumRequeues("eu"); n != 0 {
			t.Fatalf("a reconcile failed (%d requeues); see the log", n)
		}
	}
	pass()
	mirror, err := eu.CoreV1().Services("default").Get(ctx, "podinfo-us", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no mirror in eu: %v", err)
	}
	if mirror.Spec.ClusterIP == "" || len(mirror.Spec.Selector) != 0 {
		t.Errorf("mirror spec %+v, want a cluster IP and no selector", mirror.Spec)
	}
	slices, err := eu.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=podinfo-us"})
	if err != nil || len(slices.Items) != 1 || slices.Items[0].Endpoints[0].Addresses[0] != "10.0.0.7" {
		t.Errorf("mirror slices in eu: %+v (%v), want one with 10.0.0.7", slices, err)
	}
	si, err := clients["eu"].MCS.MulticlusterV1alpha1().ServiceImports("default").Get(ctx, "podinfo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no ServiceImport in eu: %v", err)
	}
	if len(si.Status.Clusters) != 1 || len(si.Status.Conditions) != 1 {
		t.Errorf("ServiceImport status %+v, want cluster us and Reachable", si.Status)
	}

	// Second pass, with the mirrors now in the Input: nothing is written.
	written := func() float64 {
		var n float64
		for _, kind := range []string{"Service", "EndpointSlice", "ServiceImport"} {
			for _, a := range []string{actionCreated, actionUpdated, actionDeleted, actionError} {
				n += testutil.ToFloat64(w.metrics.writes.WithLabelValues(kind, a))
			}
		}
		return n
	}
	before := written()
	pass()
	if after := written(); after != before {
		t.Errorf("a pass with nothing changed wrote %v times: what Strait writes does not read back equal", after-before)
	}

	// The export goes: so do the mirror, its slice and the ServiceImports.
	svc.Labels = nil
	if _, err := us.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pass()
	if _, err := eu.CoreV1().Services("default").Get(ctx, "podinfo-us", metav1.GetOptions{}); err == nil {
		t.Error("the mirror stayed after the export went")
	}
	for name, c := range clients {
		l, err := c.MCS.MulticlusterV1alpha1().ServiceImports("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 0 {
			t.Errorf("%s: ServiceImports %v (%v), want none", name, l, err)
		}
	}
}

// readInput reads what ComputeMirrors needs from each cluster.
func readInput(t *testing.T, clients map[string]Clients) *translator.Input {
	t.Helper()
	ctx := t.Context()
	in := &translator.Input{}
	for _, name := range []string{"eu", "us"} {
		c := clients[name]
		res := &translator.ClusterResources{Cluster: translator.Cluster{Name: name, Network: "loopback"}}
		nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res.Namespaces = pointers(nss.Items)
		svcs, err := c.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res.Services = pointers(svcs.Items)
		slices, err := c.Kube.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res.EndpointSlices = pointers(slices.Items)
		imports, err := c.MCS.MulticlusterV1alpha1().ServiceImports("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res.ServiceImports = pointers(imports.Items)
		in.Clusters = append(in.Clusters, res)
	}
	return in
}
