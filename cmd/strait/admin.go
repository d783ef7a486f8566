package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves the admin port every Strait process has: /healthz, /readyz, /metrics,
// /debug/config and /debug/pprof.
type adminServer struct {
	addr     string
	registry *prometheus.Registry
	// ready turns true once the first full configuration is in place.
	ready atomic.Bool
	// config returns the current configuration for /debug/config.
	config atomic.Pointer[func() any]
}

func newAdminServer(addr string, registry *prometheus.Registry) *adminServer {
	return &adminServer{addr: addr, registry: registry}
}

// Name names the runner in logs.
func (a *adminServer) Name() string { return "admin" }

// setConfig sets what /debug/config shows.
func (a *adminServer) setConfig(f func() any) { a.config.Store(&f) }

func (a *adminServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "no configuration yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, _ *http.Request) {
		var cfg any
		if f := a.config.Load(); f != nil {
			cfg = (*f)()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(cfg)
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Start serves until ctx is done.
func (a *adminServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	//nolint:gosec // G118: ctx is done by then; the shutdown needs a fresh deadline of its own
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	slog.Info("admin server listening", "address", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
