package upstream

// random is RANDOM: a draw weighted by endpoint weight.
type random struct{}

func (random) hashed() bool { return false }

func (random) build(eps []*Endpoint, weights []float64) picker {
	return &randomPicker{eps: eps, draw: newCumulative(integerWeights(weights))}
}

type randomPicker struct {
	eps  []*Endpoint
	draw cumulative
}

func (p *randomPicker) pick(uint64) *Endpoint { return p.eps[p.draw.draw()] }
