package upstream

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestUpdateRefusesWhatItCannotHonour: every error names the cluster and what is wrong,
// and a refused update changes nothing.
func TestUpdateRefusesWhatItCannotHonour(t *testing.T) {
	ep := "127.0.0.1:8080"
	tests := []struct {
		name    string
		cluster *clusterv3.Cluster
		cla     *endpointv3.ClusterLoadAssignment
		want    string
	}{
		{
			name:    "lb policy",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED }),
			want:    "lb_policy CLUSTER_PROVIDED is not supported",
		},
		{
			name: "discovery type",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
			}),
			want: "discovery type STRICT_DNS is not supported",
		},
		{
			name:    "unknown field",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) { c.IgnoreHealthOnHostRemoval = true }),
			want:    "Cluster: ignore_health_on_host_removal not supported",
		},
		{
			name: "lb config of another policy",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{}}
			}),
			want: "ring_hash_lb_config does not apply to lb_policy ROUND_ROBIN",
		},
		{
			name: "maglev table size",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.LbPolicy = clusterv3.Cluster_MAGLEV
				c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(1000)}}
			}),
			want: "table size 1000 must be a prime",
		},
		{
			name: "grpc health check",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.HealthChecks = []*corev3.HealthCheck{{
					Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second),
					UnhealthyThreshold: wrapperspb.UInt32(1), HealthyThreshold: wrapperspb.UInt32(1),
					HealthChecker: &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{}},
				}}
			}),
			want: "grpc_health_check not supported",
		},
		{
			name: "health check payload",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.HealthChecks = []*corev3.HealthCheck{{
					Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second),
					UnhealthyThreshold: wrapperspb.UInt32(1), HealthyThreshold: wrapperspb.UInt32(1),
					HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
						Path: "/healthz", RetriableStatuses: []*typev3.Int64Range{{Start: 500, End: 501}},
					}},
				}}
			}),
			want: "retriable_statuses not supported",
		},
		{
			name: "split local origin errors",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.OutlierDetection = &clusterv3.OutlierDetection{SplitExternalLocalOriginErrors: true}
			}),
			want: "split_external_local_origin_errors not supported",
		},
		{
			name: "max ejection time below base",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.OutlierDetection = &clusterv3.OutlierDetection{BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionTime: durationpb.New(time.Second)}
			}),
			want: "max_ejection_time cannot be smaller than base_ejection_time",
		},
		{
			name: "high priority breakers",
			cluster: edsCluster("c", func(c *clusterv3.Cluster) {
				c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{Priority: corev3.RoutingPriority_HIGH}}}
			}),
			want: "thresholds for priority HIGH are not supported",
		},
		{
			name:    "TLS without trusted CAs",
			cluster: edsCluster("c", upstreamTLS(&tlsv3.CommonTlsContext{})),
			want:    "needs trusted CAs",
		},
		{
			name:    "TLS ALPN against the protocol",
			cluster: edsCluster("c", upstreamTLS(&tlsv3.CommonTlsContext{AlpnProtocols: []string{"h2"}})),
			want:    "does not fit the cluster's HTTP/1.1",
		},
		{
			name:    "endpoint hostname",
			cluster: edsCluster("c"),
			cla:     assignment("c", loc{eps: eps("backend.internal:80")}),
			want:    `endpoint address "backend.internal" is not an IP address`,
		},
		{
			name:    "duplicate endpoint",
			cluster: edsCluster("c"),
			cla:     assignment("c", loc{zone: "a", eps: eps(ep)}, loc{zone: "b", eps: eps(ep)}),
			want:    "endpoint 127.0.0.1:8080 appears twice",
		},
		{
			name:    "drop overloads",
			cluster: edsCluster("c"),
			cla: func() *endpointv3.ClusterLoadAssignment {
				cla := assignment("c", loc{eps: eps(ep)})
				cla.Policy = &endpointv3.ClusterLoadAssignment_Policy{DropOverloads: []*endpointv3.ClusterLoadAssignment_Policy_DropOverload{{
					Category: "lb", DropPercentage: &typev3.FractionalPercent{Numerator: 1},
				}}}
				return cla
			}(),
			want: "drop_overloads not supported",
		},
	}

	m := newTestManager(t, Options{})
	good := newBackend(t, "good")
	install(t, m, edsCluster("good"), assignment("good", loc{eps: eps(good.addr())}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var assignments []*endpointv3.ClusterLoadAssignment
			if tt.cla != nil {
				assignments = append(assignments, tt.cla)
			}
			// The good cluster is dropped from this update; a refused update must not drop it.
			err := m.Update([]*clusterv3.Cluster{tt.cluster}, assignments, nil)
			if err == nil || !strings.Contains(err.Error(), `cluster "c"`) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about cluster \"c\" containing %q", err, tt.want)
			}
			if m.Cluster("c") != nil || m.Cluster("good") == nil {
				t.Fatal("a refused update changed the clusters")
			}
			if _, body, _, err := get(t, m.Cluster("good"), nil); err != nil || body != "good" {
				t.Fatalf("the good cluster stopped working: %q, %v", body, err)
			}
		})
	}
}

func TestUpdateRefusesDuplicates(t *testing.T) {
	m := newTestManager(t, Options{})
	err := m.Update([]*clusterv3.Cluster{edsCluster("c"), edsCluster("c")}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `cluster "c": duplicate name`) {
		t.Errorf("got %v", err)
	}
}

func TestStaticCluster(t *testing.T) {
	m := newTestManager(t, Options{})
	b := newBackend(t, "static")
	c := install(t, m, &clusterv3.Cluster{
		Name:           "static",
		ConnectTimeout: durationpb.New(time.Second),
		LoadAssignment: assignment("static", loc{eps: eps(b.addr())}),
	}, nil)
	if _, body, _, err := get(t, c, nil); err != nil || body != "static" {
		t.Errorf("got %q, %v", body, err)
	}
}
