package main

import (
	"errors"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/strait-gw/strait/proxy/xdsclient"
	"github.com/strait-gw/strait/xds"
)

// addXDSServerTLSFlags adds the controller's xDS mTLS flags to cmd; xdsServerTLS reads them.
func addXDSServerTLSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("xds-cert", "", "xDS server certificate (PEM); with --xds-key and --xds-client-ca, xDS is served over mTLS")
	f.String("xds-key", "", "xDS server private key (PEM)")
	f.String("xds-client-ca", "", "CA bundle (PEM) that signs the proxies' client certificates")
	f.String("trust-domain", xds.DefaultTrustDomain, "SPIFFE trust domain of the proxies' identities (with --xds-cert)")
	cmd.MarkFlagsRequiredTogether("xds-cert", "xds-key", "xds-client-ca")
}

// xdsServerTLS is the xDS server option the flags of addXDSServerTLSFlags ask for: mTLS, or
// nothing (plaintext, which the server allows on loopback only) when they are not given.
// The server reads and checks the files when it starts listening.
func xdsServerTLS(cmd *cobra.Command) xds.Option {
	files := xds.TLSFiles{Cert: stringFlag(cmd, "xds-cert"), Key: stringFlag(cmd, "xds-key"), CA: stringFlag(cmd, "xds-client-ca")}
	if files.Cert == "" {
		return func(*xds.Server) {}
	}
	return xds.WithTLS(files, stringFlag(cmd, "trust-domain"))
}

// addXDSClientTLSFlags adds the proxy's xDS mTLS flags to cmd; xdsClientCredentials reads
// them.
func addXDSClientTLSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("xds-cert", "", "client certificate (PEM) carrying this proxy's SPIFFE ID; with --xds-key and --xds-ca, xDS runs over mTLS")
	f.String("xds-key", "", "client private key (PEM)")
	f.String("xds-ca", "", "CA bundle (PEM) that signs the control plane's certificate")
	f.String("xds-server-name", "", "name to verify the control plane's certificate for (default: the host of --xds)")
	cmd.MarkFlagsRequiredTogether("xds-cert", "xds-key", "xds-ca")
}

// xdsClientCredentials makes the credentials the flags of addXDSClientTLSFlags ask for, nil
// (plaintext, which the client allows to loopback only) when they are not given.
func xdsClientCredentials(cmd *cobra.Command) (credentials.TransportCredentials, error) {
	files := xds.TLSFiles{Cert: stringFlag(cmd, "xds-cert"), Key: stringFlag(cmd, "xds-key"), CA: stringFlag(cmd, "xds-ca")}
	serverName := stringFlag(cmd, "xds-server-name")
	if files.Cert == "" {
		if serverName != "" {
			return nil, errors.New("--xds-server-name needs --xds-cert, --xds-key and --xds-ca")
		}
		return nil, nil
	}
	return xdsclient.TLSCredentials(files, serverName, nil)
}

// stringFlag is the value of a string flag that cmd defines.
func stringFlag(cmd *cobra.Command, name string) string {
	v, err := cmd.Flags().GetString(name)
	if err != nil {
		panic(err) // a flag this file defines is missing: a programming error
	}
	return v
}
