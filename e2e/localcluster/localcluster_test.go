package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// TestTwoClusters starts two clusters and checks what e2e tests rely on, in one run
// because startup is the slow part.
func TestTwoClusters(t *testing.T) {
	t.Parallel()
	fleet := StartForTest(t, Options{Clusters: []string{"us", "eu"}})
	us, eu := fleet.Cluster("us"), fleet.Cluster("eu")
	if us == nil || eu == nil || us.Index != 0 || eu.Index != 1 {
		t.Fatalf("clusters: %+v", fleet.Clusters)
	}

	t.Run("independent", func(t *testing.T) {
		ctx := t.Context()
		usClient, euClient := clientset(t, us), clientset(t, eu)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-us"}, Data: map[string]string{"cluster": "us"}}
		if _, err := usClient.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := euClient.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("eu: get us's ConfigMap: got %v, want NotFound", err)
		}
		if us.PodCIDR == eu.PodCIDR || us.ServiceCIDR == eu.ServiceCIDR || us.URL == eu.URL {
			t.Errorf("clusters share a CIDR or URL: us %s %s %s, eu %s %s %s",
				us.PodCIDR, us.ServiceCIDR, us.URL, eu.PodCIDR, eu.ServiceCIDR, eu.URL)
		}
		// Each cluster has its own CA: us's credentials are no good in eu.
		cross := *us.Config
		cross.Host = eu.URL
		cross.CAData = eu.Config.CAData
		crossClient, err := kubernetes.NewForConfig(&cross)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crossClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Errorf("eu with us's client certificate: got %v, want Unauthorized", err)
		}
	})

	// A streaming list (what client-go's informers do by default) needs etcd's watch
	// progress requests: the reason hack/kube builds etcd 3.6 instead of using Debian's 3.4.23.
	t.Run("streaming list", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		client := clientset(t, eu)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "listed"}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		w, err := client.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{
			SendInitialEvents:    ptr.To(true),
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
			AllowWatchBookmarks:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		var listed bool
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added:
				listed = listed || ev.Object.(*corev1.ConfigMap).Name == cm.Name
			case watch.Bookmark:
				obj, _ := meta.Accessor(ev.Object)
				if obj.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
					if !listed {
						t.Errorf("initial events ended without ConfigMap %s", cm.Name)
					}
					return
				}
			default:
				t.Fatalf("streaming list: %s event %v", ev.Type, ev.Object)
			}
		}
		t.Fatalf("watch ended before the initial events did: %v", ctx.Err())
	})

	t.Run("crds", func(t *testing.T) {
		for _, c := range fleet.Clusters {
			checkCRDs(t, c, GatewayAPIStandard)
		}
	})

	t.Run("kubeconfig", func(t *testing.T) {
		for _, c := range fleet.Clusters {
			data, err := os.ReadFile(c.Kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "current-context: "+c.Name) || !strings.Contains(string(data), c.URL) {
				t.Errorf("%s: kubeconfig does not point at %s with context %s:\n%s", c.Name, c.URL, c.Name, data)
			}
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		issued, err := us.ClientConfig("reader")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "reader.kubeconfig")
		if err := us.WriteKubeconfig(path, issued); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("user without RBAC bindings listing secrets: got %v, want Forbidden (RBAC on)", err)
		}
		review, err := client.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := review.Status.UserInfo.Username; got != "reader" {
			t.Errorf("kubeconfig authenticates as %q, want reader", got)
		}
	})

	t.Run("controller manager", func(t *testing.T) { checkControllerManager(t, eu) })

	t.Run("apiserver kill and restart", func(t *testing.T) {
		ctx := t.Context()
		client := clientset(t, us)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives-restart"}, Data: map[string]string{"k": "v"}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		us.KillAPIServer()
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err == nil {
			t.Fatal("us answered with its kube-apiserver killed")
		}
		if _, err := clientset(t, eu).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Errorf("eu while us's kube-apiserver is down: %v", err)
		}
		if err := us.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := client.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		if got.Data["k"] != "v" {
			t.Errorf("after restart: data %v, want k=v", got.Data)
		}
		// The controller manager reconnects: a Deployment created now still gets pods.
		checkControllerManager(t, us)

		us.StopAPIServer()
		if err := us.StartAPIServer(ctx); err != nil {
			t.Fatalf("start after a graceful stop: %v", err)
		}
		checkCRDs(t, us, GatewayAPIStandard)
	})

	t.Run("stop leaves no process", func(t *testing.T) {
		var pids []int
		for _, c := range fleet.Clusters {
			for _, p := range []*process{c.etcd, c.apiserver, c.controllerManager} {
				if p.pid() == 0 {
					t.Errorf("%s %s is not running before Stop", c.Name, p.name)
				}
				pids = append(pids, p.pid())
			}
		}
		if err := fleet.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("pid %d still exists after Stop (kill -0: %v)", pid, err)
			}
		}
		if left := processesUsing(t, fleet.Dir); len(left) > 0 {
			t.Errorf("processes still using %s after Stop: %v", fleet.Dir, left)
		}
	})
}

// TestExperimentalChannelAndAddons starts one cluster with the experimental Gateway API
// CRDs and two addons, which must start once the cluster works and stop, in reverse order,
// on Stop.
func TestExperimentalChannelAndAddons(t *testing.T) {
	t.Parallel()
	var events []string
	addon := func(name string) Addon {
		return func(ctx context.Context, c *Cluster) (func() error, error) {
			// The cluster is ready: the addon can use it right away.
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "addon-" + name}}
			if _, err := clientset(t, c).CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				return nil, err
			}
			events = append(events, "start "+name+" in "+c.Name)
			return func() error {
				events = append(events, "stop "+name)
				return nil
			}, nil
		}
	}
	fleet := StartForTest(t, Options{
		Clusters:          []string{"ap"},
		GatewayAPIChannel: GatewayAPIExperimental,
		Addons:            []Addon{addon("a"), addon("b")},
	})
	checkCRDs(t, fleet.Cluster("ap"), GatewayAPIExperimental)
	if err := fleet.Stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a in ap", "start b in ap", "stop b", "stop a"}
	if !slices.Equal(events, want) {
		t.Errorf("addon events %q, want %q", events, want)
	}
}

// TestStartupFailureNamesLog checks that a component that fails to start fails Start with
// the tail of its log, and that what did start is stopped.
func TestStartupFailureNamesLog(t *testing.T) {
	t.Parallel()
	bins, err := FindBinaries(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	for _, b := range []string{bins.Etcd, bins.KubeControllerManager} {
		if err := os.Symlink(b, filepath.Join(binDir, filepath.Base(b))); err != nil {
			t.Fatal(err)
		}
	}
	broken := "#!/bin/sh\necho 'cannot serve: the test broke me' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(binDir, "kube-apiserver"), []byte(broken), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	fleet, err := Start(ctx, Options{Clusters: []string{"us"}, Dir: dir, BinDir: binDir})
	if err == nil {
		_ = fleet.Stop()
		t.Fatal("Start succeeded with a broken kube-apiserver")
	}
	for _, want := range []string{"kube-apiserver exited", filepath.Join(dir, "us", "kube-apiserver.log"), "the test broke me"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if left := processesUsing(t, dir); len(left) > 0 {
		t.Errorf("processes left running after a failed Start: %v", left)
	}
}

// TestEmbeddedCRDsAreCurrent checks the copies in crds/ against their sources, so that a
// bump of sigs.k8s.io/gateway-api or a change to Strait's CRDs cannot be forgotten here.
func TestEmbeddedCRDsAreCurrent(t *testing.T) {
	_, gwapi := module(t, "sigs.k8s.io/gateway-api")
	modDir := filepath.Join(gwapi, "config", "crd")
	sources := map[string]string{
		"crds/gateway-api/standard":     filepath.Join(modDir, "standard"),
		"crds/gateway-api/experimental": filepath.Join(modDir, "experimental"),
		"crds/strait":                   filepath.Join("..", "..", "config", "crd", "bases"),
	}
	for embedded, source := range sources {
		want, err := filepath.Glob(filepath.Join(source, "*.yaml"))
		if err != nil || len(want) == 0 {
			t.Fatalf("%s: no YAML (%v); is the module downloaded?", source, err)
		}
		var wantNames []string
		for _, path := range want {
			name := filepath.Base(path)
			if name == "kustomization.yaml" {
				continue
			}
			wantNames = append(wantNames, name)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := crds.ReadFile(embedded + "/" + name)
			if err != nil || string(got) != string(src) {
				t.Errorf("%s/%s differs from %s (%v): run hack/localcluster/copy-crds.sh", embedded, name, path, err)
			}
		}
		entries, err := crds.ReadDir(embedded)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, e := range entries {
			gotNames = append(gotNames, e.Name())
		}
		if !slices.Equal(gotNames, wantNames) {
			t.Errorf("%s holds %v, %s has %v: run hack/localcluster/copy-crds.sh", embedded, gotNames, source, wantNames)
		}
	}
}

// checkCRDs checks that every CRD of the channel is Established in c, and that Gateway
// API's carry the bundle version of the sigs.k8s.io/gateway-api module Strait builds with.
func checkCRDs(t *testing.T, c *Cluster, channel string) {
	t.Helper()
	manifests, err := Manifests(channel)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := client.Resource(crdResource).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	installed := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		installed[list.Items[i].GetName()] = &list.Items[i]
	}
	bundle, _ := module(t, "sigs.k8s.io/gateway-api")
	var gatewayCRDs, mcsCRDs, straitCRDs int
	for _, m := range manifests {
		if m.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := installed[m.GetName()]
		if crd == nil {
			t.Errorf("%s: CRD %s not installed", c.Name, m.GetName())
			continue
		}
		if !isEstablished(crd) {
			t.Errorf("%s: CRD %s not Established", c.Name, crd.GetName())
		}
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		switch {
		case strings.HasPrefix(group, "gateway.networking."):
			gatewayCRDs++
			if got := crd.GetAnnotations()[BundleVersionAnnotation]; got != bundle {
				t.Errorf("%s: CRD %s: %s %q, want %q", c.Name, crd.GetName(), BundleVersionAnnotation, got, bundle)
			}
			if got := crd.GetAnnotations()["gateway.networking.k8s.io/channel"]; got != channel {
				t.Errorf("%s: CRD %s: channel %q, want %q", c.Name, crd.GetName(), got, channel)
			}
		case group == "multicluster.x-k8s.io":
			mcsCRDs++
		case group == "strait.dev":
			straitCRDs++
		}
	}
	if gatewayCRDs == 0 || mcsCRDs != 2 || straitCRDs == 0 {
		t.Errorf("%s: %d Gateway API, %d MCS API and %d Strait CRDs; want some of each and both of MCS's", c.Name, gatewayCRDs, mcsCRDs, straitCRDs)
	}
	if channel == GatewayAPIExperimental && installed["xbackendtrafficpolicies.gateway.networking.x-k8s.io"] == nil {
		t.Errorf("%s: experimental channel without XBackendTrafficPolicy", c.Name)
	}
}

// checkControllerManager creates a Deployment and a Service and plays the missing kubelet:
// the Deployment must get a ReplicaSet and pods, and once the pods run with IPs on a Node,
// the Service must get an EndpointSlice with those IPs.
func checkControllerManager(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client := clientset(t, c)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cm-"}}
	ns, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The EndpointSlice controller leaves out pods whose Node does not exist.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + ns.Name}}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "echo"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{{Name: "echo", Image: "echo"}},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns.Name).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := client.CoreV1().Services(ns.Name).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var pods []corev1.Pod
	poll(ctx, t, "the Deployment's ReplicaSet to create 2 pods", func() (bool, error) {
		list, err := client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) == 2, nil
	})
	rsList, err := client.AppsV1().ReplicaSets(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil || len(rsList.Items) != 1 || !metav1.IsControlledBy(&pods[0], &rsList.Items[0]) {
		t.Fatalf("want one ReplicaSet owning the pods, got %d (%v)", len(rsList.Items), err)
	}

	wantIPs := map[string]bool{}
	for i := range pods {
		pod := &pods[i]
		binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node.Name}}
		if err := client.CoreV1().Pods(ns.Name).Bind(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod, err := client.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := fmt.Sprintf("10.244.%d.%d", c.Index, 10+i)
		wantIPs[ip] = true
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = ip
		pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := client.CoreV1().Pods(ns.Name).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	poll(ctx, t, "an EndpointSlice with both pods' IPs, ready", func() (bool, error) {
		list, err := client.DiscoveryV1().EndpointSlices(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=echo"})
		if err != nil {
			return false, err
		}
		got := map[string]bool{}
		for _, slice := range list.Items {
			for _, ep := range slice.Endpoints {
				if ptr.Deref(ep.Conditions.Ready, false) {
					for _, a := range ep.Addresses {
						got[a] = true
					}
				}
			}
		}
		return maps.Equal(got, wantIPs), nil
	})

	// Deleting the namespace exercises the namespace controller and the garbage collector.
	// The pods' zero grace period makes their deletion immediate, as it would be once a
	// kubelet confirmed that their processes ended.
	if err := client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "the namespace to be deleted", func() (bool, error) {
		_, err = client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err := client.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		ok, err := cond()
		lastErr = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last error: %v)", what, err, lastErr)
	}
}

func clientset(t testing.TB, c *Cluster) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// processesUsing lists the processes whose command line mentions dir: every etcd,
// kube-apiserver and kube-controller-manager of clusters in dir does.
func processesUsing(t *testing.T, dir string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		cmdline := strings.ReplaceAll(string(data), "\x00", " ")
		if strings.Contains(cmdline, dir) {
			found = append(found, filepath.Base(filepath.Dir(p))+": "+cmdline)
		}
	}
	return found
}

// module returns the version and directory of a module in Strait's go.mod, downloading it
// when needed.
func module(t testing.TB, path string) (version, dir string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", path).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", path, err)
	}
	var m struct{ Version, Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Version == "" || m.Dir == "" {
		t.Fatalf("go mod download %s: %q (%v)", path, out, err)
	}
	return m.Version, m.Dir
}

// TestFreshDir checks that a previous run's cluster directory is replaced and that any
// other non-empty directory is left alone.
func TestFreshDir(t *testing.T) {
	previous := filepath.Join(t.TempDir(), "us")
	if err := freshDir(previous); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(previous, "kubeconfig")
	if err := os.WriteFile(stale, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := freshDir(previous); err != nil {
		t.Fatalf("previous run's directory: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("previous run's kubeconfig is still there (%v)", err)
	}

	other := t.TempDir()
	precious := filepath.Join(other, "notes.txt")
	if err := os.WriteFile(precious, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := freshDir(other); err == nil {
		t.Error("freshDir accepted a non-empty directory that is not a cluster's")
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("freshDir touched a directory that is not a cluster's: %v", err)
	}
}

// BenchmarkStart measures starting and stopping clusters, one and three at a time:
//
//	go test -run '^$' -bench Start ./e2e/localcluster
func BenchmarkStart(b *testing.B) {
	bins, err := FindBinaries(b.Context(), "")
	if err != nil {
		b.Fatal(err)
	}
	for _, names := range [][]string{{"us"}, {"us", "eu", "ap"}} {
		b.Run(fmt.Sprintf("clusters=%d", len(names)), func(b *testing.B) {
			for b.Loop() {
				fleet, err := Start(b.Context(), Options{Clusters: names, Dir: b.TempDir(), BinDir: filepath.Dir(bins.Etcd)})
				if err != nil {
					b.Fatal(err)
				}
				if err := fleet.Stop(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
