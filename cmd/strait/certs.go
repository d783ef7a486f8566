package main

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-gw/strait/internal/pki"
	"github.com/strait-gw/strait/xds"
)

// Names of the CA's files in a certs directory.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
)

func newCertsCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the control plane's CA and the xDS certificates it signs",
		Long: `certs keeps a small CA for xDS mTLS in a directory (--dir): "certs ca" creates it
(ca.crt, ca.key), "certs server" issues the control plane's server certificate and "certs
proxy" a proxy's client certificate, whose SPIFFE ID names its node. Each writes NAME.crt
and NAME.key into the directory, keys with mode 0600, replacing the files in one step each
so that a running proxy or controller picks up the new pair. Give ca.crt to the controller
(--xds-client-ca) and to proxies (--xds-ca).`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", ".", "directory of the CA and the certificates")
	validFor := func(c *cobra.Command, def time.Duration) *time.Duration {
		d := new(time.Duration)
		c.Flags().DurationVar(d, "valid-for", def, "validity of the certificate")
		return d
	}

	ca := &cobra.Command{
		Use:   "ca",
		Short: "Create the CA (ca.crt, ca.key); an existing one is kept",
		Args:  cobra.NoArgs,
	}
	caValid := validFor(ca, 10*365*24*time.Hour)
	ca.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := createCA(dir, *caValid); err != nil {
			return err
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
		return err
	}

	var names []string
	var serverOut string
	server := &cobra.Command{
		Use:   "server --name HOST [--name IP]...",
		Short: "Issue the xDS server certificate for DNS names and IP addresses",
		Args:  cobra.NoArgs,
	}
	server.Flags().StringSliceVar(&names, "name", nil, "DNS name or IP address proxies reach the control plane at (repeatable)")
	server.Flags().StringVar(&serverOut, "out", "xds-server", "base name of the files written")
	_ = server.MarkFlagRequired("name")
	serverValid := validFor(server, 365*24*time.Hour)
	server.RunE = func(cmd *cobra.Command, _ []string) error {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		return issue(cmd, dir, serverOut, tmpl, *serverValid)
	}

	var node, trustDomain, proxyOut string
	proxy := &cobra.Command{
		Use:   "proxy --node CLUSTER/NAMESPACE/GATEWAY",
		Short: "Issue a proxy's client certificate, whose SPIFFE ID names its node",
		Args:  cobra.NoArgs,
	}
	proxy.Flags().StringVar(&node, "node", "", "node id of the proxy: <cluster>/<namespace>/<gateway> (required)")
	proxy.Flags().StringVar(&trustDomain, "trust-domain", xds.DefaultTrustDomain, "SPIFFE trust domain, as given to the controller")
	proxy.Flags().StringVar(&proxyOut, "out", "", "base name of the files written (default: proxy_<cluster>_<namespace>_<gateway>)")
	_ = proxy.MarkFlagRequired("node")
	proxyValid := validFor(proxy, 365*24*time.Hour)
	proxy.RunE = func(cmd *cobra.Command, _ []string) error {
		id, err := xds.SPIFFEID(trustDomain, node)
		if err != nil {
			return err
		}
		if proxyOut == "" {
			proxyOut = "proxy_" + strings.ReplaceAll(node, "/", "_")
		}
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: node}, URIs: []*url.URL{id}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		return issue(cmd, dir, proxyOut, tmpl, *proxyValid)
	}

	cmd.AddCommand(ca, server, proxy)
	return cmd
}

// createCA writes a new self-signed CA into dir, refusing to replace one: every certificate
// it signed would stop being trusted.
func createCA(dir string, validFor time.Duration) error {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: not replacing the CA, which would invalidate every certificate it signed (remove it first to start over)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "strait xds CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca, err := pki.Issue(tmpl, nil, validFor)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, ca)
}

// issue signs tmpl with the CA in dir and writes name.crt and name.key there.
func issue(cmd *cobra.Command, dir, name string, tmpl *x509.Certificate, validFor time.Duration) error {
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
	if err != nil {
		return fmt.Errorf("load the CA (create it with `strait certs ca`): %w", err)
	}
	signer, ok := ca.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("CA key %s: not an ECDSA key", filepath.Join(dir, caKeyFile))
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	pair, err := pki.Issue(tmpl, &pki.Pair{Cert: ca.Leaf, Key: signer}, validFor)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writePair(certPath, keyPath, pair); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", certPath, keyPath)
	return err
}

// writePair writes the key (mode 0600) and then the certificate, each replaced in one step.
func writePair(certPath, keyPath string, pair *pki.Pair) error {
	keyPEM, err := pair.KeyPEM()
	if err != nil {
		return err
	}
	if err := replaceFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return replaceFile(certPath, pair.CertPEM(), 0o644)
}

// replaceFile writes data to a temporary file beside path and renames it over path, so a
// reader sees the old content or the new, never a part.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
