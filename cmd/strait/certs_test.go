package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// strait runs a command line in-process and returns its error and output.
func strait(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// mustStrait is strait failing the test on an error.
func mustStrait(t *testing.T, args ...string) {
	t.Helper()
	if out, err := strait(context.Background(), args...); err != nil {
		t.Fatalf("strait %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// writeConfig writes a Strait config file with one cluster, "us", whose manifests are in
// dir/us, and returns its path.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	config := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: strait.dev/v1alpha1\nkind: StraitConfig\nclusters:\n- {name: us, manifests: us}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "us"), 0o755); err != nil {
		t.Fatal(err)
	}
	return config
}

// TestCerts checks the files `strait certs` writes: private keys only the owner can read,
// certificates that chain to the CA with the names and SPIFFE ID asked for, and a CA that is
// never replaced.
func TestCerts(t *testing.T) {
	dir := t.TempDir()
	mustStrait(t, "certs", "ca", "--dir", dir)
	mustStrait(t, "certs", "server", "--dir", dir, "--name", "xds.example.com", "--name", "10.1.2.3")
	mustStrait(t, "certs", "proxy", "--dir", dir, "--node", "us/default/web", "--trust-domain", "example.org")

	for _, key := range []string{"ca.key", "xds-server.key", "proxy_us_default_web.key"} {
		info, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, info.Mode().Perm())
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))

	server := readCert(t, filepath.Join(dir, "xds-server.crt"))
	for _, name := range []string{"xds.example.com", "10.1.2.3"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	proxy := readCert(t, filepath.Join(dir, "proxy_us_default_web.crt"))
	if _, err := proxy.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("proxy certificate: %v", err)
	}
	if len(proxy.URIs) != 1 || proxy.URIs[0].String() != "spiffe://example.org/cluster/us/ns/default/gateway/web" {
		t.Errorf("proxy certificate URIs %v, want the one SPIFFE ID of us/default/web", proxy.URIs)
	}

	before, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := strait(context.Background(), "certs", "ca", "--dir", dir); err == nil || !strings.Contains(err.Error(), "not replacing the CA") {
		t.Errorf("a second `certs ca` gave %v, %q; want a refusal", err, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(before, after) {
		t.Error("the CA key was replaced")
	}
	if _, err := strait(context.Background(), "certs", "proxy", "--dir", dir, "--node", "us/web"); err == nil {
		t.Error("a proxy certificate for a node id without a namespace was issued")
	}
}

// TestControllerAndProxyOverMTLS runs `strait controller` and `strait proxy` with
// certificates made by `strait certs`: the proxy gets its configuration over mTLS.
func TestControllerAndProxyOverMTLS(t *testing.T) {
	dir := t.TempDir()
	mustStrait(t, "certs", "ca", "--dir", dir)
	mustStrait(t, "certs", "server", "--dir", dir, "--name", "127.0.0.1")
	mustStrait(t, "certs", "proxy", "--dir", dir, "--node", "us/default/web")
	config := writeConfig(t, dir)
	manifests := filetest.Gateway("web", "HTTP", freePortNumber(t), "")
	if err := os.WriteFile(filepath.Join(dir, "us", "gateway.yaml"), []byte(manifests), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	xdsAddr, proxyAdmin := freePort(t), freePort(t)
	file := func(name string) string { return filepath.Join(dir, name) }
	done := make(chan error, 2)
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("strait: %v", err)
			}
		}
	})
	go func() {
		_, err := strait(ctx, "controller", "--config", config, "--xds", xdsAddr, "--admin", freePort(t),
			"--xds-cert", file("xds-server.crt"), "--xds-key", file("xds-server.key"), "--xds-client-ca", file("ca.crt"))
		done <- err
	}()
	go func() {
		_, err := strait(ctx, "proxy", "--xds", xdsAddr, "--node", "us/default/web", "--admin", proxyAdmin,
			"--xds-cert", file("proxy_us_default_web.crt"), "--xds-key", file("proxy_us_default_web.key"), "--xds-ca", file("ca.crt"))
		done <- err
	}()
	waitFor(t, func() bool { return httpStatus("http://"+proxyAdmin+"/readyz") == http.StatusOK })
}

// TestXDSFlagChecks checks that the controller refuses plaintext xDS on a non-loopback
// address and TLS flags given in part.
func TestXDSFlagChecks(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"controller", "--config", config, "--xds", "0.0.0.0:0", "--admin", freePort(t)}, "--xds-cert"},
		{[]string{"controller", "--config", config, "--xds-cert", "x.crt"}, "xds-client-ca"},
		{[]string{"proxy", "--node", "us/default/web", "--xds-cert", "x.crt", "--xds-key", "x.key"}, "xds-ca"},
		{[]string{"proxy", "--node", "us/default/web", "--xds-server-name", "xds.example.com"}, "--xds-server-name needs"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := strait(ctx, tc.args...)
		cancel()
		if err == nil || !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("strait %s: got %v, %q; want an error mentioning %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}
