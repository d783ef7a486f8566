package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the proxy's Prometheus metrics; upstream clusters keep their own.
type metrics struct {
	requests            *prometheus.CounterVec
	duration            *prometheus.HistogramVec
	tcpConnections      prometheus.Gauge
	rejectedConnections prometheus.Counter
	configUpdates       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, open func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_proxy_requests_total",
			Help: "HTTP requests by listener, route, cluster and status code.",
		}, []string{"listener", "route", "cluster", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strait_proxy_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its handling, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"route"}),
		tcpConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strait_proxy_tcp_connections",
			Help: "TCP and TLS passthrough connections being forwarded.",
		}),
		rejectedConnections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strait_proxy_rejected_connections_total",
			Help: "Connections closed at once because the proxy held its maximum.",
		}),
		configUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strait_proxy_config_updates_total",
			Help: "Configurations accepted from the control plane.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.tcpConnections, m.rejectedConnections, m.configUpdates,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strait_proxy_downstream_connections",
				Help: "Client connections open now, all listeners together.",
			}, open))
	}
	return m
}
