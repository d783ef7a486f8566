package xds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/strait-gw/strait/e2e/testcert"
	"github.com/strait-gw/strait/translator/ir"
	"github.com/strait-gw/strait/xds"
)

// Two nodes the authentication tests serve: node A's proxy has a certificate, node B's
// configuration must not reach it.
const (
	nodeA = "c1/default/gw"
	nodeB = "c2/default/gw"
)

// writeFiles writes PEM files into dir and returns their paths, in order.
func writeFiles(t *testing.T, dir string, files map[string][]byte, order ...string) []string {
	t.Helper()
	var paths []string
	for _, name := range order {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// spiffeID is node's SPIFFE ID in the default trust domain.
func spiffeID(t *testing.T, node string) string {
	t.Helper()
	id, err := xds.SPIFFEID(xds.DefaultTrustDomain, node)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// tlsServer is an xDS server with mTLS on loopback, serving nodes A and B.
type tlsServer struct {
	*xds.Server
	ca    *testcert.CA
	reg   *prometheus.Registry
	files xds.TLSFiles
}

func startTLSServer(ctx context.Context, t *testing.T) *tlsServer {
	t.Helper()
	ca := testcert.NewCA(t)
	_, certPEM, keyPEM := ca.Issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	paths := writeFiles(t, t.TempDir(), map[string][]byte{"cert": certPEM, "key": keyPEM, "ca": ca.PEM}, "cert", "key", "ca")
	reg := prometheus.NewRegistry()
	files := xds.TLSFiles{Cert: paths[0], Key: paths[1], CA: paths[2]}
	srv := xds.NewServer("127.0.0.1:0", reg, xds.WithTLS(files, ""))
	a := loadProxy(t, "testdata/http-basic.ir.yaml")
	b := loadProxy(t, "testdata/mirror.ir.yaml")
	b.Node = nodeB
	if err := srv.Update([]*ir.Proxy{a, b}); err != nil {
		t.Fatal(err)
	}
	serve(ctx, t, srv)
	return &tlsServer{Server: srv, ca: ca, reg: reg, files: files}
}

// dialAs connects to the server presenting cert (none if nil), trusting the server's CA.
func (s *tlsServer) dialAs(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	return s.dialTrusting(t, cert, s.ca.Pool)
}

// dialTrusting connects to the server presenting cert (none if nil), trusting roots.
func (s *tlsServer) dialTrusting(t *testing.T, cert *tls.Certificate, roots *x509.CertPool) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// proxyCert is a client certificate of the server's CA for the given URIs.
func (s *tlsServer) proxyCert(t *testing.T, uris ...string) *tls.Certificate {
	t.Helper()
	cert, _, _ := s.ca.Issue(t, x509.ExtKeyUsageClientAuth, uris...)
	return &cert
}

func (s *tlsServer) refused(t *testing.T, reason string) float64 {
	t.Helper()
	return metricValue(t, s.reg, "strait_xds_refused_total", map[string]string{"reason": reason})
}

// refusedWith waits for the stream to end and checks that it ended with code and a message
// containing every part, before any response.
func (c *adsClient[Req, Resp]) refusedWith(code codes.Code, parts ...string) {
	c.t.Helper()
	for resp := range c.resps {
		c.t.Fatalf("got a %s response, want the stream refused", resp.GetTypeUrl())
	}
	if status.Code(c.ended) != code {
		c.t.Fatalf("stream ended with %v, want %v", c.ended, code)
	}
	for _, p := range parts {
		if msg := status.Convert(c.ended).Message(); !strings.Contains(msg, p) {
			c.t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

// TestAuthServesOwnNode checks that a proxy with a certificate for node A gets A's
// configuration over every kind of stream and fetch.
func TestAuthServesOwnNode(t *testing.T) {
	ctx := testContext(t)
	srv := startTLSServer(ctx, t)
	conn := srv.dialAs(t, srv.proxyCert(t, spiffeID(t, nodeA)))
	snap := mustSnapshot(t, srv.Server, nodeA)

	got := newSotwClientOn(ctx, t, conn, envoyNode(nodeA)).syncAll()
	for typeURL, resp := range got {
		if n, want := names(t, resp.GetResources()), snapshotNames(snap, typeURL); !slices.Equal(n, want) {
			t.Errorf("SotW %s: got %v, want %v", typeURL, n, want)
		}
	}
	if n := names(t, got[resource.ListenerType].GetResources()); !slices.Equal(n, []string{"0.0.0.0:8080"}) {
		t.Errorf("got listeners %v, want node A's 0.0.0.0:8080", n)
	}

	delta := newDeltaClientOn(ctx, t, conn, envoyNode(nodeA))
	if n := deltaNames(delta.subscribe(resource.ClusterType)); !slices.Equal(n, snapshotNames(snap, resource.ClusterType)) {
		t.Errorf("delta clusters %v, want %v", n, snapshotNames(snap, resource.ClusterType))
	}
	// A delta request may leave the node out once the stream has named it.
	delta.setNode = func(*discoveryv3.DeltaDiscoveryRequest) {}
	if n := deltaNames(delta.subscribe(resource.ListenerType)); !slices.Equal(n, []string{"0.0.0.0:8080"}) {
		t.Errorf("delta listeners %v, want node A's", n)
	}

	cds, err := clusterservice.NewClusterDiscoveryServiceClient(conn).StreamClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cds.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(nodeA)}); err != nil {
		t.Fatal(err)
	}
	resp, err := cds.Recv()
	if err != nil {
		t.Fatalf("CDS stream: %v", err)
	}
	if n := names(t, resp.GetResources()); !slices.Equal(n, snapshotNames(snap, resource.ClusterType)) {
		t.Errorf("CDS stream clusters %v, want %v", n, snapshotNames(snap, resource.ClusterType))
	}

	// The proxyless variant of the node is the same identity.
	pl := newSotwClientOn(ctx, t, conn, proxylessNode(nodeA))
	pl.fetch(resource.ClusterType)

	if v := srv.refused(t, "node_mismatch"); v != 0 {
		t.Errorf("refused %v streams, want 0", v)
	}
}

// TestAuthRefusesOtherNode checks that a proxy with a valid certificate for node A asking
// for node B is refused with PermissionDenied, over ADS (SotW and delta), a per-type stream
// and a fetch, and is sent nothing of B.
func TestAuthRefusesOtherNode(t *testing.T) {
	ctx := testContext(t)
	srv := startTLSServer(ctx, t)
	conn := srv.dialAs(t, srv.proxyCert(t, spiffeID(t, nodeA)))
	want := []string{`"` + nodeA + `"`, `"` + nodeB + `"`, spiffeID(t, nodeA)}

	sotw := newSotwClientOn(ctx, t, conn, envoyNode(nodeB))
	sotw.send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType})
	sotw.refusedWith(codes.PermissionDenied, want...)

	delta := newDeltaClientOn(ctx, t, conn, envoyNode(nodeB))
	delta.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType})
	delta.refusedWith(codes.PermissionDenied, want...)

	// A delta stream must name its node on its first request.
	anonymous := newDeltaClientOn(ctx, t, conn, nil)
	anonymous.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ListenerType})
	anonymous.refusedWith(codes.PermissionDenied, `may not ask for node ""`)

	// A stream that starts as node A may not switch to node B.
	switching := newSotwClientOn(ctx, t, conn, envoyNode(nodeA))
	switching.ack(switching.fetch(resource.ClusterType))
	switching.setNode = func(r *discoveryv3.DiscoveryRequest) { r.Node = envoyNode(nodeB) }
	switching.send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType})
	switching.refusedWith(codes.PermissionDenied, want...)

	cds, err := clusterservice.NewClusterDiscoveryServiceClient(conn).StreamClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cds.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(nodeB)}); err != nil {
		t.Fatal(err)
	}
	if resp, err := cds.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("CDS stream for node B: got %d clusters and error %v, want PermissionDenied", len(resp.GetResources()), err)
	}

	fetched, err := clusterservice.NewClusterDiscoveryServiceClient(conn).FetchClusters(ctx,
		&discoveryv3.DiscoveryRequest{Node: envoyNode(nodeB)})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("fetch for node B: got %d clusters and error %v, want PermissionDenied", len(fetched.GetResources()), err)
	}

	if v := srv.refused(t, "node_mismatch"); v != 6 {
		t.Errorf("strait_xds_refused_total{reason=node_mismatch} = %v, want 6", v)
	}
}

// TestAuthRefusesBadCertificates checks that a client without a certificate, or with one of
// another CA, fails the handshake, and that a certificate of the right CA that is not a
// proxy's is refused.
func TestAuthRefusesBadCertificates(t *testing.T) {
	ctx := testContext(t)
	srv := startTLSServer(ctx, t)
	stranger, _, _ := testcert.NewCA(t).Issue(t, x509.ExtKeyUsageClientAuth, spiffeID(t, nodeA))

	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		code   codes.Code
		reason string
		says   string
	}{
		// The handshake fails; what the client reads next, the server's alert or a broken
		// pipe, varies.
		{"no certificate", nil, codes.Unavailable, "", ""},
		{"another CA", &stranger, codes.Unavailable, "", ""},
		{"no SPIFFE ID", srv.proxyCert(t, "proxy.example"), codes.PermissionDenied, "no_spiffe_id", "carries 0 SPIFFE IDs"},
		{"not a proxy's SPIFFE ID", srv.proxyCert(t, "spiffe://strait.local/cluster/c1/controller"), codes.PermissionDenied, "no_spiffe_id", "is not a proxy's"},
		{"two SPIFFE IDs", srv.proxyCert(t, spiffeID(t, nodeA), spiffeID(t, nodeB)), codes.PermissionDenied, "no_spiffe_id", "carries 2 SPIFFE IDs"},
		{"another trust domain", srv.proxyCert(t, "spiffe://other.example/cluster/c1/ns/default/gateway/gw"), codes.PermissionDenied, "trust_domain", `not in trust domain "strait.local"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.refused(t, tc.reason)
			err := firstError(ctx, srv.dialAs(t, tc.cert))
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want %v saying %q", err, tc.code, tc.says)
			}
			if tc.reason != "" {
				if after := srv.refused(t, tc.reason); after != before+1 {
					t.Errorf("strait_xds_refused_total{reason=%s} went from %v to %v, want one more", tc.reason, before, after)
				}
			}
		})
	}
}

// firstError opens an ADS stream for node A's clusters on conn and returns the error that
// ends it, nil if a response arrives.
func firstError(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(nodeA), TypeUrl: resource.ClusterType}); err != nil {
		_, err = stream.Recv()
		return err
	}
	_, err = stream.Recv()
	return err
}

// TestAuthServerRotation checks that the server uses rewritten certificate files from the
// next handshake on: a client that trusts only a new CA connects once the server's pair is
// replaced by one of that CA.
func TestAuthServerRotation(t *testing.T) {
	ctx := testContext(t)
	srv := startTLSServer(ctx, t)
	cert := srv.proxyCert(t, spiffeID(t, nodeA))
	next := testcert.NewCA(t)
	if err := firstError(ctx, srv.dialTrusting(t, cert, next.Pool)); status.Code(err) != codes.Unavailable {
		t.Fatalf("a client trusting another CA got %v, want a failed handshake", err)
	}

	_, certPEM, keyPEM := next.Issue(t, x509.ExtKeyUsageServerAuth, "127.0.0.1")
	for path, data := range map[string][]byte{srv.files.Key: keyPEM, srv.files.Cert: certPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := firstError(ctx, srv.dialTrusting(t, cert, next.Pool)); err != nil {
		t.Errorf("after rotation: %v", err)
	}
}

// TestAuthPlaintextOnlyOnLoopback checks that a server without TLS refuses to listen on
// anything but loopback and unix sockets, and that one with TLS files that do not load
// refuses to start.
func TestAuthPlaintextOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		err := xds.NewServer(addr, nil).Listen()
		if err == nil || !strings.Contains(err.Error(), "--xds-cert") {
			t.Errorf("plaintext listen on %s: got %v, want a refusal naming the TLS flags", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "unix://" + filepath.Join(t.TempDir(), "xds.sock")} {
		if err := xds.NewServer(addr, nil).Listen(); err != nil {
			t.Errorf("plaintext listen on %s: %v", addr, err)
		}
	}
	missing := xds.TLSFiles{Cert: "/nonexistent/cert.pem", Key: "/nonexistent/key.pem", CA: "/nonexistent/ca.pem"}
	if err := xds.NewServer("0.0.0.0:0", nil, xds.WithTLS(missing, "")).Listen(); err == nil {
		t.Error("a server whose TLS files are missing listened")
	}
	if err := xds.NewServer("127.0.0.1:0", nil, xds.WithTLS(missing, "Bad Domain")).Listen(); err == nil {
		t.Error("a server with an invalid trust domain listened")
	}
}

// TestSPIFFEID checks the form of a proxy's SPIFFE ID and the node ids it refuses.
func TestSPIFFEID(t *testing.T) {
	id, err := xds.SPIFFEID("example.org", "us/default/web")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), "spiffe://example.org/cluster/us/ns/default/gateway/web"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range [][2]string{{"example.org", "us/default"}, {"example.org", "us//web"}, {"example.org", "a/b/c/d"}, {"Example.org", "us/default/web"}, {"", "us/default/web"}} {
		if id, err := xds.SPIFFEID(bad[0], bad[1]); err == nil {
			t.Errorf("SPIFFEID(%q, %q) = %s, want an error", bad[0], bad[1], id)
		}
	}
}
