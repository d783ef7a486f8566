package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// listenerConfig is the compiled form of one Envoy Listener: where to bind and what each
// filter chain does. It is immutable; a new configuration replaces it whole.
type listenerConfig struct {
	name string
	// addr is "host:port".
	addr string
	// tlsPort: connections start with a TLS ClientHello whose SNI picks the chain.
	tlsPort bool
	chains  []*chainConfig
}

// chainConfig is one filter chain. Exactly one of http and tcp is set.
type chainConfig struct {
	name string
	// serverNames are exact or "*.suffix" SNI names; empty matches any.
	serverNames []string
	// tls terminates TLS; nil for plaintext and passthrough.
	tls  *tls.Config
	http *httpChain
	tcp  *tcpChain
}

// httpChain serves HTTP with the routes of one RouteConfiguration.
type httpChain struct {
	routeConfig string
	statPrefix  string
	websocket   bool
}

// tcpChain forwards connections to weighted clusters.
type tcpChain struct {
	statPrefix string
	clusters   []weightedName
	total      uint32
}

type weightedName struct {
	name   string
	weight uint32
}

// compileListener checks that the proxy can honor a Listener and compiles it. secrets are
// the SDS secrets by name.
func compileListener(l *listenerv3.Listener, secrets map[string]*tlsv3.Secret) (*listenerConfig, error) {
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, errors.New("only socket addresses are supported")
	}
	lc := &listenerConfig{
		name: l.GetName(),
		addr: net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10)),
	}
	for _, f := range l.GetListenerFilters() {
		var ti tlsinspectorv3.TlsInspector
		if err := anyTo(f.GetTypedConfig(), &ti); err != nil {
			return nil, fmt.Errorf("listener filter %q: %w", f.GetName(), err)
		}
		lc.tlsPort = true
	}
	if len(l.GetFilterChains()) == 0 {
		return nil, errors.New("no filter chains")
	}
	for _, fc := range l.GetFilterChains() {
		c, err := compileChain(fc, lc.tlsPort, secrets)
		if err != nil {
			return nil, fmt.Errorf("filter chain %q: %w", fc.GetName(), err)
		}
		lc.chains = append(lc.chains, c)
	}
	return lc, nil
}

func compileChain(fc *listenerv3.FilterChain, tlsPort bool, secrets map[string]*tlsv3.Secret) (*chainConfig, error) {
	c := &chainConfig{name: fc.GetName()}
	if m := fc.GetFilterChainMatch(); m != nil {
		if !tlsPort && len(m.GetServerNames()) > 0 {
			return nil, errors.New("server names need a tls_inspector listener filter")
		}
		c.serverNames = m.GetServerNames()
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		var dt tlsv3.DownstreamTlsContext
		if err := anyTo(ts.GetTypedConfig(), &dt); err != nil {
			return nil, fmt.Errorf("transport socket: %w", err)
		}
		cfg, err := serverTLS(&dt, secrets)
		if err != nil {
			return nil, err
		}
		c.tls = cfg
	}
	if len(fc.GetFilters()) != 1 {
		return nil, fmt.Errorf("want exactly one network filter, got %d", len(fc.GetFilters()))
	}
	f := fc.GetFilters()[0]
	var hcm hcmv3.HttpConnectionManager
	var tcp tcpv3.TcpProxy
	switch {
	case anyTo(f.GetTypedConfig(), &hcm) == nil:
		h, err := compileHCM(&hcm)
		if err != nil {
			return nil, fmt.Errorf("http_connection_manager: %w", err)
		}
		c.http = h
	case anyTo(f.GetTypedConfig(), &tcp) == nil:
		t, err := compileTCPProxy(&tcp)
		if err != nil {
			return nil, fmt.Errorf("tcp_proxy: %w", err)
		}
		c.tcp = t
	default:
		return nil, fmt.Errorf("network filter %q (%s) is not supported", f.GetName(), f.GetTypedConfig().GetTypeUrl())
	}
	return c, nil
}

func compileHCM(hcm *hcmv3.HttpConnectionManager) (*httpChain, error) {
	rds := hcm.GetRds()
	if rds == nil || rds.GetRouteConfigName() == "" {
		return nil, errors.New("routes must come from RDS")
	}
	h := &httpChain{routeConfig: rds.GetRouteConfigName(), statPrefix: hcm.GetStatPrefix()}
	for _, hf := range hcm.GetHttpFilters() {
		var router routerv3.Router
		var cors corsv3.Cors
		if anyTo(hf.GetTypedConfig(), &router) != nil && anyTo(hf.GetTypedConfig(), &cors) != nil {
			return nil, fmt.Errorf("http filter %q is not supported", hf.GetName())
		}
	}
	for _, u := range hcm.GetUpgradeConfigs() {
		if u.GetUpgradeType() != "websocket" {
			return nil, fmt.Errorf("upgrade type %q is not supported", u.GetUpgradeType())
		}
		h.websocket = true
	}
	return h, nil
}

func compileTCPProxy(t *tcpv3.TcpProxy) (*tcpChain, error) {
	tc := &tcpChain{statPrefix: t.GetStatPrefix()}
	switch {
	case t.GetCluster() != "":
		tc.clusters = []weightedName{{name: t.GetCluster(), weight: 1}}
	case t.GetWeightedClusters() != nil:
		for _, wc := range t.GetWeightedClusters().GetClusters() {
			tc.clusters = append(tc.clusters, weightedName{name: wc.GetName(), weight: wc.GetWeight()})
		}
	default:
		return nil, errors.New("no cluster")
	}
	for _, wc := range tc.clusters {
		tc.total += wc.weight
	}
	if tc.total == 0 {
		return nil, errors.New("all cluster weights are zero")
	}
	return tc, nil
}

// pick returns the cluster for a weighted draw r in [0, total).
func (t *tcpChain) pick(r uint32) string {
	for _, wc := range t.clusters {
		if r < wc.weight {
			return wc.name
		}
		r -= wc.weight
	}
	return t.clusters[len(t.clusters)-1].name
}

// serverTLS builds the TLS configuration of a terminating chain from its SDS certificates.
func serverTLS(dt *tlsv3.DownstreamTlsContext, secrets map[string]*tlsv3.Secret) (*tls.Config, error) {
	common := dt.GetCommonTlsContext()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: common.GetAlpnProtocols()}
	for _, ref := range common.GetTlsCertificateSdsSecretConfigs() {
		s := secrets[ref.GetName()]
		if s == nil {
			return nil, fmt.Errorf("secret %q is missing", ref.GetName())
		}
		tc := s.GetTlsCertificate()
		cert, err := tls.X509KeyPair(tc.GetCertificateChain().GetInlineBytes(), tc.GetPrivateKey().GetInlineBytes())
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", ref.GetName(), err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if len(common.GetTlsCertificates()) > 0 {
		return nil, errors.New("inline certificates are not supported; use SDS")
	}
	if len(cfg.Certificates) == 0 {
		return nil, errors.New("TLS termination without certificates")
	}
	// With several certificates, crypto/tls picks one by SNI from each leaf's names.
	return cfg, nil
}

// anyTo unmarshals a typed config into m, failing when the type differs.
func anyTo(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return errors.New("no typed config")
	}
	return a.UnmarshalTo(m)
}
