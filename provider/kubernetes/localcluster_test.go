// This test runs against real API servers started by e2e/localcluster.

package kubernetes

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/e2e/localcluster"
	"github.com/strait-gw/strait/provider/kubernetes/kubetest"
	"github.com/strait-gw/strait/translator"
)

// TestLocalCluster watches two real clusters with the member ClusterRole's least privilege:
// us given up front, eu by a ClusterLink in us. eu's API server is then stopped (eu goes
// stale, keeps its resources, its ClusterLink says Unreachable) and started again (eu
// resyncs and is Ready).
func TestLocalCluster(t *testing.T) {
	fleet := localcluster.StartForTest(t, localcluster.Options{Clusters: []string{"us", "eu"}})
	us, eu := fleet.Cluster("us"), fleet.Cluster("eu")
	ctx := t.Context()
	memberConfig := map[string]*rest.Config{}
	for _, c := range []*localcluster.Cluster{us, eu} {
		kubetest.ApplyMemberRBAC(t, c.Config)
		cfg, err := c.ClientConfig(kubetest.MemberUser)
		if err != nil {
			t.Fatal(err)
		}
		memberConfig[c.Name] = cfg
		kube := k8s.NewForConfigOrDie(c.Config)
		if _, err := kube.CoreV1().Services("default").Create(ctx, newService(c.Name+"-svc"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	checkSharedReports(t, memberConfig["us"])
	export := &mcsv1alpha1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "eu-svc"}}
	if _, err := mcsclient.NewForConfigOrDie(eu.Config).MulticlusterV1alpha1().ServiceExports("default").Create(ctx, export, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The ClusterLink of eu, in us, with a least-privilege kubeconfig.
	kubeconfigPath := filepath.Join(t.TempDir(), "eu.kubeconfig")
	if err := eu.WriteKubeconfig(kubeconfigPath, memberConfig["eu"]); err != nil {
		t.Fatal(err)
	}
	kubeconfigData, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	homeKube := k8s.NewForConfigOrDie(us.Config)
	homeDynamic := dynamic.NewForConfigOrDie(us.Config)
	if _, err := homeKube.CoreV1().Secrets(homeNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: homeNamespace, Name: "eu-kubeconfig"},
		Data:       map[string][]byte{"kubeconfig": kubeconfigData}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	link := &straitv1alpha1.ClusterLink{
		TypeMeta:   metav1.TypeMeta{APIVersion: straitv1alpha1.SchemeGroupVersion.String(), Kind: straitv1alpha1.ClusterLinkKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: homeNamespace, Name: "eu"},
		Spec: straitv1alpha1.ClusterLinkSpec{Region: "eu-west",
			KubeconfigSecretRef: straitv1alpha1.SecretKeyReference{Name: "eu-kubeconfig"}},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(link)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := homeDynamic.Resource(ClusterLinkResource).Namespace(homeNamespace).Create(ctx, toUnstructured(obj), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := New(Options{
		Clusters:      []ClusterSpec{{Cluster: translator.Cluster{Name: "us", Region: "us-east"}, Config: memberConfig["us"]}},
		Home:          &Home{Kube: homeKube, Dynamic: homeDynamic, Namespace: homeNamespace},
		ProbeInterval: 200 * time.Millisecond,
		ProbeTimeout:  time.Second,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	ch := start(t, p)
	in := waitInput(t, ch, "both clusters", func(in *translator.Input) bool { return slices.Equal(clusterNames(in), []string{"eu", "us"}) })
	if got := names(cluster(in, "eu").ServiceExports); !slices.Equal(got, []string{"default/eu-svc"}) {
		t.Errorf("eu exports %v: the member role does not let Strait read ServiceExports?", got)
	}
	linkReady := func(status metav1.ConditionStatus, reason string) func() bool {
		return func() bool {
			u, err := homeDynamic.Resource(ClusterLinkResource).Namespace(homeNamespace).Get(ctx, "eu", metav1.GetOptions{})
			if err != nil {
				return false
			}
			l, err := toClusterLink(u)
			return err == nil && hasReady(apimeta.FindStatusCondition(l.Status.Conditions, straitv1alpha1.ClusterLinkConditionReady), status, reason)
		}
	}
	eventually(t, "eu Ready", linkReady(metav1.ConditionTrue, straitv1alpha1.ClusterLinkReasonSynced))

	eu.StopAPIServer()
	eventually(t, "eu stale", func() bool { return gauge(t, p, "eu") == 1 })
	eventually(t, "eu Unreachable", linkReady(metav1.ConditionFalse, straitv1alpha1.ClusterLinkReasonUnreachable))
	if _, err := k8s.NewForConfigOrDie(us.Config).CoreV1().Services("default").Create(ctx, newService("us-new"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	in = waitInput(t, ch, "the us change while eu is down", func(in *translator.Input) bool { return len(cluster(in, "us").Services) >= 3 })
	if got := names(cluster(in, "eu").Services); !slices.Contains(got, "default/eu-svc") {
		t.Errorf("stale eu services %v, want its last known default/eu-svc", got)
	}

	if err := eu.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "eu fresh", func() bool { return gauge(t, p, "eu") == 0 })
	eventually(t, "eu Ready again", linkReady(metav1.ConditionTrue, straitv1alpha1.ClusterLinkReasonSynced))
	if _, err := k8s.NewForConfigOrDie(eu.Config).CoreV1().Services("default").Create(ctx, newService("eu-new"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitInput(t, ch, "eu's change after its return", func(in *translator.Input) bool {
		return slices.Contains(names(cluster(in, "eu").Services), "default/eu-new")
	})
}

// newService is a Service in default to create on a real API server.
func newService(name string) *corev1.Service {
	s := service("default", name)
	s.ResourceVersion = ""
	return s
}

// checkSharedReports runs two replicas' SharedReports with the member role's credentials
// (its Role for the Leases in strait-system): each counts the other's proxy, and a replica
// that stops deletes its Lease.
func checkSharedReports(t *testing.T, cfg *rest.Config) {
	t.Helper()
	kube := k8s.NewForConfigOrDie(cfg)
	const node = "us/default/web"
	var stops []func()
	replicas := map[string]*SharedReports{}
	for _, id := range []string{"a", "b"} {
		local := newFakeLocal()
		local.set(node, translator.ProxyReport{Proxies: 1, Current: 1})
		s := NewSharedReports(kube, local, SharedReportsOptions{Namespace: homeNamespace, Identity: id, Period: 200 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Start(ctx) }()
		stops = append(stops, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("shared reports %s: %v", id, err)
			}
		})
		replicas[id] = s
	}
	for id, s := range replicas {
		eventually(t, id+" to count both replicas' proxies", func() bool { return s.ProxyReport(node).Proxies == 2 })
	}
	for _, stop := range stops {
		stop()
	}
	leases, err := kube.CoordinationV1().Leases(homeNamespace).List(t.Context(), metav1.ListOptions{LabelSelector: proxyReportsLabel + "=true"})
	if err != nil || len(leases.Items) != 0 {
		t.Errorf("proxy report Leases after both replicas stopped: %d (error %v), want none", len(leases.Items), err)
	}
}
