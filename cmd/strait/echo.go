package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-gw/strait/e2e/echo"
)

func newEchoCommand() *cobra.Command {
	var listen string
	id := echo.IdentityFromEnv()
	cmd := &cobra.Command{
		Use:   "echo --listen ADDR [--cluster NAME --namespace NS --pod NAME]",
		Short: "Run an echo backend that answers with JSON naming its cluster, namespace and pod",
		Long: `echo answers every HTTP request with a JSON description of the request and of where
it was served (cluster, namespace, pod), like the Gateway API conformance echo server. The
flags default to the CLUSTER, NAMESPACE, POD_NAME and SERVICE_NAME environment variables.
A request header "X-Echo-Set-Status: 503" sets the answer's status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveEcho(cmd.Context(), listen, id)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "listen address")
	cmd.Flags().StringVar(&id.Cluster, "cluster", id.Cluster, "cluster name to report")
	cmd.Flags().StringVar(&id.Namespace, "namespace", id.Namespace, "namespace to report")
	cmd.Flags().StringVar(&id.Pod, "pod", id.Pod, "pod name to report")
	return cmd
}

// serveEcho serves an echo backend until ctx ends.
func serveEcho(ctx context.Context, listen string, id echo.Identity) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: echo.Handler(id), ReadHeaderTimeout: 10 * time.Second}
	slog.Info("echo backend listening", "address", ln.Addr().String(), "cluster", id.Cluster, "pod", id.Pod)
	return serveHTTP(ctx, ln, srv)
}
