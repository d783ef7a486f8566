package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer serves the admin port every Strait process has: /healthz, /readyz, /metrics,
// /debug/config and /debug/pprof.
type adminServer struct {
	addr     string
	gatherer prometheus.Gatherer
	// ready reports whether the process serves its full configuration.
	ready func() bool
	// config returns the current configuration for /debug/config.
	config func() any
}

func newAdminServer(addr string, gatherer prometheus.Gatherer, ready func() bool, config func() any) *adminServer {
	return &adminServer{addr: addr, gatherer: gatherer, ready: ready, config: config}
}

// Name names the runner in logs.
func (a *adminServer) Name() string { return "admin" }

func (a *adminServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready() {
			http.Error(w, "no configuration yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, _ *http.Request) {
		cfg := a.config()
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
	slog.Info("admin server listening", "address", ln.Addr().String())
	return serveHTTP(ctx, ln, srv)
}

// serveHTTP serves srv on ln until ctx ends, then shuts it down gracefully.
func serveHTTP(ctx context.Context, ln net.Listener, srv *http.Server) error {
	//nolint:gosec // G118: ctx is done by then; the shutdown needs a fresh deadline of its own
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
