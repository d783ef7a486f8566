package localcluster

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"time"

	"github.com/strait-gw/strait/internal/pki"
)

// certValidity is long enough for a cluster a user keeps running for days.
const certValidity = 365 * 24 * time.Hour

// authority is a cluster's certificate authority: it signs the API server's serving
// certificate and every client certificate, and kube-apiserver trusts it for clients.
type authority struct {
	*pki.Pair
}

// keyPair is a PEM certificate and its PEM private key.
type keyPair struct {
	cert, key []byte
}

func newAuthority(name string) (*authority, error) {
	pair, err := pki.Issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "localcluster " + name + " CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, certValidity)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	return &authority{pair}, nil
}

// serving issues the API server's certificate for the given names and IPs.
func (a *authority) serving(dnsNames []string, ips []net.IP) (keyPair, error) {
	return a.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	})
}

// client issues a client certificate: Kubernetes reads the user from the common name
// and the groups from the organizations.
func (a *authority) client(user string, groups ...string) (keyPair, error) {
	return a.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (a *authority) issue(tmpl *x509.Certificate) (keyPair, error) {
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	pair, err := pki.Issue(tmpl, a.Pair, certValidity)
	if err != nil {
		return keyPair{}, err
	}
	keyPEM, err := pair.KeyPEM()
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: pair.CertPEM(), key: keyPEM}, nil
}

// serviceAccountKeys returns a new key pair, PEM encoded, with which kube-apiserver signs
// service account tokens and verifies them.
func serviceAccountKeys() (private, public []byte, err error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, nil, fmt.Errorf("service account key: %w", err)
	}
	if private, err = pki.KeyPEM(key); err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("service account public key: %w", err)
	}
	return private, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
