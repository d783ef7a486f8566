// Command localcluster runs local Kubernetes clusters for trying Strait and for tests:
//
//	go run ./hack/localcluster up --clusters us,eu,ap [--dir DIR] [--gateway-api-channel experimental] [--kubelet]
//
// It prints each cluster's kubeconfig and stays in the foreground until Ctrl-C or SIGTERM,
// then stops every process it started. See hack/localcluster/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/strait-gw/strait/e2e/kubelet"
	"github.com/strait-gw/strait/e2e/localcluster"
)

const usage = `usage: go run ./hack/localcluster up [flags]

Starts local Kubernetes clusters (etcd, kube-apiserver, kube-controller-manager per
cluster, on loopback) with the Gateway API, MCS API and Strait CRDs, prints their
kubeconfigs and runs until interrupted. With --kubelet (root), pods run too.

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

// run runs the command until ctx ends; out gets the clusters' kubeconfigs, errOut the
// startup log.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("localcluster up", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	clusters := fs.String("clusters", "us,eu,ap", "comma-separated cluster names")
	dir := fs.String("dir", "", "directory for the clusters' files and logs (default: a temporary directory, removed on exit)")
	channel := fs.String("gateway-api-channel", localcluster.GatewayAPIStandard, "Gateway API CRD channel: standard or experimental")
	binDir := fs.String("bin-dir", "", "directory with etcd, kube-apiserver and kube-controller-manager (default: built by hack/kube/build.sh)")
	withKubelet := fs.Bool("kubelet", false, "run a process kubelet per cluster (e2e/kubelet; needs root), so that pods run as local processes")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long startup may take once the binaries exist")
	if len(args) == 0 || args[0] != "up" {
		fs.Usage()
		return errors.New("the only command is up")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir != "" {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return err
		}
		*dir = abs
	}

	// Building missing binaries can take minutes and is not part of the startup timeout.
	bins, err := localcluster.FindBinaries(ctx, *binDir)
	if err != nil {
		return err
	}
	var addons []localcluster.Addon
	if *withKubelet {
		addons = append(addons, kubelet.Addon(nil))
	}
	startCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	began := time.Now()
	fleet, err := localcluster.Start(startCtx, localcluster.Options{
		Clusters:          strings.Split(*clusters, ","),
		Dir:               *dir,
		BinDir:            filepath.Dir(bins.KubeAPIServer),
		GatewayAPIChannel: *channel,
		Logger:            slog.New(slog.NewTextHandler(errOut, nil)),
		Addons:            addons,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping...")
		if err := fleet.Stop(); err != nil {
			fmt.Fprintln(errOut, "localcluster: stopping:", err)
		}
	}()

	fmt.Fprintf(out, "%d clusters ready in %.1fs; files and logs in %s\n\n", len(fleet.Clusters), time.Since(began).Seconds(), fleet.Dir)
	var paths []string
	for _, c := range fleet.Clusters {
		fmt.Fprintf(out, "%-8s %s  kubeconfig %s  pods %s  services %s\n", c.Name, c.URL, c.Kubeconfig, c.PodCIDR, c.ServiceCIDR)
		paths = append(paths, c.Kubeconfig)
	}
	fmt.Fprintf(out, "\n# every cluster, one context each (kubectl --context %s):\nexport KUBECONFIG=%s\n", fleet.Clusters[0].Name, strings.Join(paths, ":"))
	for _, c := range fleet.Clusters {
		fmt.Fprintf(out, "# only %s:\n#   export KUBECONFIG=%s\n", c.Name, c.Kubeconfig)
	}
	fmt.Fprintln(out, "\nCtrl-C stops the clusters.")
	<-ctx.Done()
	return nil
}
