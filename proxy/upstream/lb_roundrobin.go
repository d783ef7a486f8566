package upstream

// roundRobin is ROUND_ROBIN: a smooth weighted rotation by endpoint weight.
type roundRobin struct{}

func (roundRobin) hashed() bool { return false }

func (roundRobin) build(eps []*Endpoint, weights []float64) picker {
	return &roundRobinPicker{eps: eps, order: newSchedule(integerWeights(weights))}
}

type roundRobinPicker struct {
	eps   []*Endpoint
	order *schedule
}

func (p *roundRobinPicker) pick(uint64) *Endpoint { return p.eps[p.order.nextIndex()] }
