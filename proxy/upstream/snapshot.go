package upstream

import "sync/atomic"

// snapshot is a cluster's load-balancing state for one membership and health: the priority
// load and, per priority level, pickers over the endpoints each kind of load goes to. It is
// built on every change and then only read (atomic counters aside), so requests pick without
// locks.
type snapshot struct {
	load   priorityLoad
	levels []level
	hashed bool
	// spec and eps are what the snapshot was built from, for pickOther.
	spec *clusterSpec
	eps  []*Endpoint
	// other caches the snapshot without one endpoint (see without).
	other atomic.Pointer[otherSnapshot]
}

// level holds a priority level's sources; a source is nil when the load never reaches it.
type level struct {
	healthy, degraded *source
	// all balances over every endpoint of the level while it is in panic.
	all *source
}

// source picks among a set of endpoints: by locality first (weighted round robin over the
// localities' effective weights) when the cluster balances by locality weight, else
// directly.
type source struct {
	localities *schedule // nil: pickers has one flat picker
	pickers    []picker
}

func (s *source) pick(h uint64) *Endpoint {
	if s.localities == nil {
		return s.pickers[0].pick(h)
	}
	return s.pickers[s.localities.nextIndex()].pick(h)
}

// pick returns an endpoint for a request, nil if none may take it. hash places requests of
// hash-based policies; without one they land at random.
func (s *snapshot) pick(hash *uint64) *Endpoint {
	if len(s.levels) == 0 {
		return nil
	}
	var h uint64
	if s.hashed && hash != nil {
		h = *hash
	} else {
		h = randUint64()
	}
	p, degraded := choosePriority(h, &s.load)
	l := &s.levels[p]
	src := l.healthy
	switch {
	case s.load.panic[p]:
		src = l.all
	case degraded:
		src = l.degraded
	}
	if src == nil {
		return nil
	}
	return src.pick(h)
}

// buildSnapshot computes the priority load of eps (the cluster's endpoints, in assignment
// order) from their current health and builds the pickers the load can reach.
func buildSnapshot(spec *clusterSpec, eps []*Endpoint) *snapshot {
	s := &snapshot{hashed: spec.lb.hashed(), spec: spec, eps: eps}
	var levels [][]*Endpoint
	var avail [][]edsHealth
	for _, ep := range eps {
		p := int(ep.spec.priority)
		for len(levels) <= p {
			levels, avail = append(levels, nil), append(avail, nil)
		}
		levels[p] = append(levels[p], ep)
		avail[p] = append(avail[p], ep.availability())
	}
	health := make([]levelHealth, len(levels))
	for p, l := range levels {
		h := &health[p]
		for i, ep := range l {
			w := uint64(1)
			if spec.weightedPriorityHealth {
				w = uint64(ep.spec.weight)
			}
			h.hosts++
			h.total += w
			switch avail[p][i] {
			case edsHealthy:
				h.healthyHosts++
				h.healthy += w
			case edsDegraded:
				h.degradedHosts++
				h.degraded += w
			}
		}
	}
	s.load = computePriorityLoad(health, spec.overprovisioning, spec.panicThreshold)
	s.levels = make([]level, len(levels))
	for p, l := range levels {
		b := sourceBuilder{spec: spec, eps: l, avail: avail[p]}
		switch {
		case s.load.panic[p]:
			if s.load.healthy[p]+s.load.degraded[p] > 0 {
				s.levels[p].all = b.build(func(edsHealth) bool { return true }, true)
			}
		default:
			if s.load.healthy[p] > 0 {
				s.levels[p].healthy = b.build(func(a edsHealth) bool { return a == edsHealthy }, false)
			}
			if s.load.degraded[p] > 0 {
				s.levels[p].degraded = b.build(func(a edsHealth) bool { return a == edsDegraded }, false)
			}
		}
	}
	return s
}

// sourceBuilder builds the sources of one priority level.
type sourceBuilder struct {
	spec  *clusterSpec
	eps   []*Endpoint
	avail []edsHealth
}

// byLocality groups endpoints by locality, in order of first appearance.
type byLocality struct {
	weight   uint32 // the locality's weight
	hosts    int    // all its endpoints in the level
	eligible []*Endpoint
}

// build returns a source over the level's endpoints that eligible admits (nil if none).
// Hash-based policies fold locality weights into endpoint weights, as Envoy's do; other
// policies pick a locality by its effective weight first, except in panic.
func (b sourceBuilder) build(eligible func(edsHealth) bool, inPanic bool) *source {
	var groups []*byLocality
	index := make(map[Locality]*byLocality)
	var flat []*Endpoint
	for i, ep := range b.eps {
		g := index[ep.spec.locality]
		if g == nil {
			g = &byLocality{weight: ep.spec.localityWeight}
			index[ep.spec.locality] = g
			groups = append(groups, g)
		}
		g.hosts++
		if eligible(b.avail[i]) {
			g.eligible = append(g.eligible, ep)
			flat = append(flat, ep)
		}
	}
	if len(flat) == 0 {
		return nil
	}
	lb := b.spec.lb
	switch {
	case b.spec.localityWeighted && lb.hashed():
		eps, weights := foldLocalityWeights(groups)
		if len(eps) > 0 {
			return &source{pickers: []picker{lb.build(eps, weights)}}
		}
	case b.spec.localityWeighted && !inPanic:
		src := &source{}
		var effective []uint64
		for _, g := range groups {
			if w := effectiveLocalityWeight(g.weight, len(g.eligible), g.hosts, b.spec.overprovisioning); w > 0 {
				effective = append(effective, w)
				src.pickers = append(src.pickers, lb.build(g.eligible, hostWeights(g.eligible)))
			}
		}
		if len(effective) > 0 {
			src.localities = newSchedule(effective)
			return src
		}
	}
	// Without usable locality weights, balance over the endpoints directly (as Envoy does
	// when no locality can be chosen).
	return &source{pickers: []picker{lb.build(flat, hostWeights(flat))}}
}

// foldLocalityWeights gives each endpoint of a locality with weight its share of the
// locality's share: weight/Σ locality weights × endpoint weight/Σ endpoint weights.
func foldLocalityWeights(groups []*byLocality) ([]*Endpoint, []float64) {
	var total float64
	for _, g := range groups {
		if len(g.eligible) > 0 {
			total += float64(g.weight)
		}
	}
	var eps []*Endpoint
	var weights []float64
	for _, g := range groups {
		if g.weight == 0 || len(g.eligible) == 0 {
			continue
		}
		var sum float64
		for _, ep := range g.eligible {
			sum += float64(ep.spec.weight)
		}
		for _, ep := range g.eligible {
			eps = append(eps, ep)
			weights = append(weights, float64(g.weight)/total*float64(ep.spec.weight)/sum)
		}
	}
	return eps, weights
}

func hostWeights(eps []*Endpoint) []float64 {
	w := make([]float64, len(eps))
	for i, ep := range eps {
		w[i] = float64(ep.spec.weight)
	}
	return w
}
