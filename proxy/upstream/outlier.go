package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// outlierSpec is a cluster's outlier detection, with Envoy's defaults.
type outlierSpec struct {
	interval, baseEjection, maxEjection, maxJitter time.Duration
	consecutive5xx, consecutiveGateway             uint32
	// enforcing is the percent chance that a detection ejects, per reason.
	enforcing                  [ejectReasons]uint32
	maxEjectionPercent         uint32
	alwaysEjectOne             bool
	successRateMinHosts        uint64
	successRateVolume          uint64
	successRateStdevFactor     float64
	failurePercentageThreshold float64
	failurePercentageMinHosts  uint64
	failurePercentageVolume    uint64
	unejectOnHealthCheck       bool
}

// ejectReason is why outlier detection ejected an endpoint.
type ejectReason uint8

const (
	ejectConsecutive5xx ejectReason = iota
	ejectConsecutiveGateway
	ejectSuccessRate
	ejectFailurePercentage
	ejectReasons
)

func (r ejectReason) String() string {
	return [...]string{"consecutive_5xx", "consecutive_gateway_failure", "success_rate", "failure_percentage"}[r]
}

func compileOutlier(od *clusterv3.OutlierDetection) (*outlierSpec, error) {
	if err := onlyFields(od, "consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent",
		"enforcing_consecutive_5xx", "enforcing_success_rate", "success_rate_minimum_hosts",
		"success_rate_request_volume", "success_rate_stdev_factor", "consecutive_gateway_failure",
		"enforcing_consecutive_gateway_failure", "failure_percentage_threshold", "enforcing_failure_percentage",
		"failure_percentage_minimum_hosts", "failure_percentage_request_volume", "max_ejection_time",
		"max_ejection_time_jitter", "successful_active_health_check_uneject_host", "always_eject_one_host"); err != nil {
		return nil, err
	}
	u32 := func(v *wrapperspb.UInt32Value, def uint32) uint32 {
		if v == nil {
			return def
		}
		return v.GetValue()
	}
	s := &outlierSpec{
		consecutive5xx:             u32(od.GetConsecutive_5Xx(), 5),
		consecutiveGateway:         u32(od.GetConsecutiveGatewayFailure(), 5),
		maxEjectionPercent:         min(100, u32(od.GetMaxEjectionPercent(), 10)),
		alwaysEjectOne:             od.GetAlwaysEjectOneHost().GetValue(),
		successRateMinHosts:        uint64(u32(od.GetSuccessRateMinimumHosts(), 5)),
		successRateVolume:          uint64(u32(od.GetSuccessRateRequestVolume(), 100)),
		successRateStdevFactor:     float64(u32(od.GetSuccessRateStdevFactor(), 1900)) / 1000,
		failurePercentageThreshold: float64(min(100, u32(od.GetFailurePercentageThreshold(), 85))),
		failurePercentageMinHosts:  uint64(u32(od.GetFailurePercentageMinimumHosts(), 5)),
		failurePercentageVolume:    uint64(u32(od.GetFailurePercentageRequestVolume(), 50)),
		unejectOnHealthCheck:       od.GetSuccessfulActiveHealthCheckUnejectHost() == nil || od.GetSuccessfulActiveHealthCheckUnejectHost().GetValue(),
	}
	s.enforcing[ejectConsecutive5xx] = min(100, u32(od.GetEnforcingConsecutive_5Xx(), 100))
	s.enforcing[ejectConsecutiveGateway] = min(100, u32(od.GetEnforcingConsecutiveGatewayFailure(), 0))
	s.enforcing[ejectSuccessRate] = min(100, u32(od.GetEnforcingSuccessRate(), 100))
	s.enforcing[ejectFailurePercentage] = min(100, u32(od.GetEnforcingFailurePercentage(), 0))
	var err error
	if s.interval, err = duration(od.GetInterval(), 10*time.Second, "interval"); err != nil {
		return nil, err
	}
	if s.baseEjection, err = duration(od.GetBaseEjectionTime(), 30*time.Second, "base_ejection_time"); err != nil {
		return nil, err
	}
	if s.maxEjection, err = duration(od.GetMaxEjectionTime(), max(300*time.Second, s.baseEjection), "max_ejection_time"); err != nil {
		return nil, err
	}
	if s.maxEjection < s.baseEjection {
		return nil, errors.New("max_ejection_time cannot be smaller than base_ejection_time")
	}
	if j := od.GetMaxEjectionTimeJitter(); j != nil {
		if err := j.CheckValid(); err != nil || j.AsDuration() < 0 {
			return nil, fmt.Errorf("max_ejection_time_jitter %v is invalid", j)
		}
		s.maxJitter = j.AsDuration()
	}
	return s, nil
}

// recordOutcome feeds outlier detection with the result of a request to ep: an HTTP status,
// or for a request that got none, 503 for a failure to connect and 502 or 504 otherwise
// (Envoy's mapping of local failures when it does not split them from upstream ones).
func (c *Cluster) recordOutcome(spec *outlierSpec, ep *Endpoint, status int) {
	if spec == nil {
		return
	}
	o := &ep.outlier
	o.total.Add(1)
	if status < 500 {
		o.successes.Add(1)
		o.consecutive5xx.Store(0)
		o.consecutiveGateway.Store(0)
		return
	}
	if status == 502 || status == 503 || status == 504 {
		// Add returns each count once, so exactly one request sees the threshold.
		if o.consecutiveGateway.Add(1) == spec.consecutiveGateway {
			c.consecutiveFailures(ep, ejectConsecutiveGateway)
		}
	} else {
		o.consecutiveGateway.Store(0)
	}
	if o.consecutive5xx.Add(1) == spec.consecutive5xx {
		c.consecutiveFailures(ep, ejectConsecutive5xx)
	}
}

// consecutiveFailures ejects ep for a run of failures, then restarts the run's count so
// that a new run is detected even without a success in between.
func (c *Cluster) consecutiveFailures(ep *Endpoint, reason ejectReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ejectLocked(ep, reason, time.Now()) {
		c.rebuildLocked()
	}
	if reason == ejectConsecutive5xx {
		ep.outlier.consecutive5xx.Store(0)
	} else {
		ep.outlier.consecutiveGateway.Store(0)
	}
}

// ejectLocked ejects ep unless it is already out, gone, or the ejection would exceed
// max_ejection_percent of the cluster's endpoints (across priorities, as in Envoy), and
// the detection is enforced. It reports whether ep was ejected.
func (c *Cluster) ejectLocked(ep *Endpoint, reason ejectReason, now time.Time) bool {
	spec := c.spec.outlier
	if spec == nil || ep.outlier.ejected.Load() || c.endpoints[ep.addr] != ep {
		return false
	}
	ejected := 0
	for _, e := range c.order {
		if e.outlier.ejected.Load() {
			ejected++
		}
	}
	allowed := 100*(ejected+1) <= int(spec.maxEjectionPercent)*len(c.order) || (spec.alwaysEjectOne && ejected == 0)
	if !allowed {
		c.stats.ejectionsOverflow.Add(1)
		return false
	}
	if randN(uint32(100)) >= spec.enforcing[reason] {
		return false
	}
	o := &ep.outlier
	o.ejected.Store(true)
	o.ejectedAt = now
	o.ejections++
	o.jitter = randN(spec.maxJitter + 1)
	if time.Duration(o.backoff)*spec.baseEjection < spec.maxEjection+spec.baseEjection {
		o.backoff++
	}
	c.stats.ejections[reason].Add(1)
	c.log.Info("endpoint ejected", "endpoint", ep.addr, "reason", reason.String(), "for", c.ejectionTime(ep))
	return true
}

// ejectionTime is how long ep stays ejected: the base time multiplied by its back-off,
// capped, plus jitter.
func (c *Cluster) ejectionTime(ep *Endpoint) time.Duration {
	spec := c.spec.outlier
	return min(spec.baseEjection*time.Duration(ep.outlier.backoff), spec.maxEjection) + ep.outlier.jitter
}

// unejectLocked returns ep to service with fresh failure counts.
func (c *Cluster) unejectLocked(ep *Endpoint, now time.Time, why string) {
	o := &ep.outlier
	o.ejected.Store(false)
	o.unejectedAt = now
	o.consecutive5xx.Store(0)
	o.consecutiveGateway.Store(0)
	c.log.Info("endpoint unejected", "endpoint", ep.addr, "after", why)
}

// runOutlier runs the detection interval until ctx ends.
func (c *Cluster) runOutlier(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.outlierInterval(now)
		}
	}
}

// outlierInterval is Envoy's interval timer: it returns endpoints whose ejection has run
// out, judges each endpoint's success rate over the interval that ended, and lets the
// back-off of endpoints that stayed in service decay.
func (c *Cluster) outlierInterval(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spec := c.spec.outlier
	if spec == nil {
		return
	}
	changed := false
	for _, ep := range c.order {
		o := &ep.outlier
		if o.ejected.Load() && now.Sub(o.ejectedAt) >= c.ejectionTime(ep) {
			c.unejectLocked(ep, now, "ejection time")
			changed = true
		}
		o.lastSuccesses, o.lastTotal = o.successes.Swap(0), o.total.Swap(0)
	}
	if c.rateEjectionsLocked(spec, now) {
		changed = true
	}
	for _, ep := range c.order {
		o := &ep.outlier
		if !o.ejected.Load() && o.backoff > 0 && !o.unejectedAt.IsZero() && now.Sub(o.unejectedAt) >= spec.interval {
			o.backoff--
		}
	}
	if changed {
		c.rebuildLocked()
	}
}

// rateEjectionsLocked ejects endpoints whose success rate over the last interval is an
// outlier (below mean - stdev_factor * stdev among endpoints with enough requests) or whose
// failure percentage reaches the threshold.
func (c *Cluster) rateEjectionsLocked(spec *outlierSpec, now time.Time) bool {
	n := uint64(len(c.order))
	if n < spec.successRateMinHosts && n < spec.failurePercentageMinHosts {
		return false
	}
	type rated struct {
		ep   *Endpoint
		rate float64
	}
	var bySuccess, byFailure []rated
	var sum float64
	for _, ep := range c.order {
		o := &ep.outlier
		if o.ejected.Load() || o.lastTotal == 0 {
			continue
		}
		r := rated{ep, 100 * float64(o.lastSuccesses) / float64(o.lastTotal)}
		if o.lastTotal >= spec.successRateVolume {
			bySuccess = append(bySuccess, r)
			sum += r.rate
		}
		if o.lastTotal >= spec.failurePercentageVolume {
			byFailure = append(byFailure, r)
		}
	}
	ejected := false
	if len(bySuccess) > 0 && uint64(len(bySuccess)) >= spec.successRateMinHosts {
		mean := sum / float64(len(bySuccess))
		var variance float64
		for _, r := range bySuccess {
			variance += (r.rate - mean) * (r.rate - mean)
		}
		threshold := mean - spec.successRateStdevFactor*math.Sqrt(variance/float64(len(bySuccess)))
		for _, r := range bySuccess {
			if r.rate < threshold && c.ejectLocked(r.ep, ejectSuccessRate, now) {
				ejected = true
			}
		}
	}
	if len(byFailure) > 0 && uint64(len(byFailure)) >= spec.failurePercentageMinHosts {
		for _, r := range byFailure {
			if 100-r.rate >= spec.failurePercentageThreshold && c.ejectLocked(r.ep, ejectFailurePercentage, now) {
				ejected = true
			}
		}
	}
	return ejected
}
