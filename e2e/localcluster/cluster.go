package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controllers are the kube-controller-manager controllers a local cluster runs: what makes
// Deployments, Services and namespaces behave, and the service accounts pods need. Nothing
// that needs nodes or a cloud.
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpointslice-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
}

// Cluster is one local cluster: its own etcd, kube-apiserver and kube-controller-manager,
// listening on loopback ports, with files under Dir.
type Cluster struct {
	// Name is the cluster's name, also its kubeconfig context's.
	Name string
	// Index is the cluster's position in Options.Clusters; it numbers its CIDRs.
	Index int
	// Dir holds the cluster's certificates, kubeconfigs, etcd data and logs.
	Dir string
	// Kubeconfig is the path of an admin (system:masters) kubeconfig for the cluster.
	Kubeconfig string
	// Config is the admin client configuration; copy it (rest.CopyConfig) to change it.
	Config *rest.Config
	// URL is the API server's address, https://127.0.0.1:PORT.
	URL string
	// PodCIDR is the cluster's pod range, 10.244.<Index>.0/24.
	PodCIDR string
	// ServiceCIDR is the cluster's service range, 10.96.<Index>.0/24.
	ServiceCIDR string

	ca                *authority
	etcdURL           string
	etcd              *process
	apiserver         *process
	controllerManager *process
	addonStops        []func() error
}

// file is the path of a file in the cluster's directory.
func (c *Cluster) file(name string) string { return filepath.Join(c.Dir, name) }

// portsPerCluster are etcd's client and peer ports and kube-apiserver's.
const portsPerCluster = 3

// newCluster writes the cluster's certificates, keys and kubeconfigs into dir and
// prepares (without starting) its processes, listening on ports.
func newCluster(name string, index int, dir string, ports []int, bins Binaries) (*Cluster, error) {
	if err := freshDir(dir); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	var err error
	c := &Cluster{
		Name:        name,
		Index:       index,
		Dir:         dir,
		URL:         "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)),
		PodCIDR:     fmt.Sprintf("10.244.%d.0/24", index),
		ServiceCIDR: fmt.Sprintf("10.96.%d.0/24", index),
	}
	if c.ca, err = newAuthority(name); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	if err := c.writeFiles(); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}

	c.etcdURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(etcdClient))
	etcdURL := c.etcdURL
	peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(etcdPeer))
	c.etcd = &process{name: "etcd", path: bins.Etcd, log: c.file("etcd.log"), args: []string{
		"--name=" + name,
		"--data-dir=" + c.file("etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + name + "=" + peerURL,
		// A throwaway cluster: losing the last writes in a power cut is fine, and not
		// waiting for fsync keeps the shared CI disk out of every request's latency.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}}
	c.apiserver = &process{name: "kube-apiserver", path: bins.KubeAPIServer, log: c.file("kube-apiserver.log"), args: []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + c.file("apiserver.crt"),
		"--tls-private-key-file=" + c.file("apiserver.key"),
		"--client-ca-file=" + c.file("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + c.file("sa.pub"),
		"--service-account-signing-key-file=" + c.file("sa.key"),
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--allow-privileged=true",
		// The reconciler would publish 127.0.0.1 as the kubernetes Service's endpoint,
		// which EndpointSlice validation rejects as a loopback address.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// No request queuing to tune on a test cluster, and no FlowSchemas to bootstrap.
		"--enable-priority-and-fairness=false",
	}}
	c.controllerManager = &process{name: "kube-controller-manager", path: bins.KubeControllerManager, log: c.file("kube-controller-manager.log"), args: []string{
		"--kubeconfig=" + c.file("controller-manager.kubeconfig"),
		"--controllers=" + strings.Join(controllers, ","),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.file("sa.key"),
		"--root-ca-file=" + c.file("ca.crt"),
		"--cluster-name=" + name,
		"--leader-elect=false",
		"--secure-port=0",
	}}
	return c, nil
}

// markerFile marks a directory as a local cluster's, which a later Start may replace.
const markerFile = ".localcluster"

// freshDir makes dir an empty directory. A previous run's cluster directory is replaced
// (its CA, keys and ports would not match the new cluster's); any other non-empty
// directory is an error rather than something to delete.
func freshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(entries) == 0:
	default:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("%s is not empty and not a local cluster's directory; remove it or choose another directory", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing the previous cluster: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerFile), nil, 0o600)
}

// writeFiles writes the CA, the API server's serving certificate, the service account
// keys, and the admin and controller-manager kubeconfigs.
func (c *Cluster) writeFiles() error {
	_, serviceNet, err := net.ParseCIDR(c.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("service CIDR: %w", err)
	}
	kubernetesIP := serviceNet.IP.To4()
	kubernetesIP[3] = 1 // the kubernetes Service's cluster IP is the range's first address
	serving, err := c.ca.serving(
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, kubernetesIP})
	if err != nil {
		return err
	}
	saKey, saPub, err := serviceAccountKeys()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":        c.ca.CertPEM(),
		"apiserver.crt": serving.cert,
		"apiserver.key": serving.key,
		"sa.key":        saKey,
		"sa.pub":        saPub,
	}
	for name, data := range files {
		if err := os.WriteFile(c.file(name), data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if c.Config, err = c.ClientConfig("localcluster-admin", "system:masters"); err != nil {
		return err
	}
	c.Kubeconfig = c.file("kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.Name, c.Config); err != nil {
		return err
	}
	// The controller manager's own identity, bound by RBAC's bootstrap policy; each
	// controller then uses its service account's token (--use-service-account-credentials).
	cm, err := c.ClientConfig("system:kube-controller-manager")
	if err != nil {
		return err
	}
	return writeKubeconfig(c.file("controller-manager.kubeconfig"), c.Name, cm)
}

// ClientConfig issues a client certificate for user in groups, signed by the cluster's CA,
// and returns a client configuration that uses it; for example a node's
// ("system:node:NAME", "system:nodes") or a least-privilege user's.
func (c *Cluster) ClientConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := c.ca.client(user, groups...)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            c.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.ca.CertPEM(), CertData: kp.cert, KeyData: kp.key},
		QPS:             100,
		Burst:           200,
	}, nil
}

// WriteKubeconfig writes cfg (a certificate-based configuration from ClientConfig or
// Config) to path as a kubeconfig whose cluster, user and context are named after the
// cluster, so that kubeconfigs of several clusters merge with KUBECONFIG=a:b.
func (c *Cluster) WriteKubeconfig(path string, cfg *rest.Config) error {
	return writeKubeconfig(path, c.Name, cfg)
}

func writeKubeconfig(path, name string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}

// start starts etcd, then kube-apiserver once etcd serves, then kube-controller-manager
// once kube-apiserver is ready; it does not wait for the controller manager.
func (c *Cluster) start(ctx context.Context, log *slog.Logger) error {
	began := time.Now()
	if err := c.etcd.start(); err != nil {
		return err
	}
	if err := waitFor(ctx, c.etcd, func(ctx context.Context) bool {
		return httpOK(ctx, http.DefaultClient, c.etcdURL+"/health")
	}); err != nil {
		return err
	}
	log.Info("etcd ready", "cluster", c.Name, "after", since(began))
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	log.Info("kube-apiserver ready", "cluster", c.Name, "url", c.URL, "after", since(began))
	return c.controllerManager.start()
}

// since is the time since t, rounded for logs.
func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// waitForControllerManager waits until the serviceaccount controller has created the
// default namespace's "default" service account, which shows the controller manager
// works and which pods need before they can be created.
func (c *Cluster) waitForControllerManager(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return waitFor(ctx, c.controllerManager, func(ctx context.Context) bool {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
}

// StartAPIServer starts the cluster's kube-apiserver, on the same port as before, and
// waits until it is ready. Use it after StopAPIServer or KillAPIServer.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if err := c.apiserver.start(); err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.CloseIdleConnections()
	return waitFor(ctx, c.apiserver, func(ctx context.Context) bool {
		return httpOK(ctx, client, c.URL+"/readyz")
	})
}

// StopAPIServer stops the cluster's kube-apiserver gracefully (SIGTERM) and waits until
// it has exited; etcd keeps the cluster's data.
func (c *Cluster) StopAPIServer() { c.apiserver.stop(stopGrace) }

// KillAPIServer kills the cluster's kube-apiserver (SIGKILL), as a crash would, and waits
// until it has exited.
func (c *Cluster) KillAPIServer() { c.apiserver.stop(0) }

// stop ends the addons, then the control plane from the top down, so that no component
// spends its last seconds logging errors about the one below.
func (c *Cluster) stop() error {
	var errs []error
	for i := len(c.addonStops) - 1; i >= 0; i-- {
		if err := c.addonStops[i](); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: stopping addon: %w", c.Name, err))
		}
	}
	c.addonStops = nil
	c.controllerManager.stop(stopGrace)
	c.apiserver.stop(stopGrace)
	c.etcd.stop(stopGrace)
	return errors.Join(errs...)
}

// waitFor polls ready until it returns true, failing early, with the log's tail, when p
// exits, or when ctx ends.
func waitFor(ctx context.Context, p *process, ready func(context.Context) bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	exited := p.exited()
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok := ready(attempt)
		cancel()
		if ok {
			return nil
		}
		select {
		case <-exited:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w\n%s", p.name, context.Cause(ctx), p.logTail())
		case <-tick.C:
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// FreePorts returns n distinct loopback ports that were free a moment ago. All listeners
// stay open until every port is picked, so the kernel cannot hand out one port twice.
// Tests use it for the processes they start next to the clusters.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
