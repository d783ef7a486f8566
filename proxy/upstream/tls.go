package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

// compileTLS builds the client side of an UpstreamTlsContext, with its SDS secrets resolved,
// and a key that changes whenever the configuration does (the context and every secret it
// uses), so that an update rebuilds connections only when TLS really changed.
func compileTLS(ts *corev3.TransportSocket, http2 bool, secrets map[string]*tlsv3.Secret) (*tls.Config, string, error) {
	if err := onlyFields(ts, "name", "typed_config"); err != nil {
		return nil, "", err
	}
	var utc tlsv3.UpstreamTlsContext
	if err := anyTo(ts.GetTypedConfig(), &utc); err != nil {
		return nil, "", fmt.Errorf("transport socket %q: %w", ts.GetName(), err)
	}
	if err := onlyFields(&utc, "common_tls_context", "sni"); err != nil {
		return nil, "", err
	}
	common := utc.GetCommonTlsContext()
	if err := onlyFields(common, "tls_params", "tls_certificates", "tls_certificate_sds_secret_configs",
		"validation_context", "validation_context_sds_secret_config", "combined_validation_context", "alpn_protocols"); err != nil {
		return nil, "", err
	}
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(&utc)
	if err != nil {
		return nil, "", err
	}
	// secret looks a secret up and folds it into the key.
	secret := func(name string) (*tlsv3.Secret, error) {
		s := secrets[name]
		if s == nil {
			return nil, fmt.Errorf("secret %q is missing", name)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
		key = append(key, b...)
		return s, err
	}

	cfg := &tls.Config{
		ServerName:         utc.GetSni(),
		NextProtos:         common.GetAlpnProtocols(),
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		// Verification is VerifyConnection's: the certificate must chain to the configured
		// roots and match the SAN matchers, which need not be the SNI (as in Envoy).
		InsecureSkipVerify: true, //nolint:gosec // G402: VerifyConnection verifies the chain and the SANs
	}
	if http2 && len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2"}
	}
	if slices.Contains(cfg.NextProtos, "h2") != http2 {
		return nil, "", fmt.Errorf("ALPN %q does not fit the cluster's HTTP/%s", cfg.NextProtos, map[bool]string{false: "1.1", true: "2"}[http2])
	}
	if err := tlsVersions(cfg, common.GetTlsParams()); err != nil {
		return nil, "", err
	}

	certs := common.GetTlsCertificates()
	for _, ref := range common.GetTlsCertificateSdsSecretConfigs() {
		s, err := secret(ref.GetName())
		if err != nil {
			return nil, "", err
		}
		if s.GetTlsCertificate() == nil {
			return nil, "", fmt.Errorf("secret %q holds no TLS certificate", ref.GetName())
		}
		certs = append(certs, s.GetTlsCertificate())
	}
	if len(certs) > 1 {
		return nil, "", errors.New("a client presents at most one certificate")
	}
	for _, tc := range certs {
		cert, err := clientCertificate(tc)
		if err != nil {
			return nil, "", err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}

	var cvc *tlsv3.CertificateValidationContext
	switch v := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		cvc = v.ValidationContext
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		s, err := secret(v.ValidationContextSdsSecretConfig.GetName())
		if err != nil {
			return nil, "", err
		}
		cvc = s.GetValidationContext()
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		// As in Envoy: the default context, with the SDS one merged over it.
		s, err := secret(v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName())
		if err != nil {
			return nil, "", err
		}
		cvc = proto.Clone(v.CombinedValidationContext.GetDefaultValidationContext()).(*tlsv3.CertificateValidationContext)
		if cvc == nil {
			cvc = &tlsv3.CertificateValidationContext{}
		}
		proto.Merge(cvc, s.GetValidationContext())
	}
	if cfg.VerifyConnection, err = verifier(cvc); err != nil {
		return nil, "", fmt.Errorf("validation context: %w", err)
	}
	return cfg, string(key), nil
}

func tlsVersions(cfg *tls.Config, p *tlsv3.TlsParameters) error {
	if err := onlyFields(p, "tls_minimum_protocol_version", "tls_maximum_protocol_version"); err != nil {
		return err
	}
	versions := map[tlsv3.TlsParameters_TlsProtocol]uint16{
		tlsv3.TlsParameters_TLSv1_0: tls.VersionTLS10,
		tlsv3.TlsParameters_TLSv1_1: tls.VersionTLS11,
		tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
		tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
	}
	cfg.MinVersion = tls.VersionTLS12
	if v := p.GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		cfg.MinVersion = versions[v]
	}
	if v := p.GetTlsMaximumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		cfg.MaxVersion = versions[v]
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		return errors.New("tls_maximum_protocol_version is below the minimum")
	}
	return nil
}

func clientCertificate(tc *tlsv3.TlsCertificate) (tls.Certificate, error) {
	if err := onlyFields(tc, "certificate_chain", "private_key"); err != nil {
		return tls.Certificate{}, err
	}
	chain, err := inlineData(tc.GetCertificateChain())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate_chain: %w", err)
	}
	key, err := inlineData(tc.GetPrivateKey())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("private_key: %w", err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	return cert, nil
}

// inlineData reads a data source given inline; files and environment variables would not
// follow rotations, and SDS exists for that.
func inlineData(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	default:
		return nil, errors.New("only inline data sources are supported")
	}
}

// verifier checks a server's certificate chain against the trusted roots and its subject
// alternative names against the matchers (any one may match; none configured accepts any
// name). An absent validation context is refused: the proxy does not originate
// unauthenticated TLS.
func verifier(cvc *tlsv3.CertificateValidationContext) (func(tls.ConnectionState) error, error) {
	if cvc == nil {
		return nil, errors.New("TLS to an upstream needs trusted CAs (trusted_ca or system_root_certs)")
	}
	if err := onlyFields(cvc, "trusted_ca", "system_root_certs", "match_typed_subject_alt_names"); err != nil {
		return nil, err
	}
	var roots *x509.CertPool // nil: the system's
	switch {
	case cvc.GetTrustedCa() != nil:
		pem, err := inlineData(cvc.GetTrustedCa())
		if err != nil {
			return nil, fmt.Errorf("trusted_ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("trusted_ca holds no PEM certificate")
		}
	case cvc.GetSystemRootCerts() != nil:
	default:
		return nil, errors.New("TLS to an upstream needs trusted CAs (trusted_ca or system_root_certs)")
	}
	var matchers []sanMatcher
	for _, m := range cvc.GetMatchTypedSubjectAltNames() {
		if err := onlyFields(m, "san_type", "matcher"); err != nil {
			return nil, err
		}
		sm, err := compileSANMatcher(m.GetSanType(), m.GetMatcher())
		if err != nil {
			return nil, err
		}
		matchers = append(matchers, sm)
	}
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("upstream presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := leaf.Verify(opts); err != nil {
			return err
		}
		if len(matchers) == 0 || slices.ContainsFunc(matchers, func(m sanMatcher) bool { return m.matches(leaf) }) {
			return nil
		}
		return fmt.Errorf("upstream certificate names (DNS %q, URI %q, IP %q) match no subject alt name matcher", leaf.DNSNames, leaf.URIs, leaf.IPAddresses)
	}, nil
}

// sanMatcher matches one type of subject alternative name.
type sanMatcher struct {
	sanType tlsv3.SubjectAltNameMatcher_SanType
	match   func(string) bool
	// exactDNS is set for exact matchers, which match DNS names the way Envoy does: a
	// wildcard certificate name covers one label.
	exactDNS string
}

func compileSANMatcher(t tlsv3.SubjectAltNameMatcher_SanType, m *matcherv3.StringMatcher) (sanMatcher, error) {
	switch t {
	case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_EMAIL, tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
	default:
		return sanMatcher{}, fmt.Errorf("SAN type %s is not supported", t)
	}
	match, err := stringMatcher(m)
	if err != nil {
		return sanMatcher{}, err
	}
	return sanMatcher{sanType: t, match: match, exactDNS: m.GetExact()}, nil
}

func (m sanMatcher) matches(c *x509.Certificate) bool {
	switch m.sanType {
	case tlsv3.SubjectAltNameMatcher_DNS:
		return slices.ContainsFunc(c.DNSNames, func(name string) bool {
			return m.match(name) || (m.exactDNS != "" && dnsNameMatch(m.exactDNS, name))
		})
	case tlsv3.SubjectAltNameMatcher_URI:
		return slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return m.match(u.String()) })
	case tlsv3.SubjectAltNameMatcher_EMAIL:
		return slices.ContainsFunc(c.EmailAddresses, m.match)
	case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		return slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool { return m.match(ip.String()) })
	}
	return false
}

// dnsNameMatch reports whether name matches a certificate's DNS name, which may be a
// wildcard ("*.example.com" covers exactly one label), case-insensitively.
func dnsNameMatch(name, certName string) bool {
	name, certName = strings.ToLower(name), strings.ToLower(certName)
	if name == certName {
		return true
	}
	suffix, ok := strings.CutPrefix(certName, "*")
	if !ok || !strings.HasPrefix(suffix, ".") {
		return false
	}
	label, ok := strings.CutSuffix(name, suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// stringMatcher compiles an Envoy StringMatcher; safe_regex must match the whole string.
func stringMatcher(m *matcherv3.StringMatcher) (func(string) bool, error) {
	if err := onlyFields(m, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return nil, err
	}
	fold := m.GetIgnoreCase()
	norm := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := norm(p.Exact)
		return func(s string) bool { return norm(s) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := norm(p.Prefix)
		return func(s string) bool { return strings.HasPrefix(norm(s), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := norm(p.Suffix)
		return func(s string) bool { return strings.HasSuffix(norm(s), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := norm(p.Contains)
		return func(s string) bool { return strings.Contains(norm(s), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		if err := onlyFields(p.SafeRegex, "regex", "google_re2"); err != nil {
			return nil, err
		}
		re, err := regexp.Compile(`^(?:` + p.SafeRegex.GetRegex() + `)$`)
		if err != nil {
			return nil, fmt.Errorf("safe_regex: %w", err)
		}
		return re.MatchString, nil
	default:
		return nil, errors.New("string matcher without a pattern")
	}
}
