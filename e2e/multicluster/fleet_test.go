// Package multicluster runs Strait end to end on three real local clusters (us, eu, ap),
// each with a process kubelet running echo pods, Strait's controller as a subprocess of the
// built binary, and one `strait proxy` per cluster's Gateway. It needs root (the kubelet's
// network namespaces). See docs/multicluster.md, "End-to-end tests".
package multicluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	mcsv1alpha1 "sigs.k8s.io/mcs-api/pkg/apis/v1alpha1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/e2e/kubelet"
	"github.com/strait-gw/strait/e2e/localcluster"
	"github.com/strait-gw/strait/translator"
)

// The clusters and their metadata. us and eu share the region "atlantic" and ap is alone
// in "pacific", so that a ServiceImport seen from us has all three failover tiers: us
// (priority 0), eu (1, same region), ap (2). All are on one network: the process kubelets'
// pod IPs are reachable from the host, where the proxies run.
var clusterMeta = []struct{ name, region, zone string }{
	{"us", "atlantic", "us-1"},
	{"eu", "atlantic", "eu-1"},
	{"ap", "pacific", "ap-1"},
}

const (
	// gatewayPort is every Gateway's HTTP listener port, on the Gateway's own loopback
	// address, 127.0.<gatewayOctet+index>.1.
	gatewayPort  = 28080
	gatewayOctet = 71
	// waitTimeout bounds every wait for a change to propagate (API, controller, xDS).
	waitTimeout = 90 * time.Second
)

// cluster is one member cluster with its clients and its Gateway's proxy.
type cluster struct {
	*localcluster.Cluster
	kube    kubernetes.Interface
	gw      gwclient.Interface
	mcs     mcsclient.Interface
	gateway string // host:port of the Gateway's listener
	admin   string // host:port of the Gateway's proxy's admin server
}

// env is the shared fleet: clusters, the built binary, the controller and the proxies.
type env struct {
	fleet    *localcluster.Fleet
	clusters map[string]*cluster
	binary   string
	dir      string
	config   string // controller config file
	xdsAddr  string
	admin    string // the controller's admin address
	client   *http.Client
	// controller is the running controller, nil once killed. Only the test's goroutine
	// starts and kills it (the scenarios run in order).
	controller *exec.Cmd
}

// setup starts the fleet, the controller and the proxies, and creates the objects every
// scenario shares: in each cluster a GatewayClass, the Gateway web, an exported echo
// Deployment podinfo with 2 pods behind the Service podinfo, and the route ns (host
// ns.test) to it.
func setup(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the process kubelet needs root for network namespaces")
	}
	ctx := t.Context()
	e := &env{clusters: map[string]*cluster{}, dir: t.TempDir()}
	e.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	if err := kubelet.Prepare(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// The controller and the proxies run the binary the echo pods run, which Prepare built.
	var err error
	if e.binary, err = kubelet.StraitBinary(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range clusterMeta {
		names = append(names, m.name)
	}
	e.fleet = localcluster.StartForTest(t, localcluster.Options{Clusters: names,
		// Indexes 10-12 (bridges strait10-12, pods 10.244.10-12.0/24): e2e/kubelet's fleet,
		// which go test may run at the same time, uses 0 and 1.
		FirstIndex: 10,
		Addons:     []localcluster.Addon{kubelet.Addon(nil)}})

	ports, err := localcluster.FreePorts(2 + len(clusterMeta))
	if err != nil {
		t.Fatal(err)
	}
	e.xdsAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	var cfg strings.Builder
	cfg.WriteString("apiVersion: strait.dev/v1alpha1\nkind: StraitConfig\nclusters:\n")
	for _, m := range clusterMeta {
		lc := e.fleet.Cluster(m.name)
		c := &cluster{
			Cluster: lc,
			kube:    kubernetes.NewForConfigOrDie(lc.Config),
			gw:      gwclient.NewForConfigOrDie(lc.Config),
			mcs:     mcsclient.NewForConfigOrDie(lc.Config),
			gateway: net.JoinHostPort(fmt.Sprintf("127.0.%d.1", gatewayOctet+lc.Index), strconv.Itoa(gatewayPort)),
		}
		e.clusters[m.name] = c
		fmt.Fprintf(&cfg, "- {name: %s, region: %s, zone: %s, network: local, kubeconfig: %s}\n", m.name, m.region, m.zone, lc.Kubeconfig)
	}
	e.admin = "127.0.0.1:" + strconv.Itoa(ports[1])
	fmt.Fprintf(&cfg, "xds: %s\nadmin: %s\n", e.xdsAddr, e.admin)
	e.config = filepath.Join(e.dir, "strait.yaml")
	if err := os.WriteFile(e.config, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range e.clusters {
		createGatewayClass(t, c)
		createGateway(t, c)
		createEcho(t, c, "podinfo", 2, true)
		createRoute(t, c, route("ns", "ns.test", backends(backend("podinfo", 1))))
	}
	e.startController(t)
	t.Cleanup(e.killController)
	for i, m := range clusterMeta {
		e.startProxy(t, m.name, ports[2+i])
	}
	for _, c := range e.clusters {
		waitDeployment(t, c, "podinfo", 2)
	}
	return e
}

// startController runs `strait controller` on the fleet; without leader election, so that a
// killed controller's successor does not wait for an orphaned Lease to expire.
func (e *env) startController(t *testing.T) {
	t.Helper()
	e.controller = e.command(t, "controller", "controller", "--config", e.config, "--leader-elect=false")
}

// killController kills the controller with SIGKILL, as a crash would; it is also how the
// test ends it.
func (e *env) killController() {
	if e.controller == nil {
		return
	}
	_ = e.controller.Process.Kill()
	_ = e.controller.Wait()
	e.controller = nil
}

// startProxy runs `strait proxy` for cluster's Gateway web.
func (e *env) startProxy(t *testing.T, cluster string, adminPort int) {
	t.Helper()
	e.clusters[cluster].admin = "127.0.0.1:" + strconv.Itoa(adminPort)
	cmd := e.command(t, "proxy-"+cluster, "proxy", "--xds", e.xdsAddr, "--node", cluster+"/default/web",
		"--admin", e.clusters[cluster].admin)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// command starts the built binary with args, its output in a log file shown when the test
// fails.
func (e *env) command(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(e.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A test binary killed by a timeout takes its subprocesses with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = logFile.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", name, tail(logPath, 40))
		}
	})
	return cmd
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func createGatewayClass(t *testing.T, c *cluster) {
	t.Helper()
	gc := &gwapiv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "strait"},
		Spec:       gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName},
	}
	if _, err := c.gw.GatewayV1().GatewayClasses().Create(t.Context(), gc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createGateway creates the Gateway web, bound to the cluster's own loopback address.
func createGateway(t *testing.T, c *cluster) {
	t.Helper()
	createGatewayNamed(t, c, "web", gatewayPort)
}

// createGatewayNamed creates a Gateway with one HTTP listener on port, bound to the
// cluster's own loopback address.
func createGatewayNamed(t *testing.T, c *cluster, name string, port gwapiv1.PortNumber) *gwapiv1.Gateway {
	t.Helper()
	host, _, _ := net.SplitHostPort(c.gateway)
	gw := &gwapiv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwapiv1.GatewaySpec{
			GatewayClassName: "strait",
			Addresses:        []gwapiv1.GatewaySpecAddress{{Type: ptr.To(gwapiv1.IPAddressType), Value: host}},
			Listeners: []gwapiv1.Listener{{
				Name: "http", Port: port, Protocol: gwapiv1.HTTPProtocolType,
				AllowedRoutes: &gwapiv1.AllowedRoutes{Namespaces: &gwapiv1.RouteNamespaces{From: ptr.To(gwapiv1.NamespacesFromSame)}},
			}},
		},
	}
	created, err := c.gw.GatewayV1().Gateways("default").Create(t.Context(), gw, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// createEcho creates a Deployment of echo pods labeled app=name, a Service name (port 80
// to 8080) and, when export is set, its ServiceExport.
func createEcho(t *testing.T, c *cluster, name string, replicas int32, export bool) {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": name}
	spec := kubelet.EchoPodSpec(corev1.EnvVar{Name: "SERVICE_NAME", Value: name})
	spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       spec,
			},
		},
	}
	if _, err := c.kube.AppsV1().Deployments("default").Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := c.kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if export {
		se := &mcsv1alpha1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		if _, err := c.mcs.MulticlusterV1alpha1().ServiceExports("default").Create(ctx, se, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// scale sets a Deployment's replicas and waits until it has that many available pods and
// no others.
func scale(t *testing.T, c *cluster, name string, replicas int32) {
	t.Helper()
	s, err := c.kube.AppsV1().Deployments("default").GetScale(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = replicas
	if _, err := c.kube.AppsV1().Deployments("default").UpdateScale(t.Context(), name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, c, name, replicas)
}

func waitDeployment(t *testing.T, c *cluster, name string, replicas int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s: deployment %s with %d ready pods", c.Name, name, replicas), func() bool {
		d, err := c.kube.AppsV1().Deployments("default").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		pods, err := c.kube.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + name})
		return err == nil && d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == replicas &&
			d.Status.AvailableReplicas == replicas && len(pods.Items) == int(replicas)
	})
}

// eventually polls cond every 100 ms until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get sends GET path with Host host to a cluster's Gateway and decodes the echo's answer;
// an error is any failure, a status other than 200 included.
func (e *env) get(ctx context.Context, c *cluster, host, path string) (echo.Response, error) {
	var resp echo.Response
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.gateway+path, nil)
	if err != nil {
		return resp, err
	}
	req.Host = host
	r, err := e.client.Do(req)
	if err != nil {
		return resp, err
	}
	defer func() { _ = r.Body.Close() }()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return resp, err
	}
	if r.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("%s: %s", r.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return resp, fmt.Errorf("%w: %s", err, body)
	}
	return resp, nil
}

// waitServed polls a cluster's Gateway until a request for host/path gets an answer that
// ok accepts.
func (e *env) waitServed(t *testing.T, c *cluster, host, path, what string, ok func(echo.Response) bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(waitTimeout)
	for {
		r, err := e.get(t.Context(), c, host, path)
		if err == nil && ok(r) {
			return
		}
		last = fmt.Sprintf("%+v %v", r.Identity, err)
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s through %s's Gateway; last answer %s", waitTimeout, what, c.Name, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
