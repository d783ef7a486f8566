package xds_test

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strait-gw/strait/e2e/testcert"
	"github.com/strait-gw/strait/xds"
)

// TestTLSSourceReloads checks that rewritten files are picked up by the next call, that a
// certificate rewritten before its key keeps the previous pair in use (logged once), and that
// a rewritten CA bundle replaces the old one.
func TestTLSSourceReloads(t *testing.T) {
	dir := t.TempDir()
	files := xds.TLSFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "ca.crt")}
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca := testcert.NewCA(t)
	_, cert1, key1 := ca.Issue(t, x509.ExtKeyUsageClientAuth, spiffeID(t, nodeA))
	_, cert2, key2 := ca.Issue(t, x509.ExtKeyUsageClientAuth, spiffeID(t, nodeB))
	write(files.Cert, cert1)
	write(files.Key, key1)
	write(files.CA, ca.PEM)

	var logs bytes.Buffer
	src, err := xds.NewTLSSource(files, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	node := func() string {
		t.Helper()
		cert, _ := src.Current()
		return cert.Leaf.URIs[0].String()
	}
	if got := node(); got != spiffeID(t, nodeA) {
		t.Fatalf("certificate for %s, want %s", got, spiffeID(t, nodeA))
	}

	write(files.Cert, cert2)
	for range 2 {
		if got := node(); got != spiffeID(t, nodeA) {
			t.Errorf("a certificate without its key is in use: %s", got)
		}
	}
	if n := strings.Count(logs.String(), "not reloaded"); n != 1 {
		t.Errorf("the mismatched pair was logged %d times, want once:\n%s", n, &logs)
	}

	write(files.Key, key2)
	if got := node(); got != spiffeID(t, nodeB) {
		t.Errorf("certificate for %s after rotation, want %s", got, spiffeID(t, nodeB))
	}

	other := testcert.NewCA(t)
	write(files.CA, other.PEM)
	if _, pool := src.Current(); !pool.Equal(other.Pool) {
		t.Error("the rewritten CA bundle is not in use")
	}
}

// TestTLSSourceRefusesBadFiles checks that missing or unusable files fail at once.
func TestTLSSourceRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t)
	_, cert, key := ca.Issue(t, x509.ExtKeyUsageClientAuth, spiffeID(t, nodeA))
	paths := writeFiles(t, dir, map[string][]byte{"cert": cert, "key": key, "ca": ca.PEM, "empty": nil}, "cert", "key", "ca", "empty")
	for name, files := range map[string]xds.TLSFiles{
		"missing CA":        {Cert: paths[0], Key: paths[1], CA: filepath.Join(dir, "nonexistent")},
		"no CA given":       {Cert: paths[0], Key: paths[1]},
		"empty CA":          {Cert: paths[0], Key: paths[1], CA: paths[3]},
		"key is not a key":  {Cert: paths[0], Key: paths[2], CA: paths[2]},
		"cert is not PEM":   {Cert: paths[3], Key: paths[1], CA: paths[2]},
		"swapped cert, key": {Cert: paths[1], Key: paths[0], CA: paths[2]},
	} {
		if _, err := xds.NewTLSSource(files, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
