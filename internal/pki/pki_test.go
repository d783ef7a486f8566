package pki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"
)

// TestIssue checks that a leaf issued by a self-signed CA chains to it, with the validity
// and names asked for, and that its PEM files load as the same TLS certificate.
func TestIssue(t *testing.T) {
	ca, err := Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := Issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "leaf"},
		DNSNames:    []string{"leaf.example"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Errorf("leaf and CA share serial number %v", leaf.Cert.SerialNumber)
	}
	now := time.Now()
	if !leaf.Cert.NotBefore.Before(now) || leaf.Cert.NotAfter.Before(now.Add(time.Hour)) || leaf.Cert.NotAfter.After(now.Add(2*time.Hour)) {
		t.Errorf("leaf valid %v to %v, want from before now to 2h from now", leaf.Cert.NotBefore, leaf.Cert.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "leaf.example"}); err != nil {
		t.Errorf("leaf does not chain to the CA: %v", err)
	}

	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tls.X509KeyPair(leaf.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Leaf.Equal(leaf.TLS().Leaf) || !leaf.Key.Equal(loaded.PrivateKey) {
		t.Error("the PEM files do not load as the issued pair")
	}
}
