package xds

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's xDS metrics.
type metrics struct {
	buildDuration *prometheus.HistogramVec // by kind: full or endpoints
	buildErrors   *prometheus.CounterVec   // by kind
	typeUpdates   *prometheus.CounterVec   // by type: a node's snapshot got a new version of it
	pushes        *prometheus.CounterVec   // by type: responses sent, SotW and delta
	nacks         *prometheus.CounterVec   // by node and type
	connected     prometheus.Gauge
	refused       *prometheus.CounterVec // by reason, see auth.go
}

// Kinds of snapshot update, the "kind" label.
const (
	updateFull      = "full"
	updateEndpoints = "endpoints"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		buildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strait_xds_snapshot_build_duration_seconds",
			Help:    "Time to build, version and publish the snapshots of one node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		buildErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_xds_snapshot_build_errors_total",
			Help: "Node updates that failed and left the node's last good snapshot in place.",
		}, []string{"kind"}),
		typeUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_xds_snapshot_version_changes_total",
			Help: "Snapshots published with a new version of a resource type.",
		}, []string{"type"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_xds_pushes_total",
			Help: "Discovery responses sent to clients.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_xds_nacks_total",
			Help: "Discovery requests that rejected the previous response.",
		}, []string{"node", "type"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_xds_connected_nodes",
			Help: "Nodes with at least one open xDS stream.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_xds_refused_total",
			Help: "xDS streams and fetches refused by mTLS authentication: the client certificate is not a proxy's or names another node.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.buildDuration, m.buildErrors, m.typeUpdates, m.pushes, m.nacks, m.connected, m.refused} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

// typeLabel shortens a type URL to its message name: "Cluster", "RouteConfiguration".
func typeLabel(typeURL string) string {
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}
