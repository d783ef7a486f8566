package upstream

// levelHealth is what the priority load computation knows of one priority level.
type levelHealth struct {
	// hosts, healthyHosts and degradedHosts count endpoints; the panic threshold and total
	// panic are defined on counts.
	hosts, healthyHosts, degradedHosts uint64
	// total, healthy and degraded are what the level's health is computed from: the counts
	// above, or the sums of endpoint weights when the assignment asks for weighted priority
	// health.
	total, healthy, degraded uint64
}

// priorityLoad is the share of requests, in percent, that each priority level receives on its
// healthy and on its degraded endpoints; the shares add up to 100. A level in panic
// balances over all its endpoints, whatever their health.
type priorityLoad struct {
	healthy  []uint32
	degraded []uint32
	panic    []bool
}

// computePriorityLoad is Envoy's priority load algorithm (LoadBalancerBase::
// recalculatePerPriorityState and recalculatePerPriorityPanic), in integer percent like
// Envoy, so that both fail over at exactly the same health:
//
//	health(P)       = min(100, overprovisioning * healthy(P) / total(P))   (likewise degraded)
//	availability    = min(100, Σ health(P) + degraded(P))
//	healthyLoad(P)  = min(left, health(P) * 100 / availability), in priority order
//	degradedLoad(P) = the same over what healthy levels left
//
// Rounding leftovers go to the first level with healthy (else degraded) endpoints. While
// availability is below 100, a level whose healthy and degraded share of endpoints is below
// panicThreshold (percent) is in panic. When every level is in panic, load follows the number
// of endpoints per level. With panicThreshold 0 and nothing available, P0 gets the load and
// no endpoint is routable.
func computePriorityLoad(levels []levelHealth, overprovisioning, panicThreshold uint32) priorityLoad {
	n := len(levels)
	pl := priorityLoad{healthy: make([]uint32, n), degraded: make([]uint32, n), panic: make([]bool, n)}
	if n == 0 {
		return pl
	}
	health := make([]uint32, n)
	degraded := make([]uint32, n)
	var sum uint64
	for i, l := range levels {
		if l.total > 0 {
			health[i] = uint32(min(100, uint64(overprovisioning)*l.healthy/l.total))
			degraded[i] = uint32(min(100, uint64(overprovisioning)*l.degraded/l.total))
		}
		sum += uint64(health[i]) + uint64(degraded[i])
	}
	availability := uint32(min(100, sum))

	if availability > 0 {
		firstHealthy, left := distributeLoad(pl.healthy, health, 100, availability)
		firstDegraded, left := distributeLoad(pl.degraded, degraded, left, availability)
		if left > 0 {
			if firstHealthy >= 0 {
				pl.healthy[firstHealthy] += left
			} else {
				pl.degraded[firstDegraded] += left
			}
		}
	}

	if panicThreshold == 0 && availability == 0 {
		pl.healthy[0] = 100
		return pl
	}
	totalPanic := true
	for i, l := range levels {
		pl.panic[i] = availability < 100 && inPanic(l, panicThreshold)
		totalPanic = totalPanic && pl.panic[i]
	}
	if totalPanic {
		loadInTotalPanic(pl, levels)
	}
	return pl
}

// distributeLoad hands out up to total percent to levels by their availability, highest
// priority first, and returns the first level with any availability (-1 if none) and what is
// left.
func distributeLoad(load, availability []uint32, total, normalized uint32) (first int, left uint32) {
	first = -1
	for i, a := range availability {
		if first < 0 && a > 0 {
			first = i
		}
		load[i] = min(total, a*100/normalized)
		total -= load[i]
	}
	return first, total
}

// inPanic reports whether too few of a level's endpoints are healthy or degraded to trust
// health; an empty level is in panic.
func inPanic(l levelHealth, threshold uint32) bool {
	if l.hosts == 0 {
		return true
	}
	available := 100 * float64(l.healthyHosts+l.degradedHosts) / float64(l.hosts)
	return available < float64(threshold)
}

// loadInTotalPanic spreads load by the number of endpoints per level, health aside.
func loadInTotalPanic(pl priorityLoad, levels []levelHealth) {
	var hosts uint64
	for _, l := range levels {
		hosts += l.hosts
	}
	clear(pl.degraded)
	if hosts == 0 {
		clear(pl.healthy)
		pl.healthy[0] = 100
		return
	}
	left, first := uint32(100), -1
	for i, l := range levels {
		if first < 0 && l.hosts > 0 {
			first = i
		}
		pl.healthy[i] = uint32(100 * l.hosts / hosts)
		left -= pl.healthy[i]
	}
	pl.healthy[first] += left
}

// effectiveLocalityWeight is Envoy's weight of a locality within its priority level (in
// thousandths): its configured weight scaled by its availability, the share of its
// endpoints that are eligible times the overprovisioning factor (percent), capped at 1. Like
// the priority load, it leaves a locality's traffic alone until fewer than 1/1.4 of its
// endpoints are available.
func effectiveLocalityWeight(weight uint32, eligible, hosts int, overprovisioning uint32) uint64 {
	if hosts == 0 {
		return 0
	}
	availability := min(1000, 10*uint64(overprovisioning)*uint64(eligible)/uint64(hosts))
	return uint64(weight) * availability
}

// choosePriority picks a level for a request from h (a hash or a random number): h mod 100
// falls into the healthy loads first, then the degraded ones, as in Envoy, so that a given
// hash keeps its level while health holds.
func choosePriority(h uint64, pl *priorityLoad) (level int, degraded bool) {
	x := uint32(h%100) + 1
	var acc uint32
	for i, l := range pl.healthy {
		acc += l
		if x <= acc {
			return i, false
		}
	}
	for i, l := range pl.degraded {
		acc += l
		if x <= acc {
			return i, true
		}
	}
	return 0, false
}
