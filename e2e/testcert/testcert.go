// Package testcert issues throwaway certificates for tests: a self-signed CA and leaf
// certificates it signs.
package testcert

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/strait-gw/strait/internal/pki"
)

// validFor is how long the certificates are valid; each is also valid for an hour before now.
const validFor = time.Hour

// CA is a certificate authority valid for an hour around now.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate; Pool trusts it.
	PEM  []byte
	Pool *x509.CertPool
}

// NewCA returns a new self-signed CA.
func NewCA(t testing.TB) *CA {
	t.Helper()
	pair, err := pki.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "strait test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, validFor)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: pair.Cert, Key: pair.Key, PEM: pair.CertPEM(), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(pair.Cert)
	return ca
}

// Issue returns a leaf certificate for names (DNS names, IP addresses, or URIs when they have
// a scheme) with the given extended key usage, and its PEM certificate and key.
func (ca *CA) Issue(t testing.TB, usage x509.ExtKeyUsage, names ...string) (cert tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if u, err := url.Parse(n); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	pair, err := pki.Issue(tmpl, &pki.Pair{Cert: ca.Cert, Key: ca.Key}, validFor)
	if err != nil {
		t.Fatal(err)
	}
	if keyPEM, err = pair.KeyPEM(); err != nil {
		t.Fatal(err)
	}
	return pair.TLS(), pair.CertPEM(), keyPEM
}
