package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/provider/kubernetes"
	"github.com/strait-gw/strait/provider/kubernetes/kubetest"
	"github.com/strait-gw/strait/translator"
)

func TestMain(m *testing.M) {
	kubetest.DisableWatchList()
	os.Exit(m.Run())
}

func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKubeSetup checks how the config file and the flags combine into clusters.
func TestKubeSetup(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"us", "eu", "eu2", "ap"} {
		writeKubeconfig(t, filepath.Join(dir, name+".kubeconfig"), "https://"+name+".test")
	}
	config := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(config, []byte(`apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- {name: us, region: us-east, kubeconfig: us.kubeconfig}
- {name: eu, region: eu-west, network: b, kubeconfig: eu.kubeconfig}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := file.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	f := kubeFlags{namespace: "strait-system", leaderElect: true, addressPool: "127.0.20.7/24",
		kubeconfigs: []string{"eu=" + filepath.Join(dir, "eu2.kubeconfig"), "ap=" + filepath.Join(dir, "ap.kubeconfig")}}
	s, err := f.setup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type cluster struct {
		Cluster translator.Cluster
		Host    string
	}
	var got []cluster
	for _, c := range s.provider.Clusters {
		got = append(got, cluster{c.Cluster, c.Config.Host})
	}
	want := []cluster{
		{translator.Cluster{Name: "us", Region: "us-east"}, "https://us.test"},
		// The flag overrides the entry's kubeconfig; the entry still gives the metadata.
		{translator.Cluster{Name: "eu", Region: "eu-west", Network: "b"}, "https://eu2.test"},
		{translator.Cluster{Name: "ap"}, "https://ap.test"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if s.leaseConfig == nil || s.leaseConfig.Host != "https://us.test" || s.leaseNamespace != "strait-system" {
		t.Errorf("lease in %v, namespace %q; want the first cluster's, strait-system", s.leaseConfig, s.leaseNamespace)
	}
	if s.provider.BindAddress != "127.0.0.1" {
		t.Errorf("bind address %q, want the config file's", s.provider.BindAddress)
	}
	if s.provider.AddressPool != netip.MustParsePrefix("127.0.20.0/24") {
		t.Errorf("address pool %s, want 127.0.20.0/24 (masked)", s.provider.AddressPool)
	}

	for _, tt := range []struct {
		flags kubeFlags
		want  string
	}{
		{kubeFlags{kubeconfigs: []string{"us"}}, `--kubeconfig "us": want NAME=PATH`},
		{kubeFlags{kubeconfigs: []string{"US=x"}}, `--kubeconfig "US=x": cluster name`},
		{kubeFlags{kubeconfigs: []string{"us=" + filepath.Join(dir, "missing")}}, "cluster us: kubeconfig"},
		{kubeFlags{homeKubeconfig: filepath.Join(dir, "us.kubeconfig"), inCluster: true}, "give one"},
		{kubeFlags{kubeconfigs: []string{"us=" + filepath.Join(dir, "us.kubeconfig")}, addressPool: "127.0.20.1"}, "--address-pool"},
	} {
		if _, err := tt.flags.setup(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("flags %+v: error %v, want one containing %q", tt.flags, err, tt.want)
		}
	}
}

// TestControllerServesKubernetes runs `strait controller --kubeconfig` against a fake
// cluster: it leads (the Lease is in that cluster), translates the cluster's objects and
// becomes ready.
func TestControllerServesKubernetes(t *testing.T) {
	dir := t.TempDir()
	writeKubeconfig(t, filepath.Join(dir, "us.kubeconfig"), "https://us.test")
	port, ready := int32(8080), true
	svcPort := gwapiv1.PortNumber(80)
	us := kubetest.NewCluster(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "strait-system"}},
		&gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "strait"}, Spec: gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName}},
		&gwapiv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: gwapiv1.GatewaySpec{
			GatewayClassName: "strait", Listeners: []gwapiv1.Listener{{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 8080}}}},
		&gwapiv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}, Spec: gwapiv1.HTTPRouteSpec{
			CommonRouteSpec: gwapiv1.CommonRouteSpec{ParentRefs: []gwapiv1.ParentReference{{Name: "web"}}},
			Rules: []gwapiv1.HTTPRouteRule{{BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{
				BackendObjectReference: gwapiv1.BackendObjectReference{Name: "app", Port: &svcPort}}}}}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "app"}}, AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
			Ports:     []discoveryv1.EndpointPort{{Port: &port}}},
	)
	newKubeClients = func(cfg *rest.Config) (*kubernetes.Clients, error) {
		if cfg.Host != "https://us.test" {
			return nil, fmt.Errorf("unknown cluster %s", cfg.Host)
		}
		return &kubernetes.Clients{Kube: us.Kube, Gateway: us.Gateway, MCS: us.MCS, Dynamic: us.Dynamic}, nil
	}
	kubeProbe = func(context.Context, *kubernetes.Clients) error { return nil }
	t.Cleanup(func() { newKubeClients, kubeProbe = kubernetes.NewClients, nil })

	xdsAddr, adminAddr := freePort(t), freePort(t)
	ctx := startCommand(t, "controller", "--kubeconfig", "us="+filepath.Join(dir, "us.kubeconfig"), "--xds", xdsAddr, "--admin", adminAddr)

	waitFor(t, func() bool { return httpStatus("http://"+adminAddr+"/readyz") == http.StatusOK })
	if cfg := httpBody(t, "http://"+adminAddr+"/debug/config"); !strings.Contains(cfg, "us/default/web") || !strings.Contains(cfg, "10.0.0.1") {
		t.Errorf("/debug/config lacks the Gateway's proxy or its endpoint: %.300s", cfg)
	}
	waitFor(t, func() bool {
		body := httpBody(t, "http://"+adminAddr+"/metrics")
		return strings.Contains(body, "strait_controller_leader 1") && strings.Contains(body, `strait_cluster_stale{cluster="us"} 0`)
	})
	lease, err := us.Kube.CoordinationV1().Leases("strait-system").Get(ctx, kubernetes.LeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("Lease %v, %v: want one held", lease, err)
	}
}
