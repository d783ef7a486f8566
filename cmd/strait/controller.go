package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

func newControllerCommand() *cobra.Command {
	var configPath, xdsAddr, adminAddr string
	var kf kubeFlags
	cmd := &cobra.Command{
		Use:   "controller [--config FILE] [--kubeconfig NAME=PATH]... [--home-kubeconfig PATH | --in-cluster]",
		Short: "Run the control plane: translate the clusters' resources and serve them over xDS",
		Long: `controller watches the member clusters' resources, translates them on every change
and serves the result to proxies over xDS (ADS, state-of-the-world and delta, on gRPC).

With --config alone, and a config file whose clusters have manifests directories, it reads
the files and re-publishes when one changes.

With Kubernetes clusters it watches their API servers. Clusters come from --kubeconfig
NAME=PATH flags, from config file entries that have a kubeconfig instead of manifests (the
file then also gives each cluster's region, zone, network and labels; a flag overrides the
entry's kubeconfig), and from the ClusterLinks of the home cluster (--home-kubeconfig or
--in-cluster) in --namespace. Replicas elect a leader with the Lease strait-controller in
the home cluster, or in the first --kubeconfig cluster without one; every replica serves
xDS, only the leader writes statuses.

--xds and --admin override the file's addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *file.Config
			if cmd.Flags().Changed("config") || !kf.given() {
				var err error
				if cfg, err = file.Load(configPath); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					return exitError{code: 1}
				}
			}
			sc := straitv1alpha1.StraitConfig{}
			sc.Default()
			if cfg != nil {
				sc = cfg.StraitConfig
			}
			if xdsAddr == "" {
				xdsAddr = sc.XDS
			}
			if adminAddr == "" {
				adminAddr = sc.Admin
			}
			xdsOpts := []xds.Option{xdsServerTLS(cmd)}
			if !kf.given() && !hasKubeconfigClusters(cfg) {
				return runControlPlane(cmd.Context(), cfg, xdsAddr, adminAddr, xdsOpts...)
			}
			setup, err := kf.setup(cfg)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "strait controller:", err)
				return exitError{code: 1}
			}
			return runKubeControlPlane(cmd.Context(), setup, xdsAddr, adminAddr, xdsOpts...)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "strait.yaml", "Strait config file (optional with Kubernetes clusters)")
	cmd.Flags().StringVar(&xdsAddr, "xds", "", "xDS listen address (default: the config file's xds)")
	cmd.Flags().StringVar(&adminAddr, "admin", "", "admin listen address (default: the config file's admin)")
	addXDSServerTLSFlags(cmd)
	kf.register(cmd.Flags())
	return cmd
}

// controlPlane is the running pipeline: provider -> translator -> xDS server.
type controlPlane struct {
	xds *xds.Server
	// last is the last translation published, for /debug/config.
	last atomic.Pointer[translator.Output]
	// onFull, if set, is called after each full (not endpoint-only) publish.
	onFull func(*translator.Output)
	// published gets a token (without blocking) after each full publish.
	published chan struct{}
}

func newControlPlane(srv *xds.Server) *controlPlane {
	return &controlPlane{xds: srv, published: make(chan struct{}, 1)}
}

// publish hands a translation to the xDS server; endpoint-only changes take the fast path.
func (cp *controlPlane) publish(out *translator.Output, endpointsOnly bool) {
	var err error
	if endpointsOnly {
		err = cp.xds.UpdateEndpoints(out.Proxies)
	} else {
		err = cp.xds.Update(out.Proxies)
	}
	if err != nil {
		// The server kept the last good snapshot of every proxy it could not build.
		slog.Error("publishing xDS", "error", err)
	}
	cp.last.Store(out)
	if endpointsOnly {
		return
	}
	if cp.onFull != nil {
		cp.onFull(out)
	}
	select {
	case cp.published <- struct{}{}:
	default: // the reporter has yet to read the last one, and will read this publish then
	}
}

// proxyReporter tells what the proxies of each node report: the xDS server of this replica,
// or kubernetes.SharedReports over every replica.
type proxyReporter interface {
	ProxyReport(node string) translator.ProxyReport
	ProxyChanges() <-chan struct{}
}

// reportStatuses hands report the statuses of the last full publish, with each Gateway's
// Programmed condition and addresses following what its proxies report
// (translator.WithProxyReports), after every full publish and every change in those reports,
// until ctx ends.
func (cp *controlPlane) reportStatuses(ctx context.Context, reports proxyReporter, report func([]translator.Status)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cp.published:
		case <-reports.ProxyChanges():
		}
		if out := cp.last.Load(); out != nil {
			report(translator.WithProxyReports(out.Statuses, reports.ProxyReport))
		}
	}
}

// runnable is a stage of a Strait process.
type runnable interface {
	Name() string
	Start(context.Context) error
}

// stage is a runnable made of a function.
type stage struct {
	name  string
	start func(context.Context) error
}

func (s stage) Name() string                    { return s.name }
func (s stage) Start(ctx context.Context) error { return s.start(ctx) }

// runAll starts every stage and returns when ctx ends or one of them fails, stopping the
// others.
func runAll(ctx context.Context, stages ...runnable) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range stages {
		g.Go(func() error {
			if err := r.Start(ctx); err != nil {
				return fmt.Errorf("%s: %w", r.Name(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// newRegistry returns a registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func runControlPlane(ctx context.Context, cfg *file.Config, xdsAddr, adminAddr string, xdsOpts ...xds.Option) error {
	reg := newRegistry()
	return serveControlPlane(ctx, reg, file.New(cfg, file.Options{}), xds.NewServer(xdsAddr, reg, xdsOpts...), adminAddr, nil, nil)
}

// inputProvider is a provider: a runner that publishes translator inputs.
type inputProvider interface {
	runnable
	Subscribe() <-chan *translator.Input
}

// serveControlPlane runs provider -> translator -> xDS server srv, the admin server and the
// other stages given; with writeStatuses, also cp.reportStatuses with reports.
func serveControlPlane(ctx context.Context, reg *prometheus.Registry, provider inputProvider, srv *xds.Server, adminAddr string,
	writeStatuses func([]translator.Status), reports proxyReporter, stages ...runnable) error {
	cp := newControlPlane(srv)
	if writeStatuses != nil {
		stages = append(stages, stage{"status reports", func(ctx context.Context) error {
			return cp.reportStatuses(ctx, reports, writeStatuses)
		}})
	}
	admin := newAdminServer(adminAddr, reg,
		func() bool { return cp.last.Load() != nil },
		func() any { return cp.last.Load() })
	runner := translator.NewRunner(provider.Subscribe(), cp.publish, reg)
	return runAll(ctx, append([]runnable{provider, runner, cp.xds, admin}, stages...)...)
}
