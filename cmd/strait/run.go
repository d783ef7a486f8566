package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/proxy"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

func newRunCommand() *cobra.Command {
	var configPath string
	var accessLog bool
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run everything in one process: file provider, control plane and a proxy per Gateway",
		Long: `run reads a Strait config file and its clusters' manifests, translates them, serves
them over xDS, and runs one edge proxy for every Gateway, each fed by the xDS server like a
separate proxy would be. Gateways that appear or go away in the files start or stop their
proxy. SIGINT or SIGTERM drains: the proxies stop accepting and finish the requests in
flight (up to 30s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := file.Load(configPath)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{code: 1}
			}
			var log *slog.Logger
			if accessLog {
				log = slog.New(slog.NewJSONHandler(os.Stdout, nil))
			}
			return runAllInOne(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "strait.yaml", "Strait config file")
	cmd.Flags().BoolVar(&accessLog, "access-log", false, "write a JSON access log line per request to stdout")
	return cmd
}

func runAllInOne(ctx context.Context, cfg *file.Config, accessLog *slog.Logger) error {
	reg := newRegistry()
	sc := cfg.StraitConfig
	provider := file.New(cfg, file.Options{})
	cp := newControlPlane(xds.NewServer(sc.XDS, reg))
	proxies := &proxySet{ctx: ctx, xds: sc.XDS, accessLog: accessLog, running: map[string]*runningProxy{}}
	cp.onFull = proxies.sync
	admin := newAdminServer(sc.Admin, prometheus.Gatherers{reg, proxies},
		func() bool { return cp.last.Load() != nil && proxies.ready() },
		func() any { return map[string]any{"translation": cp.last.Load(), "proxies": proxies.configs()} })
	runner := translator.NewRunner(provider.Subscribe(), cp.publish, reg)
	err := runAll(ctx, provider, runner, cp.xds, admin)
	proxies.wait()
	return err
}

// proxySet runs one proxy per Gateway of the latest translation.
type proxySet struct {
	ctx       context.Context
	xds       string
	accessLog *slog.Logger

	mu      sync.Mutex
	running map[string]*runningProxy
	wg      sync.WaitGroup
}

type runningProxy struct {
	p      *proxy.Proxy
	reg    *prometheus.Registry
	cancel context.CancelFunc
}

// sync starts a proxy for every new node and stops those whose Gateway went away.
func (s *proxySet) sync(out *translator.Output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, p := range out.Proxies {
		want[p.Node] = true
		if s.running[p.Node] != nil {
			continue
		}
		// Each proxy has its own registry, gathered with a node label, so that a Gateway
		// that comes back does not collide with its old metrics.
		reg := prometheus.NewRegistry()
		px := proxy.New(proxy.Options{
			XDS:        s.xds,
			Node:       p.Node,
			AccessLog:  s.accessLog,
			Logger:     slog.Default(),
			Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"node": p.Node}, reg),
		})
		ctx, cancel := context.WithCancel(s.ctx)
		s.running[p.Node] = &runningProxy{p: px, reg: reg, cancel: cancel}
		s.wg.Go(func() {
			if err := px.Start(ctx); err != nil {
				slog.Error("proxy stopped", "node", p.Node, "error", err)
			}
		})
	}
	for node, rp := range s.running {
		if !want[node] {
			rp.cancel()
			delete(s.running, node)
		}
	}
}

// ready reports whether every proxy has its first configuration.
func (s *proxySet) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rp := range s.running {
		select {
		case <-rp.p.Ready():
		default:
			return false
		}
	}
	return true
}

// configs returns each proxy's configuration in force, for /debug/config.
func (s *proxySet) configs() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{}
	for node, rp := range s.running {
		res := rp.p.Config()
		if res == nil {
			out[node] = nil
			continue
		}
		n, err := newNodeResources(res)
		if err != nil {
			out[node] = err.Error()
			continue
		}
		out[node] = n
	}
	return out
}

// Gather merges the metrics of every running proxy.
func (s *proxySet) Gather() ([]*dto.MetricFamily, error) {
	s.mu.Lock()
	nodes := make([]string, 0, len(s.running))
	for node := range s.running {
		nodes = append(nodes, node)
	}
	sort.Strings(nodes)
	gs := make(prometheus.Gatherers, 0, len(nodes))
	for _, node := range nodes {
		gs = append(gs, s.running[node].reg)
	}
	s.mu.Unlock()
	return gs.Gather()
}

// wait returns once every proxy has drained.
func (s *proxySet) wait() { s.wg.Wait() }
