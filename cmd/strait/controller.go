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

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

func newControllerCommand() *cobra.Command {
	var configPath, xdsAddr, adminAddr string
	cmd := &cobra.Command{
		Use:   "controller --config FILE",
		Short: "Run the control plane: translate the clusters' resources and serve them over xDS",
		Long: `controller watches the member clusters' resources, translates them on every change
and serves the result to proxies over xDS (ADS, state-of-the-world and delta, on gRPC).
With --config it reads the clusters from a Strait config file and their directories of
manifests, re-publishing when a file changes. --xds and --admin override the file's
addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := file.Load(configPath)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{code: 1}
			}
			if xdsAddr == "" {
				xdsAddr = cfg.StraitConfig.XDS
			}
			if adminAddr == "" {
				adminAddr = cfg.StraitConfig.Admin
			}
			return runControlPlane(cmd.Context(), cfg, xdsAddr, adminAddr, xdsServerTLS(cmd))
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "strait.yaml", "Strait config file")
	cmd.Flags().StringVar(&xdsAddr, "xds", "", "xDS listen address (default: the config file's xds)")
	cmd.Flags().StringVar(&adminAddr, "admin", "", "admin listen address (default: the config file's admin)")
	addXDSServerTLSFlags(cmd)
	return cmd
}

// controlPlane is the running pipeline: provider -> translator -> xDS server.
type controlPlane struct {
	xds *xds.Server
	// last is the last translation published, for /debug/config.
	last atomic.Pointer[translator.Output]
	// onFull, if set, is called after each full (not endpoint-only) publish.
	onFull func(*translator.Output)
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
	if !endpointsOnly && cp.onFull != nil {
		cp.onFull(out)
	}
}

// runnable is a stage of a Strait process.
type runnable interface {
	Name() string
	Start(context.Context) error
}

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
	provider := file.New(cfg, file.Options{})
	cp := &controlPlane{xds: xds.NewServer(xdsAddr, reg, xdsOpts...)}
	admin := newAdminServer(adminAddr, reg,
		func() bool { return cp.last.Load() != nil },
		func() any { return cp.last.Load() })
	runner := translator.NewRunner(provider.Subscribe(), cp.publish, reg)
	return runAll(ctx, provider, runner, cp.xds, admin)
}
