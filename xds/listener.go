package xds

import (
	"errors"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

// tlsTransportProtocol is what the tls_inspector reports for a ClientHello; chains on TLS ports
// require it, so plaintext connections to a TLS port match no chain and are closed.
const tlsTransportProtocol = "tls"

var (
	routerFilter = &hcmv3.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustTypedConfig(&routerv3.Router{})},
	}
	corsFilter = &hcmv3.HttpFilter{
		Name:       wellknown.CORS,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustTypedConfig(&corsv3.Cors{})},
	}
	tlsInspectorFilter = &listenerv3.ListenerFilter{
		Name:       wellknown.TLSInspector,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustTypedConfig(&tlsinspectorv3.TlsInspector{})},
	}
)

// listener builds the socket listener of one bound address, one filter chain per IR chain.
func (b *builder) listener(l *ir.Listener) (*listenerv3.Listener, error) {
	out := &listenerv3.Listener{
		Name:    l.Name,
		Address: socketAddress(l.Address, l.Port),
	}
	tlsPort := false
	switch l.Protocol {
	case ir.ProtocolHTTP, ir.ProtocolTCP:
		// Without SNI nothing tells two chains apart.
		if len(l.Chains) != 1 {
			return nil, fmt.Errorf("a %s port needs exactly one chain, got %d", l.Protocol, len(l.Chains))
		}
	case ir.ProtocolTLS, ir.ProtocolHTTPS:
		tlsPort = true
		out.ListenerFilters = []*listenerv3.ListenerFilter{tlsInspectorFilter}
		if err := checkServerNames(l.Chains); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown protocol %q", l.Protocol)
	}
	for _, c := range l.Chains {
		fc, err := b.filterChain(l, c, tlsPort)
		if err != nil {
			return nil, fmt.Errorf("chain %q: %w", c.Name, err)
		}
		out.FilterChains = append(out.FilterChains, fc)
	}
	return out, nil
}

// checkServerNames rejects chains that Envoy could not tell apart, which it would NACK.
func checkServerNames(chains []*ir.FilterChain) error {
	owner := make(map[string]string)
	for _, c := range chains {
		names := c.ServerNames
		if len(names) == 0 {
			names = []string{""} // the catch-all
		}
		for _, n := range names {
			if prev, dup := owner[n]; dup {
				return fmt.Errorf("chains %q and %q both match server name %q", prev, c.Name, n)
			}
			owner[n] = c.Name
		}
	}
	return nil
}

func (b *builder) filterChain(l *ir.Listener, c *ir.FilterChain, tlsPort bool) (*listenerv3.FilterChain, error) {
	fc := &listenerv3.FilterChain{Name: c.Name}
	if tlsPort {
		fc.FilterChainMatch = &listenerv3.FilterChainMatch{
			ServerNames:       c.ServerNames,
			TransportProtocol: tlsTransportProtocol,
		}
	} else if len(c.ServerNames) > 0 || c.TLS != nil {
		return nil, fmt.Errorf("server names and TLS need a %s port", ir.ProtocolTLS)
	}
	port := strconv.FormatUint(uint64(l.Port), 10)
	switch {
	case c.HTTP != nil && c.TCP != nil:
		return nil, errors.New("both HTTP and TCP set")
	case c.HTTP != nil:
		if tlsPort && c.TLS == nil {
			return nil, errors.New("an HTTP chain on a TLS port needs TLS termination")
		}
		prefix := "http-" + port
		if c.TLS != nil {
			prefix = "https-" + port
		}
		if err := b.addRouteTable(c.HTTP); err != nil {
			return nil, err
		}
		filter, err := networkFilter(wellknown.HTTPConnectionManager, httpConnectionManager(prefix, c.HTTP))
		if err != nil {
			return nil, err
		}
		fc.Filters = []*listenerv3.Filter{filter}
	case c.TCP != nil:
		prefix := "tcp-" + port
		if tlsPort && c.TLS == nil {
			prefix = "tls-passthrough-" + port
		} else if c.TLS != nil {
			prefix = "tls-" + port
		}
		proxy, err := b.tcpProxy(prefix, c.TCP)
		if err != nil {
			return nil, fmt.Errorf("tcp route %q: %w", c.TCP.Name, err)
		}
		filter, err := networkFilter(wellknown.TCPProxy, proxy)
		if err != nil {
			return nil, err
		}
		fc.Filters = []*listenerv3.Filter{filter}
	default:
		return nil, errors.New("neither HTTP nor TCP set")
	}
	if c.TLS != nil {
		ts, err := b.downstreamTLS(c.TLS, c.HTTP != nil)
		if err != nil {
			return nil, err
		}
		fc.TransportSocket = ts
	}
	return fc, nil
}

func networkFilter(name string, config validator) (*listenerv3.Filter, error) {
	a, err := typedConfig(config)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, nil
}

// httpConnectionManager serves an HTTP chain, fetching its routes over RDS on the ADS stream so
// that a route change does not touch the listener.
func httpConnectionManager(statPrefix string, t *ir.RouteTable) *hcmv3.HttpConnectionManager {
	filters := []*hcmv3.HttpFilter{routerFilter}
	if hasCORS(t) {
		// The CORS filter must run before the router; routes configure it per route.
		filters = []*hcmv3.HttpFilter{corsFilter, routerFilter}
	}
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsConfigSource(),
			RouteConfigName: t.Name,
		}},
		HttpFilters:    filters,
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		// An edge proxy is the first hop: the peer is the client (X-Forwarded-For).
		UseRemoteAddress: wrapperspb.Bool(true),
		// Gateway API hostnames never carry a port; "Host: example.com:8080" must match
		// the virtual host "example.com".
		StripPortMode: &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
	}
}

func hasCORS(t *ir.RouteTable) bool {
	for _, vh := range t.VirtualHosts {
		for _, r := range vh.Routes {
			if r.CORS != nil {
				return true
			}
		}
	}
	return false
}

// tcpProxy forwards a connection to one of its weighted backends. A share whose backend is
// invalid goes to invalidBackendCluster, which never exists, so those connections are closed.
func (b *builder) tcpProxy(statPrefix string, f *ir.TCPForward) (*tcpv3.TcpProxy, error) {
	var weights []*tcpv3.TcpProxy_WeightedCluster_ClusterWeight
	for _, wb := range f.Backends {
		if wb.Weight == 0 {
			continue
		}
		name, err := b.clusterName(wb.Backend)
		if err != nil {
			return nil, err
		}
		weights = append(weights, &tcpv3.TcpProxy_WeightedCluster_ClusterWeight{Name: name, Weight: wb.Weight})
	}
	out := &tcpv3.TcpProxy{StatPrefix: statPrefix}
	switch len(weights) {
	case 0:
		out.ClusterSpecifier = &tcpv3.TcpProxy_Cluster{Cluster: invalidBackendCluster}
	case 1:
		out.ClusterSpecifier = &tcpv3.TcpProxy_Cluster{Cluster: weights[0].Name}
	default:
		out.ClusterSpecifier = &tcpv3.TcpProxy_WeightedClusters{
			WeightedClusters: &tcpv3.TcpProxy_WeightedCluster{Clusters: weights},
		}
	}
	return out, nil
}

// downstreamTLS terminates TLS with certificates fetched over SDS: a rotated certificate is a
// new Secret version and leaves the listener, and its connections, alone.
func (b *builder) downstreamTLS(t *ir.TLSTermination, http bool) (*corev3.TransportSocket, error) {
	if len(t.Certificates) == 0 {
		return nil, errors.New("TLS termination without certificates")
	}
	common := &tlsv3.CommonTlsContext{}
	if http {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	for _, cert := range t.Certificates {
		if err := b.addSecret(cert); err != nil {
			return nil, err
		}
		common.TlsCertificateSdsSecretConfigs = append(common.TlsCertificateSdsSecretConfigs,
			&tlsv3.SdsSecretConfig{Name: cert.Name, SdsConfig: adsConfigSource()})
	}
	return transportSocket(&tlsv3.DownstreamTlsContext{CommonTlsContext: common})
}

func transportSocket(tlsContext validator) (*corev3.TransportSocket, error) {
	a, err := typedConfig(tlsContext)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}, nil
}

func socketAddress(address string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       address,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
