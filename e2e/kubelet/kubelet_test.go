package kubelet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/e2e/kubelet"
	"github.com/strait-gw/strait/e2e/localcluster"
)

// testCluster is a local cluster with a process kubelet.
type testCluster struct {
	name    string
	client  kubernetes.Interface
	kubelet *kubelet.Kubelet
	cidr    netip.Prefix
	bridge  string
}

// readyImage is reported Running and Ready without a process (Options.ReadyImages).
const readyImage = "registry.k8s.io/pause"

// startClusters starts local clusters, each with a kubelet.
func startClusters(t *testing.T, names ...string) (*localcluster.Fleet, map[string]*testCluster) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the process kubelet needs root for network namespaces")
	}
	// Builds on a fresh machine take minutes; no pod should wait for them.
	if err := kubelet.Prepare(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	clusters := map[string]*testCluster{}
	addon := kubelet.Addon(func(c *localcluster.Cluster, k *kubelet.Kubelet) {
		client, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		clusters[c.Name] = &testCluster{name: c.Name, client: client, kubelet: k, cidr: k.PodCIDR(), bridge: k.Bridge()}
	}, readyImage)
	fleet := localcluster.StartForTest(t, localcluster.Options{Clusters: names, Addons: []localcluster.Addon{addon}})
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range clusters {
				logPods(t, c)
			}
		}
	})
	return fleet, clusters
}

// TestKubelet runs pods on two clusters' process kubelets: a Deployment of echo pods
// becomes Available and serves from its pod IPs, a Service gets their EndpointSlice, pods
// reach the other cluster's pods, env and volumes reach the processes, crashing processes
// restart, unsupported images get a status, and deletions and Stop leave nothing behind.
func TestKubelet(t *testing.T) {
	// What a crashed run would leave: a pod namespace named after the first cluster's bridge
	// (kubelet.Addon names it strait0). Start must remove it. (A run of this test stopped
	// before Start leaves exactly that.)
	if os.Geteuid() == 0 && !exists("/run/netns/strait0-250") {
		if out, err := exec.Command("ip", "netns", "add", "strait0-250").CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
	}
	fleet, clusters := startClusters(t, "kt-a", "kt-b")
	a, b := clusters["kt-a"], clusters["kt-b"]
	if exists("/run/netns/strait0-250") {
		t.Error("a previous run's netns strait0-250 survived Start")
	}

	t.Run("Node", func(t *testing.T) {
		node, err := a.client.CoreV1().Nodes().Get(t.Context(), "kt-a-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !nodeReady(node) {
			t.Errorf("node conditions %v, want Ready", node.Status.Conditions)
		}
		if !slices.Contains(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.kubelet.NodeIP().String()}) {
			t.Errorf("node addresses %v, want InternalIP %s", node.Status.Addresses, a.kubelet.NodeIP())
		}
		if node.Status.Allocatable.Cpu().IsZero() || node.Status.Allocatable.Memory().IsZero() {
			t.Errorf("allocatable %v, want CPU and memory", node.Status.Allocatable)
		}
		if _, err := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(t.Context(), "kt-a-node", metav1.GetOptions{}); err != nil {
			t.Errorf("node lease: %v", err)
		}
	})

	var deployPods []corev1.Pod
	t.Run("Deployment", func(t *testing.T) {
		deployPods = testDeployment(t, a)
	})

	t.Run("EchoBasic", func(t *testing.T) {
		// As the conformance manifests run it (no port, no probe: Ready once it listens on
		// 3000), and under its staging name on another port with an httpGet probe.
		basic := echoBasicPod("basic")
		staging := echoBasicPod("basic-staging")
		ctr := &staging.Spec.Containers[0]
		ctr.Image = kubelet.EchoBasicStagingImage + ":v20251204-v1.4.1"
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "HTTP_PORT", Value: "4000"})
		ctr.Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: 4000}}
		ctr.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromString("web")}}}
		for _, tc := range []struct {
			pod  *corev1.Pod
			port string
		}{{basic, "3000"}, {staging, "4000"}} {
			createPod(t, a, tc.pod)
			got := waitPodReady(t, a, tc.pod.Name)
			resp := getJSON[map[string]any](t, "http://"+net.JoinHostPort(got.Status.PodIP, tc.port)+"/hello")
			if resp["pod"] != tc.pod.Name || resp["namespace"] != "default" || resp["path"] != "/hello" {
				t.Errorf("echo-basic answered %v, want pod %s, namespace default, path /hello", resp, tc.pod.Name)
			}
		}
	})

	t.Run("UnsupportedImage", func(t *testing.T) {
		pod := echoPod("nginx", "")
		pod.Spec.Containers[0].Image = "nginx:1.27"
		createPod(t, a, pod)
		got := waitPod(t, a, pod.Name, "a Waiting container", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
				p.Status.ContainerStatuses[0].State.Waiting.Reason == "ErrImageNeverPull"
		})
		msg := got.Status.ContainerStatuses[0].State.Waiting.Message
		if !strings.Contains(msg, "nginx:1.27") || !strings.Contains(msg, kubelet.EchoImage) || !strings.Contains(msg, kubelet.EchoBasicImage) || !strings.Contains(msg, kubelet.EchoBasicStagingImage) {
			t.Errorf("waiting message %q, want the image and the supported ones", msg)
		}
		if got.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", got.Status.Phase)
		}
	})

	t.Run("ReadyImage", func(t *testing.T) {
		pod := echoPod("pause", "")
		pod.Spec.Containers[0].Image = readyImage + ":3.10"
		createPod(t, a, pod)
		got := waitPodReady(t, a, pod.Name)
		st := got.Status.ContainerStatuses[0]
		if got.Status.Phase != corev1.PodRunning || st.State.Running == nil || !st.Ready || st.ContainerID != "" {
			t.Errorf("phase %s, container %+v; want Running and Ready without a process", got.Status.Phase, st)
		}
	})

	t.Run("EnvAndVolumes", func(t *testing.T) {
		testEnvAndVolumes(t, a)
	})

	t.Run("Restart", func(t *testing.T) {
		pod := echoPod("crasher", "")
		pod.Spec.Containers[0].Args = []string{"--listen=256.0.0.1:1"} // cannot listen: exits 1
		createPod(t, a, pod)
		got := waitPod(t, a, pod.Name, "a restarted container", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1 &&
				p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil
		})
		cs := got.Status.ContainerStatuses[0]
		if code := cs.LastTerminationState.Terminated.ExitCode; code == 0 {
			t.Errorf("last exit code %d, want a failure", code)
		}
		if cs.Ready || got.Status.Phase != corev1.PodRunning {
			t.Errorf("crashing pod: ready %v phase %s, want not ready and Running", cs.Ready, got.Status.Phase)
		}
	})

	t.Run("Logs", func(t *testing.T) {
		// Through kube-apiserver's pods/log, which it proxies to the kubelet's endpoint.
		logs := podLogs(t, a, deployPods[0].Name, &corev1.PodLogOptions{})
		if !strings.Contains(logs, "echo backend listening") || !strings.Contains(logs, deployPods[0].Name) {
			t.Errorf("log of %s: %q, want the echo's start line", deployPods[0].Name, logs)
		}
		previous := podLogs(t, a, "crasher", &corev1.PodLogOptions{Previous: true, TailLines: ptr.To(int64(1))})
		if !strings.Contains(previous, "256.0.0.1") || strings.Count(previous, "\n") > 1 {
			t.Errorf("previous log of crasher, last line: %q, want the listen error", previous)
		}
	})

	t.Run("CrossCluster", func(t *testing.T) {
		pod := echoPod("remote", "")
		createPod(t, b, pod)
		remote := waitPodReady(t, b, pod.Name)
		if !b.cidr.Contains(netip.MustParseAddr(remote.Status.PodIP)) {
			t.Fatalf("pod IP %s not in %s", remote.Status.PodIP, b.cidr)
		}
		// From a pod of cluster a's network namespace to the pod of cluster b.
		from := deployPods[0]
		resp := getFromNetns(t, netnsOf(t, a, from.Status.PodIP), "http://"+net.JoinHostPort(remote.Status.PodIP, "8080")+"/")
		if resp.Cluster != "kt-b" || resp.Pod != "remote" {
			t.Errorf("answer %+v, want cluster kt-b pod remote", resp.Identity)
		}
	})

	t.Run("DeletePod", func(t *testing.T) {
		gatewayMAC := readLink(t, a.bridge, "address")
		pod := echoPod("doomed", "")
		pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(5))
		createPod(t, a, pod)
		got := waitPodReady(t, a, pod.Name)
		// Probed from the host: the host has an ARP entry for the pod.
		if arp := hostARP(t, got.Status.PodIP, a.bridge); arp == "" {
			t.Errorf("no ARP entry for the pod's %s on %s after its probes", got.Status.PodIP, a.bridge)
		}
		pid := containerPID(t, got)
		ns := netnsOf(t, a, got.Status.PodIP)
		if err := a.client.CoreV1().Pods("default").Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "pod doomed deleted", func() bool {
			_, err := a.client.CoreV1().Pods("default").Get(t.Context(), pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		if processAlive(pid) {
			t.Errorf("process %d still runs", pid)
		}
		if exists(filepath.Join("/run/netns", ns)) || exists(filepath.Join("/sys/class/net", ns)) {
			t.Errorf("netns or veth %s left behind", ns)
		}
		// The next pod to get the address has another MAC: a stale entry would send the
		// host's packets for it to the old one until the entry expired (8 to 50 s).
		if arp := hostARP(t, got.Status.PodIP, a.bridge); arp != "" {
			t.Errorf("the deleted pod's ARP entry is left on the host: %s", arp)
		}
		// The pods' gateway keeps its MAC while pods come and go.
		if mac := readLink(t, a.bridge, "address"); mac != gatewayMAC {
			t.Errorf("bridge %s changed its MAC from %s to %s as a pod came and went", a.bridge, gatewayMAC, mac)
		}
	})

	t.Run("ScaleToZero", func(t *testing.T) {
		var pids []int
		var namespaces []string
		for _, p := range deployPods {
			pids = append(pids, containerPID(t, &p))
			namespaces = append(namespaces, netnsOf(t, a, p.Status.PodIP))
		}
		scale, err := a.client.AppsV1().Deployments("default").GetScale(t.Context(), "echo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		scale.Spec.Replicas = 0
		if _, err := a.client.AppsV1().Deployments("default").UpdateScale(t.Context(), "echo", scale, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "echo pods gone", func() bool {
			pods, err := a.client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=echo"})
			return err == nil && len(pods.Items) == 0
		})
		for i, pid := range pids {
			if processAlive(pid) {
				t.Errorf("process %d still runs", pid)
			}
			if exists(filepath.Join("/run/netns", namespaces[i])) {
				t.Errorf("netns %s left behind", namespaces[i])
			}
		}
	})

	t.Run("Stop", func(t *testing.T) {
		var pids []int
		for _, c := range []*testCluster{a, b} {
			pods, err := c.client.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				// A ready image (the pause pod) runs no process: it has no container ID.
				if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil &&
					p.Status.ContainerStatuses[0].ContainerID != "" {
					pids = append(pids, containerPID(t, &p))
				}
			}
		}
		if len(pids) == 0 {
			t.Fatal("no running process to check Stop with")
		}
		if err := fleet.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if processAlive(pid) {
				t.Errorf("process %d still runs after Stop", pid)
			}
		}
		for _, dir := range []string{"/run/netns", "/sys/class/net"} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), a.bridge) || strings.HasPrefix(e.Name(), b.bridge) {
					t.Errorf("%s left behind after Stop", filepath.Join(dir, e.Name()))
				}
			}
		}
	})
}

// testDeployment runs a Deployment of two echo pods and checks their pods, answers and
// EndpointSlice; it returns the pods.
func testDeployment(t *testing.T, c *testCluster) []corev1.Pod {
	ctx := t.Context()
	pod := echoPod("", "app=echo")
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "echo"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
	if _, err := c.client.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := c.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "deployment echo Available", func() bool {
		d, err := c.client.AppsV1().Deployments("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == 2
			}
		}
		return false
	})
	list, err := c.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d echo pods, want 2", len(list.Items))
	}
	var ips []string
	for _, p := range list.Items {
		checkRunningStatus(t, c, &p)
		ips = append(ips, p.Status.PodIP)
		resp := getJSON[echo.Response](t, "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/where")
		want := echo.Identity{Cluster: c.name, Namespace: "default", Pod: p.Name}
		if resp.Identity != want || resp.Path != "/where" {
			t.Errorf("pod %s answered %+v path %q, want %+v path /where", p.Name, resp.Identity, resp.Path, want)
		}
	}
	if ips[0] == ips[1] {
		t.Errorf("both pods have IP %s", ips[0])
	}
	slices.Sort(ips)
	poll(t, "EndpointSlice of echo with both pods ready", func() bool {
		list, err := c.client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=echo"})
		if err != nil {
			return false
		}
		var ready []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready = append(ready, e.Addresses...)
				}
			}
		}
		slices.Sort(ready)
		return strings.Join(ready, ",") == strings.Join(ips, ",")
	})
	return list.Items
}

// checkRunningStatus checks the status a kubelet writes for a ready, running pod.
func checkRunningStatus(t *testing.T, c *testCluster, p *corev1.Pod) {
	t.Helper()
	if p.Spec.NodeName != c.name+"-node" {
		t.Errorf("pod %s on node %q, want %s-node", p.Name, p.Spec.NodeName, c.name)
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || !c.cidr.Contains(ip) || ip == c.kubelet.NodeIP() {
		t.Errorf("pod %s IP %q, want a pod address in %s", p.Name, p.Status.PodIP, c.cidr)
	}
	if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
		t.Errorf("pod %s podIPs %v, want [%s]", p.Name, p.Status.PodIPs, p.Status.PodIP)
	}
	if p.Status.HostIP != c.kubelet.NodeIP().String() {
		t.Errorf("pod %s hostIP %q, want %s", p.Name, p.Status.HostIP, c.kubelet.NodeIP())
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod %s phase %s, want Running", p.Name, p.Status.Phase)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if !hasCondition(p, ct) {
			t.Errorf("pod %s conditions %v, want %s True", p.Name, p.Status.Conditions, ct)
		}
	}
	if len(p.Status.ContainerStatuses) != 1 {
		t.Fatalf("pod %s containerStatuses %v, want one", p.Name, p.Status.ContainerStatuses)
	}
	cs := p.Status.ContainerStatuses[0]
	if !cs.Ready || cs.Started == nil || !*cs.Started || cs.State.Running == nil || cs.RestartCount != 0 {
		t.Errorf("pod %s container status %+v, want ready, started, running, no restarts", p.Name, cs)
	}
}

// testEnvAndVolumes checks that a process gets env from values, the downward API, a
// Secret and a ConfigMap, and sees the Secret and ConfigMap volumes at their mountPaths.
func testEnvAndVolumes(t *testing.T, c *testCluster) {
	ctx := t.Context()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"token": []byte("s3cret")}}
	if _, err := c.client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}, Data: map[string]string{"mode": "fast", "app.conf": "retries=3\n"}}
	if _, err := c.client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := echoPod("configured", "")
	ctr := &pod.Spec.Containers[0]
	ctr.Env = append(ctr.Env,
		corev1.EnvVar{Name: "GREETING", Value: "hello $(POD_NAME)"},
		corev1.EnvVar{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		corev1.EnvVar{Name: "MY_NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
		corev1.EnvVar{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "mode"}}},
	)
	secretDir := "/srv/strait-kubelet-test/creds"
	configDir := "/etc/strait-kubelet-test"
	ctr.VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: secretDir, ReadOnly: true}, {Name: "settings", MountPath: configDir}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
	}
	createPod(t, c, pod)
	got := waitPodReady(t, c, pod.Name)
	pid := containerPID(t, got)

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	for _, want := range []string{
		"POD_NAME=configured", "NAMESPACE=default", "CLUSTER=" + c.name, "GREETING=hello configured",
		"MY_IP=" + got.Status.PodIP, "MY_NODE=" + c.name + "-node", "TOKEN=s3cret", "MODE=fast",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("process env %q lacks %s", env, want)
		}
	}
	// The files are visible in the process's mount namespace, not on the host.
	for path, want := range map[string]string{secretDir + "/token": "s3cret", configDir + "/app.conf": "retries=3\n"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid, path))
		if err != nil || string(data) != want {
			t.Errorf("process sees %s = %q (%v), want %q", path, data, err, want)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s visible on the host", path)
		}
	}
	if err := c.client.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "pod configured deleted", func() bool {
		_, err := c.client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	for _, dir := range []string{"/srv/strait-kubelet-test", configDir} {
		if exists(dir) {
			t.Errorf("mount point %s left on the host", dir)
		}
	}
}

func podLogs(t *testing.T, c *testCluster, name string, opts *corev1.PodLogOptions) string {
	t.Helper()
	data, err := c.client.CoreV1().Pods("default").GetLogs(name, opts).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("logs of %s: %v: %s", name, err, data)
	}
	return string(data)
}

// logPods logs the cluster's pod statuses, to explain a failure.
func logPods(t *testing.T, c *testCluster) {
	pods, err := c.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Logf("cluster %s: list pods: %v", c.name, err)
		return
	}
	for _, p := range pods.Items {
		status, _ := json.Marshal(p.Status)
		t.Logf("cluster %s: pod %s/%s on %q: %s", c.name, p.Namespace, p.Name, p.Spec.NodeName, status)
	}
}

// echoPod is a pod running Strait's echo on port 8080 with the identity variables.
func echoPod(name, label string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       kubelet.EchoPodSpec(),
	}
	if k, v, ok := strings.Cut(label, "="); ok {
		pod.Labels = map[string]string{k: v}
	}
	return pod
}

// echoBasicPod is the Gateway API conformance backend as its manifests declare it: no
// port, no probe.
func echoBasicPod(name string) *corev1.Pod {
	pod := echoPod(name, "")
	ctr := &pod.Spec.Containers[0]
	ctr.Image = kubelet.EchoBasicImage + ":v1.5.1"
	ctr.Ports = nil
	return pod
}

func createPod(t *testing.T, c *testCluster, pod *corev1.Pod) {
	t.Helper()
	if _, err := c.client.CoreV1().Pods(pod.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitPodReady(t *testing.T, c *testCluster, name string) *corev1.Pod {
	t.Helper()
	return waitPod(t, c, name, "Ready", func(p *corev1.Pod) bool { return hasCondition(p, corev1.PodReady) })
}

// waitPod polls pod name in default until cond holds.
func waitPod(t *testing.T, c *testCluster, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, "pod "+name+" "+what, func() bool {
		p, err := c.client.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		pod = p
		return cond(p)
	})
	return pod
}

// pollTimeout is how long a pod may take to get where a test wants it on a machine busy
// with other tests (the binaries are built beforehand).
const pollTimeout = time.Minute

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasCondition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPID reads the process ID from the container ID, process://PID.
func containerPID(t *testing.T, p *corev1.Pod) int {
	t.Helper()
	id := p.Status.ContainerStatuses[0].ContainerID
	pid, err := strconv.Atoi(strings.TrimPrefix(id, "process://"))
	if err != nil || !strings.HasPrefix(id, "process://") {
		t.Fatalf("pod %s container ID %q, want process://PID", p.Name, id)
	}
	return pid
}

// netnsOf names the pod's network namespace: <bridge>-<last octet>.
func netnsOf(t *testing.T, c *testCluster, podIP string) string {
	t.Helper()
	ip := netip.MustParseAddr(podIP)
	name := fmt.Sprintf("%s-%d", c.bridge, ip.As4()[3])
	if !exists(filepath.Join("/run/netns", name)) {
		t.Fatalf("no network namespace %s for pod IP %s", name, podIP)
	}
	return name
}

func processAlive(pid int) bool {
	// A zombie is dead for our purpose; the kubelet reaps its children.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data))
	return len(fields) > 2 && fields[2] != "Z"
}

// hostARP returns the host's ARP entry for ip on bridge, "" if it has none.
func hostARP(t *testing.T, ip, bridge string) string {
	t.Helper()
	out, err := exec.Command("ip", "neigh", "show", ip, "dev", bridge).CombinedOutput()
	if err != nil {
		t.Fatalf("ip neigh show: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// readLink reads an attribute of a network interface from /sys/class/net.
func readLink(t *testing.T, link, attr string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/class/net", link, attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	return decode[T](t, url, http.DefaultClient)
}

func decode[T any](t *testing.T, url string, client *http.Client) T {
	t.Helper()
	var v T
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return v
}

// getFromNetns does a GET from inside a network namespace: the connection's socket is
// created on a thread moved into it, and a socket keeps its namespace for its life.
func getFromNetns(t *testing.T, netns, url string) echo.Response {
	t.Helper()
	target, err := os.Open(filepath.Join("/run/netns", netns))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = target.Close() }()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer func() { _ = self.Close() }()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		var d net.Dialer
		conn, dialErr := d.DialContext(ctx, network, addr)
		// Back home before the thread serves other goroutines. It must not exit instead:
		// children started from it (the clusters' processes) have Pdeathsig set, which
		// fires when the thread that forked them dies.
		if err := setns(self); err != nil {
			panic(fmt.Sprintf("thread stuck in netns %s: %v", netns, err))
		}
		runtime.UnlockOSThread()
		return conn, dialErr
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			conn, err := dial(ctx, network, addr)
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.conn, r.err
	}, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	return decode[echo.Response](t, url, client)
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}
