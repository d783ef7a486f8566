package upstream

import (
	"sync/atomic"
	"time"
)

// Endpoint is one upstream host of a cluster, identified by its address. The same Endpoint
// lives on across updates while its cluster keeps the address, and with it its health and
// outlier state.
type Endpoint struct {
	addr string // "ip:port"

	// active counts requests in flight, which LEAST_REQUEST balances on.
	active atomic.Int64
	// activeHealthy is the verdict of active health checks; true without them.
	activeHealthy atomic.Bool
	// checkPending is true from when an endpoint joins a cluster with active health checks
	// until its first check's verdict: it starts unhealthy and takes no traffic meanwhile
	// (see Cluster.rebuildLocked).
	checkPending atomic.Bool
	outlier      outlierState

	requests atomic.Uint64
	failures atomic.Uint64

	// Guarded by the cluster's mutex: set by each update.
	spec endpointSpec
	// stopCheck stops the endpoint's health check goroutine, which checks the address
	// checking; nil without one.
	stopCheck func()
	checking  string
}

// Address returns the endpoint's "ip:port".
func (e *Endpoint) Address() string { return e.addr }

// edsHealth is the health the control plane reports for an endpoint.
type edsHealth uint8

const (
	edsHealthy edsHealth = iota
	edsDegraded
	edsUnhealthy
)

func (h edsHealth) String() string {
	return [...]string{"healthy", "degraded", "unhealthy"}[h]
}

// Locality is where an endpoint runs; Strait puts the member cluster in SubZone.
type Locality struct {
	Region  string `json:"region,omitempty"`
	Zone    string `json:"zone,omitempty"`
	SubZone string `json:"subZone,omitempty"`
}

// endpointSpec is what a ClusterLoadAssignment says of one endpoint.
type endpointSpec struct {
	addr     string
	priority uint32
	locality Locality
	// localityWeight is the locality's weight within its priority; 0 takes no traffic under
	// locality-weighted balancing.
	localityWeight uint32
	weight         uint32
	health         edsHealth
	// checkAddr is where active health checks go ("ip:port"; the port may differ).
	checkAddr string
}

// availability is how the load balancer sees an endpoint: active health checks, outlier
// detection and the control plane each may take it out, independently.
func (e *Endpoint) availability() edsHealth {
	if e.spec.health == edsUnhealthy || !e.activeHealthy.Load() || e.outlier.ejected.Load() {
		return edsUnhealthy
	}
	return e.spec.health
}

// outlierState is the passive health of an endpoint. Counters are updated by requests; the
// rest is guarded by the cluster's mutex.
type outlierState struct {
	ejected            atomic.Bool
	consecutive5xx     atomic.Uint32
	consecutiveGateway atomic.Uint32
	// successes and total count results in the current interval.
	successes, total atomic.Uint64

	// lastSuccesses and lastTotal are the previous interval's counts, which success rate
	// and failure percentage detection judge.
	lastSuccesses, lastTotal uint64
	ejectedAt, unejectedAt   time.Time
	jitter                   time.Duration
	// backoff multiplies the base ejection time; it grows with each ejection and shrinks
	// with each interval spent healthy.
	backoff   uint64
	ejections uint64
}
