package xds

import (
	"bytes"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/strait-gw/strait/translator/ir"
)

// addSecret publishes a certificate once, however many chains serve it.
func (b *builder) addSecret(c *ir.Certificate) error {
	if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
		return fmt.Errorf("certificate %q: empty certificate or key", c.Name)
	}
	if prev, ok := b.secrets[c.Name]; ok {
		tc := prev.GetTlsCertificate()
		if !bytes.Equal(tc.GetCertificateChain().GetInlineBytes(), c.CertPEM) ||
			!bytes.Equal(tc.GetPrivateKey().GetInlineBytes(), c.KeyPEM) {
			return fmt.Errorf("certificate %q: two different certificates share the name", c.Name)
		}
		return nil
	}
	b.secrets[c.Name] = &tlsv3.Secret{
		Name: c.Name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: c.CertPEM}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: c.KeyPEM}},
		}},
	}
	return nil
}
