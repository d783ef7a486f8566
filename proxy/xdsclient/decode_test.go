package xdsclient

import (
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tlsSocket(t *testing.T, m proto.Message) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, m)},
	}
}

func sds(name string) *tlsv3.SdsSecretConfig { return &tlsv3.SdsSecretConfig{Name: name} }

// TestDecodeReferences checks the references found in what Strait's builder does not
// produce: a default filter chain, session ticket keys and validation contexts over SDS, an
// EDS service name, transport socket matches.
func TestDecodeReferences(t *testing.T) {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "default",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "routes"}},
	}
	listener := &listenerv3.Listener{
		Name: "l",
		DefaultFilterChain: &listenerv3.FilterChain{
			Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}}},
			TransportSocket: tlsSocket(t, &tlsv3.DownstreamTlsContext{
				CommonTlsContext: &tlsv3.CommonTlsContext{
					TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("cert")},
					ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: sds("client-ca")},
				},
				SessionTicketKeysType: &tlsv3.DownstreamTlsContext_SessionTicketKeysSdsSecretConfig{SessionTicketKeysSdsSecretConfig: sds("tickets")},
			}),
		},
	}
	cluster := &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{ServiceName: "c-endpoints"},
		TransportSocketMatches: []*clusterv3.Cluster_TransportSocketMatch{{
			Name: "mtls",
			TransportSocket: tlsSocket(t, &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
					CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
						DefaultValidationContext:         &tlsv3.CertificateValidationContext{},
						ValidationContextSdsSecretConfig: sds("upstream-ca"),
					},
				},
			}}),
		}},
	}
	for _, tc := range []struct {
		typ  resourceType
		msg  proto.Message
		want refs
	}{
		{listenerType, listener, refs{routeType: {"routes"}, secretType: {"cert", "client-ca", "tickets"}}},
		{clusterType, cluster, refs{endpointType: {"c-endpoints"}, secretType: {"upstream-ca"}}},
	} {
		name, e, err := decode(tc.typ, mustAny(t, tc.msg))
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		for typ, want := range tc.want {
			got := slices.Sorted(slices.Values(e.refs[typ]))
			if !slices.Equal(got, want) {
				t.Errorf("%s %q: %s references %v, want %v", tc.typ, name, resourceType(typ), got, want)
			}
		}
	}
}

// TestDecodeRejects checks that a resource is rejected, naming it when possible, for a type
// mismatch, a body that does not unmarshal, a failed validation, and an invalid connection
// manager inside a valid listener.
func TestDecodeRejects(t *testing.T) {
	badHCM := &listenerv3.Listener{Name: "l", FilterChains: []*listenerv3.FilterChain{{
		Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{
			TypedConfig: mustAny(t, &hcmv3.HttpConnectionManager{}), // no stat prefix, no routes
		}}},
	}}}
	for _, tc := range []struct {
		name     string
		typ      resourceType
		any      *anypb.Any
		wantName string
		wantErr  string
	}{
		{"type mismatch", listenerType, mustAny(t, &clusterv3.Cluster{Name: "c"}), "", "in a Listener response"},
		{"garbage", clusterType, &anypb.Any{TypeUrl: kinds[clusterType].url, Value: []byte{0xff, 0xff}}, "", "unmarshal"},
		{"invalid", clusterType, mustAny(t, &clusterv3.Cluster{Name: "c", ConnectTimeout: durationpb.New(-time.Second)}), "c", "ConnectTimeout"},
		{"invalid connection manager", listenerType, mustAny(t, badHCM), "l", "validate HttpConnectionManager"},
	} {
		name, e, err := decode(tc.typ, tc.any)
		if err == nil || e != nil || !strings.Contains(err.Error(), tc.wantErr) || name != tc.wantName {
			t.Errorf("%s: got name %q, error %v; want name %q, an error with %q", tc.name, name, err, tc.wantName, tc.wantErr)
		}
	}
}
