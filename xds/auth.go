package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// DefaultTrustDomain is the SPIFFE trust domain of proxy identities when none is configured.
const DefaultTrustDomain = "strait.local"

// Reasons a stream or fetch is refused, the "reason" label of strait_xds_refused_total.
const (
	refusedNoCertificate = "no_certificate"
	refusedNoSPIFFEID    = "no_spiffe_id"
	refusedTrustDomain   = "trust_domain"
	refusedNodeMismatch  = "node_mismatch"
)

// SPIFFEID is the identity a proxy of node ("<cluster>/<namespace>/<gateway>") carries in
// its certificate, as its only URI SAN:
//
//	spiffe://<trustDomain>/cluster/<cluster>/ns/<namespace>/gateway/<gateway>
func SPIFFEID(trustDomain, node string) (*url.URL, error) {
	if err := checkTrustDomain(trustDomain); err != nil {
		return nil, err
	}
	parts := strings.Split(node, "/")
	if len(parts) != 3 || slices.Contains(parts, "") {
		return nil, fmt.Errorf("node id %q is not <cluster>/<namespace>/<gateway>", node)
	}
	return &url.URL{Scheme: "spiffe", Host: trustDomain,
		Path: "/cluster/" + parts[0] + "/ns/" + parts[1] + "/gateway/" + parts[2]}, nil
}

// nodeOf returns the node id a proxy's SPIFFE ID names, and the reason to refuse it if it
// is not one of trustDomain.
func nodeOf(trustDomain string, id *url.URL) (string, string, error) {
	if id.Host != trustDomain {
		return "", refusedTrustDomain, fmt.Errorf("its SPIFFE ID %s is not in trust domain %q", id, trustDomain)
	}
	p := strings.Split(strings.TrimPrefix(id.Path, "/"), "/")
	if len(p) != 6 || p[0] != "cluster" || p[2] != "ns" || p[4] != "gateway" || slices.Contains(p, "") ||
		id.RawQuery != "" || id.Fragment != "" || id.User != nil {
		return "", refusedNoSPIFFEID, fmt.Errorf("its SPIFFE ID %s is not a proxy's, spiffe://%s/cluster/<cluster>/ns/<namespace>/gateway/<gateway>", id, trustDomain)
	}
	return p[1] + "/" + p[3] + "/" + p[5], "", nil
}

// checkTrustDomain accepts what the SPIFFE specification allows in a trust domain name.
func checkTrustDomain(td string) error {
	if td == "" {
		return errors.New("empty trust domain")
	}
	for _, r := range td {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' && r != '_' {
			return fmt.Errorf("trust domain %q: only lowercase letters, digits, '.', '-' and '_' are allowed", td)
		}
	}
	return nil
}

// WithTLS serves xDS over TLS with the certificate and key in files, and accepts only
// clients whose certificate is signed by a CA of files.CA and carries the SPIFFE ID of a
// proxy in trustDomain ("" means DefaultTrustDomain); such a client gets only its own node's
// configuration. The files are read again when they change (see TLSSource). Without this
// option the server is plaintext and unauthenticated, which Listen allows on loopback
// addresses and unix sockets only.
func WithTLS(files TLSFiles, trustDomain string) Option {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	return func(s *Server) { s.auth = &authenticator{files: files, trustDomain: trustDomain} }
}

// authenticator checks that each xDS client is a proxy asking for its own node.
type authenticator struct {
	files       TLSFiles
	trustDomain string
	// source is set by prepareTransport.
	source *TLSSource
}

// prepareTransport reads the TLS files, or checks that a plaintext server stays on this host.
func (s *Server) prepareTransport() error {
	if s.auth == nil {
		if !HostOnly(s.addr) {
			return fmt.Errorf("xds: refusing to serve plaintext, unauthenticated xDS on %s: any client could read every node's configuration and secrets; give a server certificate, key and client CA bundle (controller --xds-cert, --xds-key, --xds-client-ca) or listen on a loopback address or a unix socket", s.addr)
		}
		return nil
	}
	if err := checkTrustDomain(s.auth.trustDomain); err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	if s.auth.source != nil {
		return nil
	}
	src, err := NewTLSSource(s.auth.files, s.log)
	if err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	s.auth.source = src
	return nil
}

// HostOnly reports whether addr names this host alone: a unix socket, localhost or a
// loopback IP, where plaintext xDS is allowed. The unspecified address ("0.0.0.0") is not: a
// server listening there is reachable on every interface.
func HostOnly(addr string) bool {
	if strings.HasPrefix(addr, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// tlsOptions are the gRPC server's TLS credentials option, none when serving plaintext.
func (s *Server) tlsOptions() []grpc.ServerOption {
	if s.auth == nil {
		return nil
	}
	src := s.auth.source
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		// A configuration per handshake picks up rotated files.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := src.Current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
			}, nil
		},
	})
	return []grpc.ServerOption{grpc.Creds(creds)}
}

// streamCallbacks are the xDS server's callbacks, checking identities when TLS is on.
func (s *Server) streamCallbacks() serverv3.Callbacks {
	if s.auth == nil {
		return s.callbacks
	}
	return &authCallbacks{callbacks: s.callbacks, auth: s.auth, log: s.log, streams: make(map[streamKey]identity)}
}

// identity is who a client proved to be with its certificate.
type identity struct {
	node, spiffeID, peer string
	// named is set once a request of the stream has named the node; a delta request may then
	// leave the node out.
	named bool
}

// authCallbacks wraps the server's callbacks: a stream opens only for a client whose
// certificate names a proxy, and every request on it must be for that proxy's node. The
// server calls them synchronously from each stream's goroutine.
type authCallbacks struct {
	*callbacks
	auth *authenticator
	log  *slog.Logger

	mu      sync.Mutex
	streams map[streamKey]identity
}

// OnStreamOpen implements serverv3.Callbacks.
func (a *authCallbacks) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := a.open(ctx, streamKey{id: id}); err != nil {
		return err
	}
	return a.callbacks.OnStreamOpen(ctx, id, typeURL)
}

// OnDeltaStreamOpen implements serverv3.Callbacks.
func (a *authCallbacks) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := a.open(ctx, streamKey{delta: true, id: id}); err != nil {
		return err
	}
	return a.callbacks.OnDeltaStreamOpen(ctx, id, typeURL)
}

// OnStreamRequest implements serverv3.Callbacks. The server has already filled in the
// stream's node on a request that left it out.
func (a *authCallbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	if err := a.authorize(streamKey{id: id}, req.GetNode()); err != nil {
		return err
	}
	return a.callbacks.OnStreamRequest(id, req)
}

// OnStreamDeltaRequest implements serverv3.Callbacks. Unlike SotW, the delta server calls
// it before filling in a node the request left out.
func (a *authCallbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	if err := a.authorize(streamKey{delta: true, id: id}, req.GetNode()); err != nil {
		return err
	}
	return a.callbacks.OnStreamDeltaRequest(id, req)
}

// OnStreamClosed implements serverv3.Callbacks.
func (a *authCallbacks) OnStreamClosed(id int64, node *corev3.Node) {
	a.forget(streamKey{id: id})
	a.callbacks.OnStreamClosed(id, node)
}

// OnDeltaStreamClosed implements serverv3.Callbacks.
func (a *authCallbacks) OnDeltaStreamClosed(id int64, node *corev3.Node) {
	a.forget(streamKey{delta: true, id: id})
	a.callbacks.OnDeltaStreamClosed(id, node)
}

// OnFetchRequest implements serverv3.Callbacks: a unary fetch (FetchListeners and the
// like) is checked as a stream's request is.
func (a *authCallbacks) OnFetchRequest(ctx context.Context, req *discoveryv3.DiscoveryRequest) error {
	who, err := a.identify(ctx)
	if err != nil {
		return err
	}
	if req.GetNode().GetId() != who.node {
		return a.refuse(refusedNodeMismatch, who.peer, mismatch(who, req.GetNode().GetId()))
	}
	return a.callbacks.OnFetchRequest(ctx, req)
}

func (a *authCallbacks) open(ctx context.Context, key streamKey) error {
	who, err := a.identify(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.streams[key] = who
	a.mu.Unlock()
	return nil
}

func (a *authCallbacks) authorize(key streamKey, node *corev3.Node) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	who, ok := a.streams[key]
	if !ok {
		// OnStreamOpen refused the stream, or the server did not call it: refuse too.
		return status.Error(codes.PermissionDenied, "xds: stream not authenticated")
	}
	if node == nil && who.named {
		return nil
	}
	if node.GetId() != who.node {
		return a.refuse(refusedNodeMismatch, who.peer, mismatch(who, node.GetId()))
	}
	who.named = true
	a.streams[key] = who
	return nil
}

func (a *authCallbacks) forget(key streamKey) {
	a.mu.Lock()
	delete(a.streams, key)
	a.mu.Unlock()
}

func mismatch(who identity, node string) string {
	return fmt.Sprintf("the client certificate (%s) is node %q's, which may not ask for node %q", who.spiffeID, who.node, node)
}

// identify returns the proxy identity the client's verified certificate carries.
func (a *authCallbacks) identify(ctx context.Context) (identity, error) {
	p, _ := peer.FromContext(ctx)
	who := identity{peer: "unknown"}
	if p != nil && p.Addr != nil {
		who.peer = p.Addr.String()
	}
	var leaf *x509.Certificate
	if p != nil {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
			leaf = info.State.VerifiedChains[0][0]
		}
	}
	if leaf == nil {
		return who, a.refuse(refusedNoCertificate, who.peer, "no verified client certificate")
	}
	var ids []*url.URL
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			ids = append(ids, u)
		}
	}
	if len(ids) != 1 {
		return who, a.refuse(refusedNoSPIFFEID, who.peer, fmt.Sprintf(
			"the client certificate carries %d SPIFFE IDs, where a proxy's carries one: spiffe://%s/cluster/<cluster>/ns/<namespace>/gateway/<gateway>",
			len(ids), a.auth.trustDomain))
	}
	node, reason, err := nodeOf(a.auth.trustDomain, ids[0])
	if err != nil {
		return who, a.refuse(reason, who.peer, "the client certificate: "+err.Error())
	}
	who.node, who.spiffeID = node, ids[0].String()
	return who, nil
}

// refuse counts and logs a refusal and returns the gRPC error that ends the stream.
func (a *authCallbacks) refuse(reason, peer, msg string) error {
	a.metrics.refused.WithLabelValues(reason).Inc()
	a.log.Warn("xds client refused", "reason", reason, "peer", peer, "error", msg)
	code := codes.PermissionDenied
	if reason == refusedNoCertificate {
		code = codes.Unauthenticated
	}
	return status.Error(code, "xds: "+msg)
}
