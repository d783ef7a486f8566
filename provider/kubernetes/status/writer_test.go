package status

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// testWriter returns a writer on one cluster "us" holding objs, and the fake clientset.
func testWriter(t *testing.T, isLeader func() bool, objs ...metav1.Object) (*Writer, *gwfake.Clientset) {
	t.Helper()
	w, gw, _ := testWriterOf(t, isLeader, nil, objs...)
	return w, gw
}

// testWriterOf returns a writer on one cluster "us" holding the Gateway API objects objs and
// Strait's objects strait, with its fake clients.
func testWriterOf(t *testing.T, isLeader func() bool, strait []runtime.Object, objs ...metav1.Object) (*Writer, *gwfake.Clientset, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := straitv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dyn := dynamicfake.NewSimpleDynamicClient(scheme, strait...)
	// NewClientset's field-managed tracker has no schema for Gateways and refuses them.
	gw := gwfake.NewSimpleClientset()
	// Added with their resource spelled out: the fake clientset guesses it from the scheme,
	// where Gateway API's v1beta1 aliases make it pick another version for some kinds.
	for _, o := range objs {
		resource := map[string]string{
			"*v1.GatewayClass": "gatewayclasses", "*v1.Gateway": "gateways", "*v1.HTTPRoute": "httproutes",
		}[fmt.Sprintf("%T", o)]
		if err := gw.Tracker().Create(gatewayResource(resource), o.(runtime.Object), o.GetNamespace()); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(Options{
		Clients: func(cluster string) (Client, bool) {
			return Client{Gateway: gw, Dynamic: dyn}, cluster == "us"
		},
		IsLeader: isLeader,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.queue.ShutDown)
	return w, gw, dyn
}

// gatewayResource names a Gateway API v1 resource for the fake clientset's tracker.
func gatewayResource(resource string) schema.GroupVersionResource {
	return schema.GroupVersion(gwapiv1.GroupVersion).WithResource(resource)
}

// drain processes every queued write, synchronously.
func drain(t *testing.T, w *Writer) {
	t.Helper()
	for w.queue.Len() > 0 {
		w.queue.ProcessNext(t.Context())
	}
}

// statusWrites counts the status updates the fake clientset received.
func statusWrites(cs *gwfake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func route(parents ...gwapiv1.RouteParentStatus) *gwapiv1.HTTPRoute {
	return &gwapiv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", Generation: 3},
		Status:     gwapiv1.HTTPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}},
	}
}

func parent(controller, gateway string, conds ...metav1.Condition) gwapiv1.RouteParentStatus {
	ns := gwapiv1.Namespace("default")
	return gwapiv1.RouteParentStatus{
		ParentRef:      gwapiv1.ParentReference{Namespace: &ns, Name: gwapiv1.ObjectName(gateway)},
		ControllerName: gwapiv1.GatewayController(controller),
		Conditions:     conds,
	}
}

func cond(condType string, ok bool, msg string) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: condType, Status: status, Reason: condType, Message: msg, ObservedGeneration: 3}
}

func routeStatus(parents ...gwapiv1.RouteParentStatus) []translator.Status {
	return []translator.Status{{Cluster: "us", Kind: "HTTPRoute", Namespace: "default", Name: "app",
		Status: &gwapiv1.HTTPRouteStatus{RouteStatus: gwapiv1.RouteStatus{Parents: parents}}}}
}

func getRoute(t *testing.T, cs *gwfake.Clientset) *gwapiv1.HTTPRoute {
	t.Helper()
	r, err := cs.GatewayV1().HTTPRoutes("default").Get(t.Context(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const other = "example.com/other-controller"

func TestWriteOnlyOnChange(t *testing.T) {
	w, cs := testWriter(t, nil, route())
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	drain(t, w)
	if n := statusWrites(cs); n != 1 {
		t.Fatalf("first status: %d writes, want 1", n)
	}

	// The same translation again queues nothing; a resync reads the object and writes nothing.
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	if w.queue.Len() != 0 {
		t.Errorf("an unchanged status was queued")
	}
	w.Resync()
	drain(t, w)
	if n := statusWrites(cs); n != 1 {
		t.Errorf("unchanged status: %d writes in all, want 1", n)
	}
	if got := testutil.ToFloat64(w.metrics.writes.WithLabelValues("HTTPRoute", resultUnchanged)); got != 1 {
		t.Errorf("unchanged writes metric = %v, want 1", got)
	}

	// A real change is written once.
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", false, "no"))))
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", false, "not at all"))))
	drain(t, w)
	if n := statusWrites(cs); n != 2 {
		t.Errorf("after a burst of two changes: %d writes in all, want 2 (the burst coalesces)", n)
	}
	if got := getRoute(t, cs).Status.Parents[0].Conditions[0].Message; got != "not at all" {
		t.Errorf("written message %q, want the newest", got)
	}
}

// TestRecreatedObjectWritten checks that an object deleted and created again under the same
// name gets its status even when it equals the old object's: the two translations see the
// same status, but not the same UID.
func TestRecreatedObjectWritten(t *testing.T) {
	w, cs := testWriter(t, nil, route())
	first := routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok")))
	first[0].UID = "old"
	w.Update(first)
	drain(t, w)

	// Recreated: the new object has no status yet.
	if err := cs.Tracker().Delete(gatewayResource("httproutes"), "default", "app"); err != nil {
		t.Fatal(err)
	}
	fresh := route()
	fresh.UID = "new"
	if err := cs.Tracker().Create(gatewayResource("httproutes"), fresh, "default"); err != nil {
		t.Fatal(err)
	}
	second := routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok")))
	second[0].UID = "new"
	w.Update(second)
	drain(t, w)
	if got := getRoute(t, cs).Status.Parents; len(got) != 1 || got[0].ControllerName != translator.ControllerName {
		t.Errorf("recreated route's parents %+v, want Strait's entry written again", got)
	}
}

func TestOtherControllersEntriesKept(t *testing.T) {
	theirs := parent(other, "their-gw", cond("Accepted", true, "theirs"))
	theirs.Conditions[0].LastTransitionTime = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w, cs := testWriter(t, nil, route(theirs, parent(translator.ControllerName, "old-gw", cond("Accepted", true, "stale"))))

	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	drain(t, w)
	parents := getRoute(t, cs).Status.Parents
	if len(parents) != 2 {
		t.Fatalf("parents %+v, want the other controller's and Strait's new one", parents)
	}
	if !equalParent(parents[0], theirs) {
		t.Errorf("other controller's entry changed: %+v, want %+v", parents[0], theirs)
	}
	if parents[1].ParentRef.Name != "web" || parents[1].ControllerName != translator.ControllerName {
		t.Errorf("Strait's entry %+v, want parent web (the stale old-gw entry replaced)", parents[1])
	}
	if g := parents[1].ParentRef.Group; g == nil || *g != gwapiv1.GroupName {
		t.Errorf("Strait's parentRef group %v, want the API default %s written out", g, gwapiv1.GroupName)
	}

	// The route no longer has a Strait parent: Strait's entry goes, the other stays.
	w.Update(nil)
	drain(t, w)
	parents = getRoute(t, cs).Status.Parents
	if len(parents) != 1 || !equalParent(parents[0], theirs) {
		t.Errorf("after the route left Strait: parents %+v, want only the other controller's", parents)
	}
	if _, ok := w.wanted[Key{"us", "HTTPRoute", "default", "app"}]; ok {
		t.Errorf("the removal is still remembered after it was written")
	}
}

func equalParent(a, b gwapiv1.RouteParentStatus) bool {
	return statusEqual(&a, &b)
}

func TestLastTransitionTime(t *testing.T) {
	w, cs := testWriter(t, nil, route())
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"), cond("ResolvedRefs", true, "ok"))))
	drain(t, w)
	first := getRoute(t, cs).Status.Parents[0].Conditions
	for _, c := range first {
		if c.LastTransitionTime.IsZero() {
			t.Fatalf("condition %s written without lastTransitionTime", c.Type)
		}
	}
	// Set a known time in the past, as if written long ago.
	r := getRoute(t, cs)
	past := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range r.Status.Parents[0].Conditions {
		r.Status.Parents[0].Conditions[i].LastTransitionTime = past
	}
	if _, err := cs.GatewayV1().HTTPRoutes("default").UpdateStatus(t.Context(), r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Accepted keeps its status (only the message changes); ResolvedRefs turns False.
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "still ok"), cond("ResolvedRefs", false, "broken"))))
	drain(t, w)
	conds := getRoute(t, cs).Status.Parents[0].Conditions
	if !conds[0].LastTransitionTime.Equal(&past) {
		t.Errorf("Accepted did not change status but its lastTransitionTime moved to %v", conds[0].LastTransitionTime)
	}
	if conds[1].LastTransitionTime.Equal(&past) {
		t.Errorf("ResolvedRefs changed status but kept its old lastTransitionTime")
	}
	if conds[0].ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d, want 3", conds[0].ObservedGeneration)
	}
}

func TestConflictRetriedWithFreshRead(t *testing.T) {
	w, cs := testWriter(t, nil, route())
	conflicts := 1
	cs.PrependReactor("update", "httproutes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" || conflicts == 0 {
			return false, nil, nil
		}
		conflicts--
		// Another writer got there first: it added its own parent entry.
		r := getRouteFromTracker(t, cs)
		r.Status.Parents = append(r.Status.Parents, parent(other, "their-gw", cond("Accepted", true, "theirs")))
		if err := cs.Tracker().Update(gatewayResource("httproutes"), r, "default"); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: gwapiv1.GroupName, Resource: "httproutes"}, "app", nil)
	})
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	drain(t, w)

	gets := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" {
			gets++
		}
	}
	if gets != 2 {
		t.Errorf("%d reads, want 2: the conflict is retried with a fresh read", gets)
	}
	parents := getRoute(t, cs).Status.Parents
	if len(parents) != 2 || parents[0].ControllerName != other || parents[1].ControllerName != translator.ControllerName {
		t.Errorf("parents %+v, want the other writer's entry kept and Strait's added", parents)
	}
	if got := testutil.ToFloat64(w.metrics.writes.WithLabelValues("HTTPRoute", resultConflict)); got != 1 {
		t.Errorf("conflict metric = %v, want 1", got)
	}
}

func getRouteFromTracker(t *testing.T, cs *gwfake.Clientset) *gwapiv1.HTTPRoute {
	t.Helper()
	obj, err := cs.Tracker().Get(gatewayResource("httproutes"), "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*gwapiv1.HTTPRoute).DeepCopy()
}

func TestNotLeaderWritesNothing(t *testing.T) {
	leader := false
	w, cs := testWriter(t, func() bool { return leader }, route())
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	drain(t, w)
	if len(cs.Actions()) != 0 {
		t.Fatalf("a follower called the API server: %v", cs.Actions())
	}
	leader = true
	w.Resync()
	drain(t, w)
	if n := statusWrites(cs); n != 1 {
		t.Errorf("after becoming leader: %d writes, want 1", n)
	}
}

func TestDeletedObjectDropped(t *testing.T) {
	w, cs := testWriter(t, nil)
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	drain(t, w)
	if n := statusWrites(cs); n != 0 {
		t.Errorf("%d writes to an object that does not exist", n)
	}
	if w.queue.NumRequeues(Key{"us", "HTTPRoute", "default", "app"}) != 0 {
		t.Errorf("a deleted object's write is retried")
	}
	if got := testutil.ToFloat64(w.metrics.writes.WithLabelValues("HTTPRoute", resultGone)); got != 1 {
		t.Errorf("gone metric = %v, want 1", got)
	}
}

func TestGatewayClassOfAnotherController(t *testing.T) {
	theirs := &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gwapiv1.GatewayClassSpec{ControllerName: other}}
	ours := &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "strait", Generation: 1}, Spec: gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName}}
	w, cs := testWriter(t, nil, theirs, ours)
	st := func(name string) translator.Status {
		return translator.Status{Cluster: "us", Kind: "GatewayClass", Name: name,
			Status: &gwapiv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", true, "ok")}}}
	}
	w.Update([]translator.Status{st("theirs"), st("strait")})
	drain(t, w)
	got, err := cs.GatewayV1().GatewayClasses().Get(t.Context(), "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 {
		t.Errorf("another controller's GatewayClass got Strait's status: %+v", got.Status)
	}
	got, err = cs.GatewayV1().GatewayClasses().Get(t.Context(), "strait", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 1 {
		t.Errorf("Strait's GatewayClass status %+v, want Accepted", got.Status)
	}
}

func TestGatewayStatus(t *testing.T) {
	gw := &gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 2}}
	w, cs := testWriter(t, nil, gw)
	ip := gwapiv1.IPAddressType
	want := &gwapiv1.GatewayStatus{
		Addresses:  []gwapiv1.GatewayStatusAddress{{Type: &ip, Value: "10.0.0.1"}},
		Conditions: []metav1.Condition{cond("Programmed", true, "ok")},
		Listeners: []gwapiv1.ListenerStatus{{Name: "http", AttachedRoutes: 2, SupportedKinds: []gwapiv1.RouteGroupKind{{Kind: "HTTPRoute"}},
			Conditions: []metav1.Condition{cond("Accepted", true, "ok")}}},
	}
	w.Update([]translator.Status{{Cluster: "us", Kind: "Gateway", Namespace: "default", Name: "web", Status: want}})
	drain(t, w)
	got, err := cs.GatewayV1().Gateways("default").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Addresses) != 1 || got.Status.Addresses[0].Value != "10.0.0.1" {
		t.Errorf("addresses %+v, want 10.0.0.1", got.Status.Addresses)
	}
	if len(got.Status.Listeners) != 1 || got.Status.Listeners[0].AttachedRoutes != 2 || got.Status.Listeners[0].Conditions[0].LastTransitionTime.IsZero() {
		t.Errorf("listeners %+v, want http with 2 routes and a transition time", got.Status.Listeners)
	}
	w.Resync()
	drain(t, w)
	if n := statusWrites(cs); n != 1 {
		t.Errorf("%d writes after a resync of an unchanged Gateway, want 1", n)
	}
}

// TestStartStops checks the runner: it writes queued statuses and returns when its context ends.
func TestStartStops(t *testing.T) {
	w, cs := testWriter(t, nil, route())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	w.Update(routeStatus(parent(translator.ControllerName, "web", cond("Accepted", true, "ok"))))
	for statusWrites(cs) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v", err)
	}
}

// TestBackendTrafficPolicyStatus writes a BackendTrafficPolicy's status through the dynamic
// client: another controller's ancestor is kept, Strait's stale one is replaced, an unchanged
// status is not written again, and Strait's entries leave when the translator drops the
// policy.
func TestBackendTrafficPolicyStatus(t *testing.T) {
	svc := func(name string) gwapiv1.ParentReference {
		group, kind, ns := gwapiv1.Group(""), gwapiv1.Kind("Service"), gwapiv1.Namespace("default")
		return gwapiv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwapiv1.ObjectName(name)}
	}
	theirs := gwapiv1.PolicyAncestorStatus{AncestorRef: svc("echo"), ControllerName: other,
		Conditions: []metav1.Condition{cond("Accepted", true, "theirs")}}
	theirs.Conditions[0].LastTransitionTime = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	live := &straitv1alpha1.BackendTrafficPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: straitv1alpha1.SchemeGroupVersion.String(), Kind: straitv1alpha1.BackendTrafficPolicyKind},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Generation: 3},
		Status: gwapiv1.PolicyStatus{Ancestors: []gwapiv1.PolicyAncestorStatus{theirs,
			{AncestorRef: svc("old"), ControllerName: translator.ControllerName, Conditions: []metav1.Condition{cond("Accepted", true, "stale")}}}},
	}
	w, _, dyn := testWriterOf(t, nil, []runtime.Object{live})
	resource := straitv1alpha1.BackendTrafficPolicies
	get := func() *straitv1alpha1.BackendTrafficPolicy {
		t.Helper()
		u, err := dyn.Resource(resource).Namespace("default").Get(t.Context(), "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := &straitv1alpha1.BackendTrafficPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writes := func() int {
		n := 0
		for _, a := range dyn.Actions() {
			if a.GetVerb() == "update" && a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	want := []translator.Status{{Cluster: "us", Kind: straitv1alpha1.BackendTrafficPolicyKind, Namespace: "default", Name: "p",
		Status: &gwapiv1.PolicyStatus{Ancestors: []gwapiv1.PolicyAncestorStatus{{AncestorRef: svc("echo"),
			ControllerName: translator.ControllerName, Conditions: []metav1.Condition{cond("Accepted", true, "accepted")}}}}}}

	w.Update(want)
	drain(t, w)
	ancestors := get().Status.Ancestors
	if len(ancestors) != 2 || !statusEqual(&ancestors[0], &theirs) {
		t.Fatalf("ancestors %+v, want the other controller's unchanged, then Strait's", ancestors)
	}
	if a := ancestors[1]; a.ControllerName != translator.ControllerName || a.AncestorRef.Name != "echo" ||
		len(a.Conditions) != 1 || a.Conditions[0].Message != "accepted" || a.Conditions[0].LastTransitionTime.IsZero() {
		t.Errorf("Strait's ancestor %+v, want echo Accepted (the stale one replaced) with a transition time", a)
	}

	w.Resync()
	drain(t, w)
	if n := writes(); n != 1 {
		t.Errorf("%d status writes after a resync of the same status, want 1", n)
	}

	w.Update(nil)
	drain(t, w)
	if ancestors := get().Status.Ancestors; len(ancestors) != 1 || !statusEqual(&ancestors[0], &theirs) {
		t.Errorf("after the policy left the translation: ancestors %+v, want only the other controller's", ancestors)
	}
}
