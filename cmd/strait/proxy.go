package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/strait-gw/strait/proxy"
)

func newProxyCommand() *cobra.Command {
	var xdsAddr, node, adminAddr string
	var advertise []string
	var accessLog bool
	cmd := &cobra.Command{
		Use:   "proxy --xds ADDR --node CLUSTER/NAMESPACE/GATEWAY",
		Short: "Run an edge proxy for one Gateway, configured over xDS",
		Long: `proxy connects to a Strait control plane over ADS, asks for the configuration of
one Gateway (its node id) and serves that Gateway's listeners. It keeps serving its last
good configuration while the control plane is away, and rejects (NACKs) a configuration it
cannot honor. With --xds-cert, --xds-key and --xds-ca it authenticates with mTLS, reading the
files again on every connection so that rotated certificates need no restart; without them
it connects in plaintext, to a loopback address or unix socket only. SIGINT or SIGTERM drains: it stops accepting and finishes the requests in
flight (up to 30s).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := newRegistry()
			var log *slog.Logger
			if accessLog {
				log = slog.New(slog.NewJSONHandler(os.Stdout, nil))
			}
			creds, err := xdsClientCredentials(cmd)
			if err != nil {
				return err
			}
			for _, a := range advertise {
				if !validAddress(a) {
					return fmt.Errorf("--advertise-address %q: want an IP address or a DNS name", a)
				}
			}
			p := proxy.New(proxy.Options{XDS: xdsAddr, XDSCredentials: creds, Node: node, Addresses: advertise, AccessLog: log, Registerer: reg})
			ready := func() bool {
				select {
				case <-p.Ready():
					return true
				default:
					return false
				}
			}
			admin := newAdminServer(adminAddr, reg, ready, func() any {
				res := p.Config()
				if res == nil {
					return nil
				}
				n, err := newNodeResources(res)
				if err != nil {
					return err.Error()
				}
				return n
			})
			return runAll(cmd.Context(), p, admin)
		},
	}
	cmd.Flags().StringVar(&xdsAddr, "xds", "127.0.0.1:18000", "control plane xDS address (host:port or unix:///path)")
	cmd.Flags().StringVar(&node, "node", "", "node id: <cluster>/<namespace>/<gateway> (required)")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:9902", "admin listen address")
	cmd.Flags().StringSliceVar(&advertise, "advertise-address", nil,
		"address clients reach this proxy at (IP or DNS name; repeatable), reported in the Gateway's status.addresses when the Gateway names none")
	cmd.Flags().BoolVar(&accessLog, "access-log", false, "write a JSON access log line per request to stdout")
	addXDSClientTLSFlags(cmd)
	_ = cmd.MarkFlagRequired("node")
	return cmd
}

// validAddress accepts an IP address or a DNS subdomain name.
func validAddress(a string) bool {
	if _, err := netip.ParseAddr(a); err == nil {
		return true
	}
	return len(validation.IsDNS1123Subdomain(a)) == 0
}
