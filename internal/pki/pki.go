// Package pki makes ECDSA P-256 keys and X.509 certificates: the xDS CA and certificates of
// `strait certs`, and the throwaway CAs of tests, local clusters and process kubelets.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// clockSlack backdates every certificate, for clocks a little behind this one.
const clockSlack = time.Hour

// Pair is a certificate and its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issue makes a new key and a certificate for it from tmpl, signed by issuer, or self-signed
// when issuer is nil. It sets tmpl's serial number (128 random bits) and validity (from
// clockSlack ago until validFor from now); the rest of tmpl (names, key usages, CA
// constraints) is the caller's.
func Issue(tmpl *x509.Certificate, issuer *Pair, validFor time.Duration) (*Pair, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-clockSlack)
	tmpl.NotAfter = now.Add(validFor)
	parent, parentKey := tmpl, key
	if issuer != nil {
		parent, parentKey = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	return &Pair{Cert: cert, Key: key}, nil
}

// NewKey returns a new P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new key: %w", err)
	}
	return key, nil
}

// CertPEM is the certificate, PEM encoded.
func (p *Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM is the private key, PEM encoded.
func (p *Pair) KeyPEM() ([]byte, error) {
	return KeyPEM(p.Key)
}

// TLS is the pair as a TLS certificate, without intermediates.
func (p *Pair) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key, Leaf: p.Cert}
}

// KeyPEM encodes key as a PKCS #8 "PRIVATE KEY" PEM block, which Go's crypto/tls and
// Kubernetes' key files both read.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
