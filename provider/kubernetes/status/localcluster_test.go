// This test runs against a real API server started by e2e/localcluster.

package status

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/e2e/localcluster"
	straitkube "github.com/strait-gw/strait/provider/kubernetes"
	"github.com/strait-gw/strait/provider/kubernetes/kubetest"
	"github.com/strait-gw/strait/translator"
)

// TestLocalCluster writes the statuses of a translation to a real API server (a
// BackendTrafficPolicy's through the dynamic client, ServiceExports' through the MCS client),
// keeps another controller's route parent, and checks that writing the same translation
// again writes nothing: what Strait writes reads back equal after the API server's
// defaulting.
func TestLocalCluster(t *testing.T) {
	fleet := localcluster.StartForTest(t, localcluster.Options{Clusters: []string{"us"}})
	cfg := fleet.Cluster("us").Config
	admin, err := straitkube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw, kube, dyn, mcs := admin.Gateway, admin.Kube, admin.Dynamic, admin.MCS
	policies := dyn.Resource(straitv1alpha1.BackendTrafficPolicies).Namespace("default")
	ctx := t.Context()
	api := gw.GatewayV1()
	mustCreate := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(api.GatewayClasses().Create(ctx, &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "strait"},
		Spec: gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName}}, metav1.CreateOptions{}))
	mustCreate(api.Gateways("default").Create(ctx, &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: gwapiv1.GatewaySpec{GatewayClassName: "strait", Listeners: []gwapiv1.Listener{{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 8080}}}},
		metav1.CreateOptions{}))
	mustCreate(kube.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{}))
	// An export of an existing Service, and one of a Service that does not exist.
	for _, name := range []string{"echo", "missing"} {
		mustCreate(mcs.MulticlusterV1alpha1().ServiceExports("default").Create(ctx,
			&mcsv1alpha1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}, metav1.CreateOptions{}))
	}
	route, err := api.HTTPRoutes("default").Create(ctx, &gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: gwapiv1.HTTPRouteSpec{
			CommonRouteSpec: gwapiv1.CommonRouteSpec{ParentRefs: []gwapiv1.ParentReference{{Name: "web"}, {Name: "theirs"}}},
			Rules:           []gwapiv1.HTTPRouteRule{{BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: "echo", Port: new(gwapiv1.PortNumber(80))}}}}}},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&straitv1alpha1.BackendTrafficPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: straitv1alpha1.SchemeGroupVersion.String(), Kind: straitv1alpha1.BackendTrafficPolicyKind},
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: straitv1alpha1.BackendTrafficPolicySpec{
			TargetRefs:   []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Kind: "Service", Name: "echo"}}},
			LoadBalancer: &straitv1alpha1.LoadBalancer{Type: straitv1alpha1.LoadBalancerLeastRequest},
		}})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(policies.Create(ctx, &unstructured.Unstructured{Object: policy}, metav1.CreateOptions{}))
	// Another controller already wrote its parent entry.
	theirs := gwapiv1.RouteParentStatus{ParentRef: gwapiv1.ParentReference{Name: "theirs"}, ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}
	route.Status.Parents = []gwapiv1.RouteParentStatus{theirs}
	if _, err := api.HTTPRoutes("default").UpdateStatus(ctx, route, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The writer acts as the member ClusterRole's ServiceAccount: the role must allow its writes.
	kubetest.ApplyMemberRBAC(t, cfg)
	member, err := fleet.Cluster("us").ClientConfig(kubetest.MemberUser)
	if err != nil {
		t.Fatal(err)
	}
	m, err := straitkube.NewClients(member)
	if err != nil {
		t.Fatal(err)
	}
	client := Client{Gateway: m.Gateway, Dynamic: m.Dynamic, MCS: m.MCS}
	w, err := New(Options{Clients: func(string) (Client, bool) { return client, true }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.queue.ShutDown)
	pass := func() {
		t.Helper()
		w.Update(translator.Translate(readInput(t, kube, gw, mcs, dyn)).Statuses)
		w.Resync()
		for w.queue.Len() > 0 {
			w.queue.ProcessNext(ctx)
		}
	}
	count := func(result string) float64 {
		var n float64
		for _, kind := range []string{"GatewayClass", "Gateway", "HTTPRoute", straitv1alpha1.BackendTrafficPolicyKind, translator.ServiceExportKind} {
			n += testutil.ToFloat64(w.metrics.writes.WithLabelValues(kind, result))
		}
		return n
	}

	pass()
	const objects = 6
	if n := count(resultWritten); n != objects {
		t.Errorf("%v statuses written, want %d (GatewayClass, Gateway, HTTPRoute, BackendTrafficPolicy, 2 ServiceExports)", n, objects)
	}
	if n := count(resultError); n != 0 {
		t.Fatalf("%v writes failed; see the log", n)
	}
	got, err := api.HTTPRoutes("default").Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Parents) != 2 || got.Status.Parents[0].ControllerName != "example.com/other" ||
		got.Status.Parents[1].ControllerName != translator.ControllerName {
		t.Errorf("route parents %+v, want the other controller's then Strait's", got.Status.Parents)
	}
	gateway, err := api.Gateways("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gateway.Status.Addresses) == 0 || len(gateway.Status.Listeners) != 1 {
		t.Errorf("Gateway status %+v, want addresses and one listener", gateway.Status)
	}

	u, err := policies.Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var written straitv1alpha1.BackendTrafficPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &written); err != nil {
		t.Fatal(err)
	}
	if a := written.Status.Ancestors; len(a) != 1 || a[0].ControllerName != translator.ControllerName ||
		!apimeta.IsStatusConditionTrue(a[0].Conditions, string(gwapiv1.PolicyConditionAccepted)) {
		t.Errorf("BackendTrafficPolicy status %+v, want Strait's ancestor Accepted", written.Status)
	}

	for name, want := range map[string]struct {
		status metav1.ConditionStatus
		reason mcsv1alpha1.ServiceExportConditionReason
	}{"echo": {metav1.ConditionTrue, mcsv1alpha1.ServiceExportReasonValid}, "missing": {metav1.ConditionFalse, mcsv1alpha1.ServiceExportReasonNoService}} {
		se, err := mcs.MulticlusterV1alpha1().ServiceExports("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		valid := apimeta.FindStatusCondition(se.Status.Conditions, string(mcsv1alpha1.ServiceExportConditionValid))
		if valid == nil || valid.Status != want.status || valid.Reason != string(want.reason) ||
			valid.ObservedGeneration != se.Generation || valid.LastTransitionTime.IsZero() {
			t.Errorf("ServiceExport %s: Valid %+v, want %s %s for generation %d with a transition time", name, valid, want.status, want.reason, se.Generation)
		}
	}

	// The status writes change the objects' resourceVersions but not what the translator
	// sees: a second pass writes nothing.
	pass()
	if n := count(resultWritten); n != objects {
		t.Errorf("a second pass wrote %v more statuses: what Strait writes does not read back equal", n-objects)
	}
}

// readInput reads one cluster's resources the translator uses here.
func readInput(t *testing.T, kube kubernetes.Interface, gw gwclient.Interface, mcs mcsclient.Interface, dyn dynamic.Interface) *translator.Input {
	t.Helper()
	ctx := t.Context()
	res := &translator.ClusterResources{Cluster: translator.Cluster{Name: "us"}}
	classes, err := gw.GatewayV1().GatewayClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range classes.Items {
		res.GatewayClasses = append(res.GatewayClasses, &classes.Items[i])
	}
	gateways, err := gw.GatewayV1().Gateways("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range gateways.Items {
		res.Gateways = append(res.Gateways, &gateways.Items[i])
	}
	routes, err := gw.GatewayV1().HTTPRoutes("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range routes.Items {
		res.HTTPRoutes = append(res.HTTPRoutes, &routes.Items[i])
	}
	svcs, err := kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range svcs.Items {
		res.Services = append(res.Services, &svcs.Items[i])
	}
	exports, err := mcs.MulticlusterV1alpha1().ServiceExports("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range exports.Items {
		res.ServiceExports = append(res.ServiceExports, &exports.Items[i])
	}
	policies, err := dyn.Resource(straitv1alpha1.BackendTrafficPolicies).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range policies.Items {
		p := &straitv1alpha1.BackendTrafficPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
			t.Fatal(err)
		}
		res.BackendTrafficPolicies = append(res.BackendTrafficPolicies, p)
	}
	return &translator.Input{Clusters: []*translator.ClusterResources{res}, BindAddress: "127.0.0.1"}
}
