package xdsclient_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/strait-gw/strait/e2e/testcert"
	"github.com/strait-gw/strait/proxy/xdsclient"
	"github.com/strait-gw/strait/xds"
)

// writeTLSFiles writes a certificate, its key and a CA bundle into a new directory.
func writeTLSFiles(t *testing.T, dir string, cert, key, ca []byte) xds.TLSFiles {
	t.Helper()
	files := xds.TLSFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "ca.crt")}
	for path, data := range map[string][]byte{files.Cert: cert, files.Key: key, files.CA: ca} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// tlsControlPlane serves testProxy over mTLS with a certificate of ca for names.
func tlsControlPlane(t *testing.T, ca *testcert.CA, names ...string) *controlPlane {
	t.Helper()
	_, cert, key := ca.Issue(t, x509.ExtKeyUsageServerAuth, names...)
	files := writeTLSFiles(t, t.TempDir(), cert, key, ca.PEM)
	return startControlPlane(testContext(t), t, "127.0.0.1:0", testProxy("10.0.0.1"), xds.WithTLS(files, ""))
}

// proxyFiles writes a proxy certificate of ca for node into dir.
func proxyFiles(t *testing.T, dir string, ca *testcert.CA, node string) xds.TLSFiles {
	t.Helper()
	id, err := xds.SPIFFEID(xds.DefaultTrustDomain, node)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, key := ca.Issue(t, x509.ExtKeyUsageClientAuth, id.String())
	return writeTLSFiles(t, dir, cert, key, ca.PEM)
}

// TestTLSRotation checks that a client over mTLS gets its node's configuration, and that
// certificate files rewritten on disk are used by the next connection: the client starts
// with a certificate for another node, which the control plane refuses, and connects once
// the files hold its own.
func TestTLSRotation(t *testing.T) {
	ca := testcert.NewCA(t)
	cp := tlsControlPlane(t, ca, "127.0.0.1")
	dir := t.TempDir()
	files := proxyFiles(t, dir, ca, "c2/default/gw")
	creds, err := xdsclient.TLSCredentials(files, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	startClientWith(testContext(t), t, xdsclient.Options{Server: cp.Addr(), Node: node, Apply: rec.apply, Credentials: creds})

	eventually(t, "the control plane to refuse the other node's certificate", func() bool {
		return cp.metric(t, "strait_xds_refused_total", map[string]string{"reason": "node_mismatch"}) > 0
	})
	rec.none(t)

	proxyFiles(t, dir, ca, node)
	got := rec.next(t).res
	if diff := diffResources(mustBuild(t, testProxy("10.0.0.1")), got); diff != "" {
		t.Errorf("applied configuration (-want +got):\n%s", diff)
	}
}

// TestTLSServerName checks that the client verifies the server's certificate for the host
// of its address, or for the name it is given instead.
func TestTLSServerName(t *testing.T) {
	ca := testcert.NewCA(t)
	cp := tlsControlPlane(t, ca, "xds.strait.internal")
	files := proxyFiles(t, t.TempDir(), ca, node)

	wrong, err := xdsclient.TLSCredentials(files, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := startClientWith(testContext(t), t, xdsclient.Options{Server: cp.Addr(), Node: node, Apply: newRecorder().apply, Credentials: wrong})
	eventually(t, "the client to refuse the server's certificate", func() bool {
		_, ok := logs.line("disconnected from xds server", "failed to verify certificate")
		return ok
	})

	right, err := xdsclient.TLSCredentials(files, "xds.strait.internal", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	startClientWith(testContext(t), t, xdsclient.Options{Server: cp.Addr(), Node: node, Apply: rec.apply, Credentials: right})
	if got := rec.next(t).res; len(got.Listeners) != 2 {
		t.Errorf("applied %d listeners, want 2", len(got.Listeners))
	}
}
