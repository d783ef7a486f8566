package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

const homeNamespace = "strait-system"

// fakeHome is a home cluster with ClusterLinks.
type fakeHome struct {
	kube    *kubefake.Clientset
	dynamic *dynamicfake.FakeDynamicClient
}

func newFakeHome() *fakeHome {
	// An empty scheme: the fake keeps ClusterLinks unstructured, as a real server's are.
	return &fakeHome{
		kube: kubefake.NewClientset(),
		dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{ClusterLinkResource: "ClusterLinkList"}),
	}
}

func (h *fakeHome) home() *Home {
	return &Home{Kube: h.kube, Dynamic: h.dynamic, Namespace: homeNamespace}
}

func kubeconfig(host string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, host)
}

// link creates or updates a ClusterLink and its kubeconfig Secret pointing at host.
func (h *fakeHome) link(t *testing.T, name, region, host string) {
	t.Helper()
	ctx := context.Background()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: homeNamespace, Name: name + "-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": kubeconfig(host)}}
	if _, err := h.kube.CoreV1().Secrets(homeNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		if _, err := h.kube.CoreV1().Secrets(homeNamespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	l := &straitv1alpha1.ClusterLink{
		TypeMeta:   metav1.TypeMeta{APIVersion: straitv1alpha1.SchemeGroupVersion.String(), Kind: straitv1alpha1.ClusterLinkKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: homeNamespace, Name: name},
		Spec: straitv1alpha1.ClusterLinkSpec{Region: region,
			KubeconfigSecretRef: straitv1alpha1.SecretKeyReference{Name: name + "-kubeconfig"}},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(l)
	if err != nil {
		t.Fatal(err)
	}
	res := h.dynamic.Resource(ClusterLinkResource).Namespace(homeNamespace)
	u, err := res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if _, err := res.Create(ctx, toUnstructured(obj), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	u.Object["spec"] = obj["spec"]
	if _, err := res.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ready returns the Ready condition of a ClusterLink, or nil.
func (h *fakeHome) ready(t *testing.T, name string) *metav1.Condition {
	t.Helper()
	u, err := h.dynamic.Resource(ClusterLinkResource).Namespace(homeNamespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := toClusterLink(u)
	if err != nil {
		t.Fatal(err)
	}
	return apimeta.FindStatusCondition(l.Status.Conditions, straitv1alpha1.ClusterLinkConditionReady)
}

func hasReady(c *metav1.Condition, status metav1.ConditionStatus, reason string) bool {
	return c != nil && c.Status == status && c.Reason == reason
}

func clusterNames(in *translator.Input) []string {
	var out []string
	for _, c := range in.Clusters {
		out = append(out, c.Cluster.Name)
	}
	return out
}

// TestClusterLinks adds, changes, rotates and removes ClusterLinks at run time.
func TestClusterLinks(t *testing.T) {
	home := newFakeHome()
	fakes := &fakeClusters{}
	us, eu, euRotated := newFakeCluster(service("default", "us-svc")), newFakeCluster(service("default", "eu-svc")),
		newFakeCluster(service("default", "eu-svc-rotated"))
	fakes.add("https://us", us)
	fakes.add("https://eu", eu)
	fakes.add("https://eu-rotated", euRotated)
	opts := testOptions(t)
	opts.NewClients = fakes.newClients
	opts.Home = home.home()
	home.link(t, "us", "us-east", "https://us")
	p := New(opts)
	ch := start(t, p)
	waitInput(t, ch, "the us link", func(in *translator.Input) bool { return slices.Equal(clusterNames(in), []string{"us"}) })
	eventually(t, "us Ready", func() bool {
		return hasReady(home.ready(t, "us"), metav1.ConditionTrue, straitv1alpha1.ClusterLinkReasonSynced)
	})

	// Added.
	home.link(t, "eu", "eu-west", "https://eu")
	in := waitInput(t, ch, "the eu link", func(in *translator.Input) bool { return slices.Equal(clusterNames(in), []string{"eu", "us"}) })
	if res := cluster(in, "eu"); res.Cluster.Region != "eu-west" || !slices.Equal(names(res.Services), []string{"default/eu-svc"}) {
		t.Errorf("eu: %+v, services %v", res.Cluster, names(res.Services))
	}

	// Metadata changed: republished, same informers.
	home.link(t, "eu", "eu-central", "https://eu")
	waitInput(t, ch, "the eu region change", func(in *translator.Input) bool {
		res := cluster(in, "eu")
		return res != nil && res.Cluster.Region == "eu-central"
	})

	// Credentials rotated: rebuilt against the new API server.
	home.link(t, "eu", "eu-central", "https://eu-rotated")
	waitInput(t, ch, "eu rebuilt", func(in *translator.Input) bool {
		res := cluster(in, "eu")
		return res != nil && slices.Equal(names(res.Services), []string{"default/eu-svc-rotated"})
	})
	eventually(t, "the registry to hold eu's new clients", func() bool {
		m, ok := p.Registry().Get("eu")
		return ok && m.Clients.Kube == euRotated.Kube
	})

	// A broken Secret keeps the cluster it had, and says so.
	ctx := context.Background()
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: homeNamespace, Name: "eu-kubeconfig"},
		Data: map[string][]byte{"kubeconfig": []byte("not: [a kubeconfig")}}
	if _, err := home.kube.CoreV1().Secrets(homeNamespace).Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu InvalidKubeconfig", func() bool {
		return hasReady(home.ready(t, "eu"), metav1.ConditionFalse, straitv1alpha1.ClusterLinkReasonInvalidKubeconfig)
	})
	if _, ok := p.Registry().Get("eu"); !ok {
		t.Error("eu dropped on a broken Secret")
	}

	// Removed.
	if err := home.dynamic.Resource(ClusterLinkResource).Namespace(homeNamespace).Delete(ctx, "eu", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "eu removed", func(in *translator.Input) bool { return slices.Equal(clusterNames(in), []string{"us"}) })
	eventually(t, "eu out of the registry", func() bool { return slices.Equal(p.Registry().Names(), []string{"us"}) })
}

// TestStaleCluster makes a cluster's API server unreachable: it is marked stale (metric and
// ClusterLink condition), its last known resources stay in the Input while the other
// cluster's changes go on, and it recovers.
func TestStaleCluster(t *testing.T) {
	home := newFakeHome()
	fakes := &fakeClusters{}
	us, eu := newFakeCluster(service("default", "us-svc")), newFakeCluster(service("default", "eu-svc"))
	fakes.add("https://us", us)
	fakes.add("https://eu", eu)
	pr := &probe{}
	opts := testOptions(t)
	opts.NewClients = fakes.newClients
	opts.Home = home.home()
	opts.Probe = pr.check
	home.link(t, "us", "us-east", "https://us")
	home.link(t, "eu", "eu-west", "https://eu")
	p := New(opts)
	ch := start(t, p)
	waitInput(t, ch, "both links", func(in *translator.Input) bool { return len(in.Clusters) == 2 })
	us.waitWatching(t)
	eventually(t, "eu Ready", func() bool {
		return hasReady(home.ready(t, "eu"), metav1.ConditionTrue, straitv1alpha1.ClusterLinkReasonSynced)
	})

	pr.set(eu, true)
	eventually(t, "eu stale", func() bool { return gauge(t, p, "eu") == 1 })
	eventually(t, "eu Unreachable", func() bool {
		return hasReady(home.ready(t, "eu"), metav1.ConditionFalse, straitv1alpha1.ClusterLinkReasonUnreachable)
	})
	if gauge(t, p, "us") != 0 {
		t.Error("us marked stale")
	}
	// The other cluster goes on; eu keeps its last known resources.
	if _, err := us.Kube.CoreV1().Services("default").Create(context.Background(), service("default", "us-new"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	in := waitInput(t, ch, "the us change", func(in *translator.Input) bool { return len(cluster(in, "us").Services) == 2 })
	if got := names(cluster(in, "eu").Services); !slices.Equal(got, []string{"default/eu-svc"}) {
		t.Errorf("stale eu services %v, want its last known default/eu-svc", got)
	}

	pr.set(eu, false)
	eventually(t, "eu fresh", func() bool { return gauge(t, p, "eu") == 0 })
	eventually(t, "eu Ready again", func() bool {
		return hasReady(home.ready(t, "eu"), metav1.ConditionTrue, straitv1alpha1.ClusterLinkReasonSynced)
	})
}
