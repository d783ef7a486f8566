package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/provider/kubernetes"
	"github.com/strait-gw/strait/provider/kubernetes/mirror"
	"github.com/strait-gw/strait/provider/kubernetes/status"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

// kubeFlags are the controller's flags for Kubernetes clusters.
type kubeFlags struct {
	kubeconfigs             []string
	homeKubeconfig          string
	inCluster               bool
	namespace               string
	leaderElect             bool
	leaderElectionNamespace string
	bindAddress             string
	addressPool             string
}

func (f *kubeFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.kubeconfigs, "kubeconfig", nil, "a member cluster: NAME=PATH of its kubeconfig (repeatable)")
	fs.StringVar(&f.homeKubeconfig, "home-kubeconfig", "", "kubeconfig of the home cluster, whose ClusterLinks add member clusters")
	fs.BoolVar(&f.inCluster, "in-cluster", false, "the home cluster is the one this pod runs in")
	fs.StringVar(&f.namespace, "namespace", "strait-system", "home cluster namespace of the ClusterLinks and their Secrets")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader among replicas (Kubernetes clusters only); only the leader writes statuses")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: --namespace)")
	fs.StringVar(&f.addressPool, "address-pool", "", "CIDR from which every Gateway gets an IP of its own: one that names no spec.addresses gets a free one, and spec.addresses must be in it (instead of --bind-address)")
	fs.StringVar(&f.bindAddress, "bind-address", "", "IP Gateway listeners bind to unless a Gateway names one (default: the config file's proxy.bindAddress, else 0.0.0.0)")
}

// given says whether a flag asks for Kubernetes clusters.
func (f *kubeFlags) given() bool {
	return len(f.kubeconfigs) > 0 || f.homeKubeconfig != "" || f.inCluster
}

func hasKubeconfigClusters(cfg *file.Config) bool {
	if cfg == nil {
		return false
	}
	for _, c := range cfg.StraitConfig.Clusters {
		if c.Kubeconfig != "" {
			return true
		}
	}
	return false
}

// kubeSetup is what the Kubernetes control plane is built from.
type kubeSetup struct {
	provider kubernetes.Options
	// homeConfig is the home cluster's, nil without one; homeNamespace holds its ClusterLinks.
	homeConfig    *rest.Config
	homeNamespace string
	// leaseConfig reaches the cluster of the leader election Lease; nil: no election.
	leaseConfig    *rest.Config
	leaseNamespace string
}

// setup resolves the flags and the config file (nil when not given) into clusters.
func (f *kubeFlags) setup(cfg *file.Config) (*kubeSetup, error) {
	s := &kubeSetup{homeNamespace: f.namespace}
	s.provider.BindAddress = "0.0.0.0"
	var clusters []translator.Cluster
	paths := map[string]string{}
	if cfg != nil {
		s.provider.BindAddress = cfg.StraitConfig.Proxy.BindAddress
		for _, c := range cfg.StraitConfig.Clusters {
			if c.Manifests != "" {
				return nil, fmt.Errorf("cluster %s of %s has manifests: with Kubernetes clusters every cluster needs a kubeconfig", c.Name, cfg.Path)
			}
			clusters = append(clusters, translator.Cluster{Name: c.Name, Region: c.Region, Zone: c.Zone, Network: c.Network, Labels: c.Labels})
			paths[c.Name] = c.Kubeconfig
		}
	}
	if f.bindAddress != "" {
		s.provider.BindAddress = f.bindAddress
	}
	if f.addressPool != "" {
		pool, err := netip.ParsePrefix(f.addressPool)
		if err != nil {
			return nil, fmt.Errorf("--address-pool: %w", err)
		}
		s.provider.AddressPool = pool.Masked()
	}
	for _, kv := range f.kubeconfigs {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("--kubeconfig %q: want NAME=PATH", kv)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("--kubeconfig %q: cluster name: %s", kv, strings.Join(errs, "; "))
		}
		if _, known := paths[name]; !known {
			clusters = append(clusters, translator.Cluster{Name: name})
		}
		paths[name] = path
	}
	for _, c := range clusters {
		rc, err := loadKubeconfig(paths[c.Name])
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		s.provider.Clusters = append(s.provider.Clusters, kubernetes.ClusterSpec{Cluster: c, Config: rc})
	}

	switch {
	case f.homeKubeconfig != "" && f.inCluster:
		return nil, errors.New("--home-kubeconfig and --in-cluster both name a home cluster: give one")
	case f.homeKubeconfig != "":
		rc, err := loadKubeconfig(f.homeKubeconfig)
		if err != nil {
			return nil, fmt.Errorf("home cluster: %w", err)
		}
		s.homeConfig = rc
	case f.inCluster:
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("home cluster: %w", err)
		}
		s.homeConfig = rc
	}
	if s.homeConfig == nil && len(s.provider.Clusters) == 0 {
		return nil, errors.New("no clusters: give --kubeconfig flags, kubeconfig entries in --config, or a home cluster")
	}

	if f.leaderElect {
		s.leaseNamespace = f.leaderElectionNamespace
		if s.leaseNamespace == "" {
			s.leaseNamespace = f.namespace
		}
		if s.homeConfig != nil {
			s.leaseConfig = s.homeConfig
		} else {
			s.leaseConfig = s.provider.Clusters[0].Config
		}
	}
	return s, nil
}

func loadKubeconfig(path string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	rc.UserAgent = "strait-controller/" + version
	return rc, nil
}

// newKubeClients makes a cluster's clients and kubeProbe checks its health (nil: GET
// /readyz); tests replace them with fakes.
var (
	newKubeClients = kubernetes.NewClients
	kubeProbe      func(context.Context, *kubernetes.Clients) error
)

// runKubeControlPlane runs the control plane on Kubernetes clusters, with leader election.
// Every replica watches, translates and serves xDS; only the leader's status and mirror
// writers write, through the provider's per-cluster clients, and they catch up on what they
// skipped each time this replica becomes leader.
func runKubeControlPlane(ctx context.Context, s *kubeSetup, xdsAddr, adminAddr string, xdsOpts ...xds.Option) error {
	reg := newRegistry()
	elector, leaseKube, err := newElector(s, reg)
	if err != nil {
		return err
	}
	opts := s.provider
	opts.NewClients = newKubeClients
	opts.Probe = kubeProbe
	opts.IsLeader = elector.IsLeader
	opts.Registerer = reg
	if s.homeConfig != nil {
		clients, err := newKubeClients(s.homeConfig)
		if err != nil {
			return fmt.Errorf("home cluster: %w", err)
		}
		opts.Home = &kubernetes.Home{Kube: clients.Kube, Dynamic: clients.Dynamic, Namespace: s.homeNamespace}
	}
	slog.Info("watching Kubernetes clusters", "clusters", len(opts.Clusters), "clusterLinks", opts.Home != nil,
		"leaderElection", s.leaseConfig != nil)
	provider := kubernetes.New(opts)
	members := provider.Registry()
	statuses, err := status.New(status.Options{
		Clients: func(cluster string) (status.Client, bool) {
			m, ok := members.Get(cluster)
			if !ok {
				return status.Client{}, false
			}
			return status.Client{Gateway: m.Clients.Gateway, Dynamic: m.Clients.Dynamic, MCS: m.Clients.MCS}, true
		},
		IsLeader:   elector.IsLeader,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	mirrors, err := mirror.New(provider.Subscribe(), mirror.Options{
		Clients: func(cluster string) (mirror.Clients, bool) {
			m, ok := members.Get(cluster)
			if !ok {
				return mirror.Clients{}, false
			}
			return mirror.Clients{Kube: m.Clients.Kube, MCS: m.Clients.MCS}, true
		},
		IsLeader:   elector.IsLeader,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	elector.OnLeading(func(context.Context) {
		statuses.Resync()
		mirrors.Resync()
	})
	srv := xds.NewServer(xdsAddr, reg, xdsOpts...)
	stages := []runnable{elector, statuses, mirrors}
	var reports proxyReporter = srv // this replica's proxies alone
	if leaseKube != nil {
		// Proxies connect to any replica; the leader writes the statuses from every one's.
		shared := kubernetes.NewSharedReports(leaseKube, srv, kubernetes.SharedReportsOptions{
			Namespace: s.leaseNamespace, Identity: elector.Identity()})
		reports = shared
		stages = append(stages, shared)
	}
	return serveControlPlane(ctx, reg, provider, srv, adminAddr, statuses.Update, reports, stages...)
}

// newElector competes for the Lease when leader election is on, and leads alone otherwise.
// It returns the client of the Lease's cluster, nil without election.
func newElector(s *kubeSetup, reg prometheus.Registerer) (*kubernetes.Elector, k8s.Interface, error) {
	opts := kubernetes.ElectionOptions{Namespace: s.leaseNamespace, Registerer: reg}
	if s.leaseConfig == nil {
		return kubernetes.NewSoleLeader(opts), nil, nil
	}
	clients, err := newKubeClients(s.leaseConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("leader election: %w", err)
	}
	elector, err := kubernetes.NewElector(clients.Kube, opts)
	return elector, clients.Kube, err
}
