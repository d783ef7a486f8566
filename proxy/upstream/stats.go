package upstream

// ClusterStats is a point-in-time view of a cluster, for /metrics and /debug/config.
type ClusterStats struct {
	Name     string `json:"name"`
	LBPolicy string `json:"lbPolicy"`
	HTTP2    bool   `json:"http2"`
	TLS      bool   `json:"tls"`
	// Priorities are the priority load: the percent of requests each level takes.
	Priorities []PriorityStats `json:"priorities"`
	Breakers   BreakerStats    `json:"circuitBreakers"`
	// Responses counts requests by response class ("2xx", ...) or "error" when none came.
	Responses         map[string]uint64 `json:"responses"`
	RequestsActive    int64             `json:"requestsActive"`
	RequestsPending   int64             `json:"requestsPending"`
	NoHealthyUpstream uint64            `json:"noHealthyUpstream"`
	// ConnectionsActive are open pool connections; TCPConnectionsActive those from DialTCP.
	ConnectionsActive    int64  `json:"connectionsActive"`
	TCPConnectionsActive int64  `json:"tcpConnectionsActive"`
	ConnectFailures      uint64 `json:"connectFailures"`
	// ConnectRetries counts requests sent to another endpoint after failing to connect.
	ConnectRetries uint64 `json:"connectRetries"`
	// Ejections counts enforced outlier ejections by reason.
	Ejections          map[string]uint64 `json:"ejections,omitempty"`
	EjectionsOverflow  uint64            `json:"ejectionsOverflow,omitempty"`
	HealthChecksPassed uint64            `json:"healthChecksPassed,omitempty"`
	HealthChecksFailed uint64            `json:"healthChecksFailed,omitempty"`
	Endpoints          []EndpointStats   `json:"endpoints"`
}

// PriorityStats is one priority level's share of requests, in percent.
type PriorityStats struct {
	Healthy  uint32 `json:"healthy"`
	Degraded uint32 `json:"degraded"`
	// Panic: the level balances over all its endpoints, whatever their health.
	Panic bool `json:"panic,omitempty"`
}

// BreakerStats are a cluster's circuit breaker thresholds and how often each refused.
type BreakerStats struct {
	MaxConnections      int64  `json:"maxConnections"`
	MaxPendingRequests  int64  `json:"maxPendingRequests"`
	MaxRequests         int64  `json:"maxRequests"`
	MaxRetries          int64  `json:"maxRetries"`
	ConnectionsOverflow uint64 `json:"connectionsOverflow"`
	PendingOverflow     uint64 `json:"pendingOverflow"`
	RequestsOverflow    uint64 `json:"requestsOverflow"`
	RetriesOverflow     uint64 `json:"retriesOverflow"`
}

// EndpointStats describes one endpoint and its health as each source sees it.
type EndpointStats struct {
	Address  string   `json:"address"`
	Priority uint32   `json:"priority"`
	Locality Locality `json:"locality"`
	Weight   uint32   `json:"weight"`
	// Health is what the control plane says; ActiveHealthy what active checks say
	// (true without them); Ejected what outlier detection says. Available combines them:
	// "healthy", "degraded" or "unhealthy". HealthCheckPending says that a new endpoint
	// waits for its first active check, and takes no traffic while other endpoints can.
	Health             string `json:"health"`
	ActiveHealthy      bool   `json:"activeHealthy"`
	HealthCheckPending bool   `json:"healthCheckPending,omitempty"`
	Ejected            bool   `json:"ejected"`
	Ejections          uint64 `json:"ejections,omitempty"`
	Available          string `json:"available"`
	Active             int64  `json:"active"`
	Requests           uint64 `json:"requests"`
	Failures           uint64 `json:"failures"`
}

var responseClasses = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Stats returns the cluster's current statistics.
func (c *Cluster) Stats() ClusterStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	spec := c.spec
	s := ClusterStats{
		Name:     c.name,
		LBPolicy: spec.lbName,
		HTTP2:    spec.transport.http2,
		TLS:      spec.tls != nil,
		Breakers: BreakerStats{
			MaxConnections:      spec.limits.connections,
			MaxPendingRequests:  spec.limits.pending,
			MaxRequests:         spec.limits.requests,
			MaxRetries:          spec.limits.retries,
			ConnectionsOverflow: c.stats.overflow.connections.Load(),
			PendingOverflow:     c.stats.overflow.pending.Load(),
			RequestsOverflow:    c.stats.overflow.requests.Load(),
			RetriesOverflow:     c.stats.overflow.retries.Load(),
		},
		Responses:            make(map[string]uint64, len(responseClasses)),
		RequestsActive:       c.requests.n.Load(),
		RequestsPending:      int64(c.slots.pending()),
		NoHealthyUpstream:    c.stats.noHealthy.Load(),
		ConnectionsActive:    c.connections.n.Load(),
		TCPConnectionsActive: int64(c.tcp.open()),
		ConnectFailures:      c.stats.connectFailures.Load(),
		ConnectRetries:       c.stats.connectRetries.Load(),
		EjectionsOverflow:    c.stats.ejectionsOverflow.Load(),
		HealthChecksPassed:   c.stats.checksPassed.Load(),
		HealthChecksFailed:   c.stats.checksFailed.Load(),
	}
	for i, class := range responseClasses {
		s.Responses[class] = c.stats.responses[i].Load()
	}
	if spec.outlier != nil {
		s.Ejections = make(map[string]uint64, ejectReasons)
		for r := range ejectReasons {
			s.Ejections[r.String()] = c.stats.ejections[r].Load()
		}
	}
	if snap := c.snap.Load(); snap != nil {
		for p := range snap.load.healthy {
			s.Priorities = append(s.Priorities, PriorityStats{Healthy: snap.load.healthy[p], Degraded: snap.load.degraded[p], Panic: snap.load.panic[p]})
		}
	}
	s.Endpoints = make([]EndpointStats, len(c.order))
	for i, ep := range c.order {
		s.Endpoints[i] = EndpointStats{
			Address:            ep.addr,
			Priority:           ep.spec.priority,
			Locality:           ep.spec.locality,
			Weight:             ep.spec.weight,
			Health:             ep.spec.health.String(),
			ActiveHealthy:      ep.activeHealthy.Load(),
			HealthCheckPending: ep.checkPending.Load(),
			Ejected:            ep.outlier.ejected.Load(),
			Ejections:          ep.outlier.ejections,
			Available:          ep.availability().String(),
			Active:             ep.active.Load(),
			Requests:           ep.requests.Load(),
			Failures:           ep.failures.Load(),
		}
	}
	return s
}
