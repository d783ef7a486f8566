package upstream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports every current cluster's statistics at scrape time, so the request path
// pays nothing for metrics beyond its atomic counters and a removed cluster's series vanish
// with it.
type collector struct {
	m *Manager
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("strait_upstream_"+name, help, append([]string{"cluster"}, labels...), nil)
}

var (
	descRequests        = desc("requests_total", "Requests sent to a cluster, by response class (error: no response).", "class")
	descRequestsActive  = desc("requests_active", "Requests in flight.")
	descRequestsPending = desc("requests_pending", "HTTP/1.1 requests waiting for a connection.")
	descNoHealthy       = desc("no_healthy_upstream_total", "Requests refused because no endpoint could take them.")
	descOverflows       = desc("overflows_total", "Requests or connections refused by a circuit breaker.", "breaker")
	descConnections     = desc("connections_active", "Open connections to endpoints (pool: HTTP; tcp: TCP routes).", "kind")
	descConnectFailures = desc("connect_failures_total", "Failures to connect to an endpoint.")
	descConnectRetries  = desc("connect_retries_total", "Requests sent to another endpoint after failing to connect.")
	descEndpoints       = desc("endpoints", "Endpoints by availability (healthy, degraded, unhealthy).", "availability")
	descEjections       = desc("ejections_total", "Endpoints ejected by outlier detection.", "reason")
	descEjected         = desc("ejections_active", "Endpoints currently ejected.")
	descHealthChecks    = desc("health_checks_total", "Active health checks, by result.", "result")
)

// Describe sends the descriptions of every upstream metric.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descRequestsActive, descRequestsPending, descNoHealthy,
		descOverflows, descConnections, descConnectFailures, descConnectRetries, descEndpoints, descEjections, descEjected, descHealthChecks} {
		ch <- d
	}
}

// Collect sends every cluster's metrics.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, s := range c.m.Stats() {
		n := s.Name
		for class, v := range s.Responses {
			counter(descRequests, v, n, class)
		}
		gauge(descRequestsActive, s.RequestsActive, n)
		gauge(descRequestsPending, s.RequestsPending, n)
		counter(descNoHealthy, s.NoHealthyUpstream, n)
		counter(descOverflows, s.Breakers.ConnectionsOverflow, n, "max_connections")
		counter(descOverflows, s.Breakers.PendingOverflow, n, "max_pending_requests")
		counter(descOverflows, s.Breakers.RequestsOverflow, n, "max_requests")
		counter(descOverflows, s.Breakers.RetriesOverflow, n, "max_retries")
		gauge(descConnections, s.ConnectionsActive, n, "pool")
		gauge(descConnections, s.TCPConnectionsActive, n, "tcp")
		counter(descConnectFailures, s.ConnectFailures, n)
		counter(descConnectRetries, s.ConnectRetries, n)
		byAvailability := map[string]int64{"healthy": 0, "degraded": 0, "unhealthy": 0}
		var ejected int64
		for _, ep := range s.Endpoints {
			byAvailability[ep.Available]++
			if ep.Ejected {
				ejected++
			}
		}
		for a, v := range byAvailability {
			gauge(descEndpoints, v, n, a)
		}
		if s.Ejections != nil {
			for reason, v := range s.Ejections {
				counter(descEjections, v, n, reason)
			}
			gauge(descEjected, ejected, n)
		}
		counter(descHealthChecks, s.HealthChecksPassed, n, "passed")
		counter(descHealthChecks, s.HealthChecksFailed, n, "failed")
	}
}
