// Package localcluster runs real Kubernetes control planes on loopback, without Docker or
// root: per cluster an etcd, a kube-apiserver and a kube-controller-manager, with the Gateway
// API, MCS API and Strait CRDs installed. No kubelet or scheduler runs unless an Addon
// starts one, so pods stay Pending unless something else plays the node.
//
//	fleet, err := localcluster.Start(ctx, localcluster.Options{Clusters: []string{"us", "eu"}})
//	defer fleet.Stop()
//	client, _ := kubernetes.NewForConfig(fleet.Cluster("eu").Config)
//
// The binaries come from hack/kube/build.sh, which builds them on first use.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
)

// maxClusters is how many clusters get distinct 10.244.<index>.0/24 pod CIDRs.
const maxClusters = 256

// Options say which clusters to start and how.
type Options struct {
	// Clusters names the clusters to start (DNS labels); the first gets index FirstIndex.
	Clusters []string
	// FirstIndex numbers the clusters (their CIDRs and kubelet bridges) from this value, 0 by
	// default. Fleets with kubelets that may run at the same time on one machine (test
	// packages under `go test ./...`) take different ranges, so they never wait for each
	// other's bridges.
	FirstIndex int
	// Dir is where each cluster gets a directory named after it, with its certificates,
	// kubeconfig, etcd data and logs. Empty: a temporary directory that Stop removes.
	Dir string
	// BinDir holds etcd, kube-apiserver and kube-controller-manager. Empty: whatever
	// hack/kube/build.sh names, after building what is missing.
	BinDir string
	// GatewayAPIChannel is the Gateway API release channel whose CRDs are installed:
	// GatewayAPIStandard (the default) or GatewayAPIExperimental.
	GatewayAPIChannel string
	// Logger gets a line per cluster and startup step, with the time it took. Default:
	// none.
	Logger *slog.Logger
	// Addons start per-cluster components once the cluster's control plane is ready (its
	// CRDs Established, its controller manager running), in order; Stop stops them in
	// reverse order before the control plane.
	Addons []Addon
}

// Addon starts a component for one cluster, a process kubelet (e2e/kubelet) for example,
// and returns how to stop it. It runs for every cluster, concurrently across clusters.
type Addon func(ctx context.Context, c *Cluster) (stop func() error, err error)

// Fleet is a set of running local clusters.
type Fleet struct {
	// Dir holds one directory per cluster.
	Dir string
	// Clusters are in the order of Options.Clusters.
	Clusters []*Cluster

	removeDir bool
	stopOnce  sync.Once
	stopErr   error
}

// Cluster returns the cluster named name, or nil.
func (f *Fleet) Cluster(name string) *Cluster {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Start starts the clusters in parallel and returns once every one serves, has its CRDs
// Established and runs its controller manager and addons. ctx bounds the startup only: the
// clusters run until Stop. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if len(opts.Clusters) == 0 || opts.FirstIndex < 0 || opts.FirstIndex+len(opts.Clusters) > maxClusters {
		return nil, fmt.Errorf("localcluster: %d clusters from index %d, want 1 or more within 0 to %d",
			len(opts.Clusters), opts.FirstIndex, maxClusters-1)
	}
	for i, name := range opts.Clusters {
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("localcluster: cluster name %q: %v", name, errs)
		}
		if slices.Contains(opts.Clusters[:i], name) {
			return nil, fmt.Errorf("localcluster: cluster %q named twice", name)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.GatewayAPIChannel == "" {
		opts.GatewayAPIChannel = GatewayAPIStandard
	}
	manifests, err := Manifests(opts.GatewayAPIChannel)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	bins, err := FindBinaries(ctx, opts.BinDir)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}

	f := &Fleet{Dir: opts.Dir}
	if f.Dir == "" {
		if f.Dir, err = os.MkdirTemp("", "localcluster-"); err != nil {
			return nil, fmt.Errorf("localcluster: %w", err)
		}
		f.removeDir = true
	}
	// All ports at once, so that no cluster gets a port another one just released.
	ports, err := FreePorts(portsPerCluster * len(opts.Clusters))
	if err != nil {
		_ = f.Stop()
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	for i, name := range opts.Clusters {
		c, err := newCluster(name, opts.FirstIndex+i, filepath.Join(f.Dir, name), ports[i*portsPerCluster:(i+1)*portsPerCluster], bins)
		if err != nil {
			_ = f.Stop()
			return nil, fmt.Errorf("localcluster: %w", err)
		}
		f.Clusters = append(f.Clusters, c)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, c := range f.Clusters {
		g.Go(func() error {
			began := time.Now()
			if err := c.start(gctx, log); err != nil {
				return fmt.Errorf("cluster %s: %w", c.Name, err)
			}
			client, err := dynamic.NewForConfig(c.Config)
			if err != nil {
				return fmt.Errorf("cluster %s: client: %w", c.Name, err)
			}
			// The controller manager starts while the CRDs are installed.
			if err := installManifests(gctx, client, manifests); err != nil {
				return fmt.Errorf("cluster %s: %w\n%s", c.Name, err, c.apiserver.logTail())
			}
			log.Info("CRDs Established", "cluster", c.Name, "after", since(began))
			if err := c.waitForControllerManager(gctx); err != nil {
				return fmt.Errorf("cluster %s: %w", c.Name, err)
			}
			log.Info("kube-controller-manager working", "cluster", c.Name, "after", since(began))
			for _, addon := range opts.Addons {
				stop, err := addon(gctx, c)
				if err != nil {
					return fmt.Errorf("cluster %s: addon: %w", c.Name, err)
				}
				c.addonStops = append(c.addonStops, stop)
			}
			log.Info("cluster ready", "cluster", c.Name, "after", since(began))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_ = f.Stop()
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	return f, nil
}

// Stop stops every cluster (addons, then controller manager, API server and etcd) and
// waits until all their processes have exited; it removes Dir when Start created it.
// Calling it again does nothing.
func (f *Fleet) Stop() error {
	f.stopOnce.Do(func() {
		errs := make([]error, len(f.Clusters))
		var wg sync.WaitGroup
		for i, c := range f.Clusters {
			wg.Go(func() { errs[i] = c.stop() })
		}
		wg.Wait()
		if f.removeDir {
			errs = append(errs, os.RemoveAll(f.Dir))
		}
		f.stopErr = errors.Join(errs...)
	})
	return f.stopErr
}

// startupTimeout bounds StartForTest's startup once the binaries exist: a few seconds
// are typical, this leaves room for a machine busy with other builds and tests.
const startupTimeout = 2 * time.Minute

// StartForTest starts clusters for a test, failing it when they do not start, and stops
// them when the test ends. Dir defaults to a directory of the test's. Building missing
// binaries (minutes, the first time on a machine) is bounded only by the test's timeout.
func StartForTest(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	bins, err := FindBinaries(t.Context(), opts.BinDir)
	if err != nil {
		t.Fatal(err)
	}
	opts.BinDir = filepath.Dir(bins.KubeAPIServer)
	ctx, cancel := context.WithTimeout(t.Context(), startupTimeout)
	defer cancel()
	f, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The logs go with the test's temporary directory: show their ends first.
		if t.Failed() {
			for _, c := range f.Clusters {
				for _, p := range []*process{c.apiserver, c.controllerManager} {
					t.Logf("cluster %s: %s", c.Name, p.logTail())
				}
			}
		}
		if err := f.Stop(); err != nil {
			t.Errorf("stopping local clusters: %v", err)
		}
	})
	return f
}
