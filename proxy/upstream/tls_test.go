package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-gw/strait/e2e/testcert"
)

// tlsBackend serves HTTPS (HTTP/2 too when h2) with a certificate for backend.example, and
// answers with the protocol, SNI and client certificate URI it saw.
func tlsBackend(t *testing.T, ca *testcert.CA, h2 bool, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	cert, _, _ := ca.Issue(t, x509.ExtKeyUsageServerAuth, "backend.example")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "-"
		if len(r.TLS.PeerCertificates) > 0 && len(r.TLS.PeerCertificates[0].URIs) > 0 {
			client = r.TLS.PeerCertificates[0].URIs[0].String()
		}
		_, _ = io.WriteString(w, r.Proto+" "+r.TLS.ServerName+" "+client)
	}))
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func exactSAN(name string) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: name}},
	}
}

// upstreamTLS sets an UpstreamTlsContext with SNI backend.example.
func upstreamTLS(common *tlsv3.CommonTlsContext) func(*clusterv3.Cluster) {
	return func(c *clusterv3.Cluster) {
		a, err := anypb.New(&tlsv3.UpstreamTlsContext{Sni: "backend.example", CommonTlsContext: common})
		if err != nil {
			panic(err)
		}
		c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}
	}
}

func inlineCA(ca []byte, sans ...*tlsv3.SubjectAltNameMatcher) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
		ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa:                 &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: ca}},
			MatchTypedSubjectAltNames: sans,
		},
	}}
}

func TestTLSUpstream(t *testing.T) {
	ca := testcert.NewCA(t)
	srv := tlsBackend(t, ca, false, nil)
	addr := srv.Listener.Addr().String()
	m := newTestManager(t, Options{})

	c := install(t, m, edsCluster("tls", upstreamTLS(inlineCA(ca.PEM, exactSAN("backend.example")))), assignment("tls", loc{eps: eps(addr)}))
	if _, body, _, err := get(t, c, nil); err != nil || body != "HTTP/1.1 backend.example -" {
		t.Fatalf("got %q, %v; want HTTP/1.1 with SNI backend.example", body, err)
	}

	// A certificate whose names match no matcher is refused, as a connect failure.
	c = install(t, m, edsCluster("tls", upstreamTLS(inlineCA(ca.PEM, exactSAN("other.example")))), assignment("tls", loc{eps: eps(addr)}))
	_, _, _, err := get(t, c, nil)
	var ce *connectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "subject alt name") {
		t.Errorf("SAN mismatch: %v, want a connect error naming the SANs", err)
	}

	// So is a certificate from a CA the cluster does not trust.
	c = install(t, m, edsCluster("tls", upstreamTLS(inlineCA(testcert.NewCA(t).PEM))), assignment("tls", loc{eps: eps(addr)}))
	if _, _, _, err := get(t, c, nil); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("untrusted CA: %v, want an unknown authority error", err)
	}
	if s := c.Stats(); s.ConnectFailures != 2 {
		t.Errorf("%d connect failures, want 2", s.ConnectFailures)
	}
}

// TestTLSUpstreamSDS: mTLS with the client certificate and the trusted CA from SDS secrets,
// which an update can rotate.
func TestTLSUpstreamSDS(t *testing.T) {
	ca := testcert.NewCA(t)
	srv := tlsBackend(t, ca, false, ca.Pool)
	addr := srv.Listener.Addr().String()
	_, certPEM, keyPEM := ca.Issue(t, x509.ExtKeyUsageClientAuth, "spiffe://strait.test/cluster/east/gateway")
	clientSecret := &tlsv3.Secret{Name: "client", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: certPEM}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: keyPEM}},
	}}}
	caSecret := func(pem []byte) *tlsv3.Secret {
		return &tlsv3.Secret{Name: "ca", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pem}},
		}}}
	}
	// Istio's pattern: SAN matchers inline, the CA over SDS.
	common := &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "client"}},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{exactSAN("backend.example")}},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ca"},
		}},
	}
	m := newTestManager(t, Options{})
	cluster, cla := edsCluster("mtls", upstreamTLS(common)), assignment("mtls", loc{eps: eps(addr)})
	if err := m.Update([]*clusterv3.Cluster{cluster}, nil, []*tlsv3.Secret{clientSecret}); err == nil || !strings.Contains(err.Error(), `secret "ca" is missing`) {
		t.Fatalf("update without the CA secret: %v", err)
	}
	c := install(t, m, cluster, cla, clientSecret, caSecret(ca.PEM))
	if _, body, _, err := get(t, c, nil); err != nil || body != "HTTP/1.1 backend.example spiffe://strait.test/cluster/east/gateway" {
		t.Fatalf("got %q, %v; want the client certificate presented", body, err)
	}

	// Rotating the CA secret to another CA changes the pool: new connections fail.
	install(t, m, cluster, cla, clientSecret, caSecret(testcert.NewCA(t).PEM))
	if _, _, _, err := get(t, c, nil); err == nil {
		t.Error("a request succeeded after the trusted CA was rotated away")
	}
}

func TestTLSUpstreamHTTP2(t *testing.T) {
	ca := testcert.NewCA(t)
	srv := tlsBackend(t, ca, true, nil)
	m := newTestManager(t, Options{})
	c := install(t, m, edsCluster("h2", explicitHTTP2, upstreamTLS(inlineCA(ca.PEM, exactSAN("backend.example")))),
		assignment("h2", loc{eps: eps(srv.Listener.Addr().String())}))
	if _, body, _, err := get(t, c, nil); err != nil || !strings.HasPrefix(body, "HTTP/2.0 ") {
		t.Fatalf("got %q, %v; want HTTP/2 negotiated with ALPN", body, err)
	}
}

func TestDNSNameMatch(t *testing.T) {
	tests := []struct {
		name, cert string
		want       bool
	}{
		{"api.example.com", "api.example.com", true},
		{"API.Example.com", "api.example.com", true},
		{"api.example.com", "*.example.com", true},
		{"a.api.example.com", "*.example.com", false},
		{"example.com", "*.example.com", false},
		{"api.example.com", "*example.com", false},
		{"api.example.com", "other.example.com", false},
	}
	for _, tt := range tests {
		if got := dnsNameMatch(tt.name, tt.cert); got != tt.want {
			t.Errorf("dnsNameMatch(%q, %q) = %v, want %v", tt.name, tt.cert, got, tt.want)
		}
	}
}
