package xds

import (
	"errors"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-gw/strait/translator/ir"
)

// httpProtocolOptionsName is the key Envoy reads upstream HTTP protocol options from.
const httpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

var http2ProtocolOptions = mustTypedConfig(&httpv3.HttpProtocolOptions{
	UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
			},
		},
	},
})

// cluster builds the upstream cluster of a Backend, whose endpoints come over EDS, with the
// settings of its BackendTrafficPolicy (see backendPolicies).
func (b *builder) cluster(be *ir.Backend) (*clusterv3.Cluster, error) {
	c := &clusterv3.Cluster{
		Name:                 be.Name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource()},
	}
	if err := b.setBackendPolicies(c, be); err != nil {
		return nil, err
	}
	var alpn []string
	switch be.AppProtocol {
	case ir.AppH2C:
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsName: http2ProtocolOptions}
		alpn = []string{"h2"}
	case ir.AppHTTP1, ir.AppWebSocket, ir.AppTCP, "":
	default:
		return nil, fmt.Errorf("unknown app protocol %q", be.AppProtocol)
	}
	if be.TLS != nil {
		ts, err := upstreamTLS(be.TLS, alpn)
		if err != nil {
			return nil, fmt.Errorf("upstream TLS: %w", err)
		}
		c.TransportSocket = ts
	}
	return c, nil
}

// upstreamTLS originates TLS with SNI and verifies the backend's certificate against the
// given roots (inline, so a CA change is a cluster change) and names.
func upstreamTLS(t *ir.UpstreamTLS, alpn []string) (*corev3.TransportSocket, error) {
	if t.SNI == "" {
		return nil, errors.New("no SNI")
	}
	validation := &tlsv3.CertificateValidationContext{}
	switch {
	case len(t.CACertPEM) > 0:
		validation.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: t.CACertPEM}}
	case t.WellKnownCA:
		validation.SystemRootCerts = &tlsv3.CertificateValidationContext_SystemRootCerts{}
	default:
		return nil, errors.New("neither CA certificates nor well-known CAs to trust")
	}
	names := t.SubjectAltNames
	if len(names) == 0 {
		names = []string{t.SNI}
	}
	for _, name := range names {
		validation.MatchTypedSubjectAltNames = append(validation.MatchTypedSubjectAltNames, subjectAltName(name))
	}
	return transportSocket(&tlsv3.UpstreamTlsContext{
		Sni: t.SNI,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols:         alpn,
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation},
		},
	})
}

// subjectAltName matches a DNS name, or a URI (a SPIFFE ID, say) when the name has a scheme.
// The IR carries BackendTLSPolicy's subjectAltNames as plain strings, so the scheme is the
// only hint of their type.
func subjectAltName(name string) *tlsv3.SubjectAltNameMatcher {
	sanType := tlsv3.SubjectAltNameMatcher_DNS
	if strings.Contains(name, "://") {
		sanType = tlsv3.SubjectAltNameMatcher_URI
	}
	return &tlsv3.SubjectAltNameMatcher{
		SanType: sanType,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}},
	}
}
