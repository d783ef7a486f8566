package upstream

// leastRequest is LEAST_REQUEST: the power of choices. It draws choices endpoints (two by
// default), weighted by endpoint weight, and takes the one with the fewest requests in flight
// per unit of weight.
type leastRequest struct {
	choices int
}

func (leastRequest) hashed() bool { return false }

func (l leastRequest) build(eps []*Endpoint, weights []float64) picker {
	w := integerWeights(weights)
	return &leastRequestPicker{eps: eps, weights: w, draw: newCumulative(w), choices: l.choices}
}

type leastRequestPicker struct {
	eps     []*Endpoint
	weights []uint64
	draw    cumulative
	choices int
}

func (p *leastRequestPicker) pick(uint64) *Endpoint {
	if len(p.eps) == 1 {
		return p.eps[0]
	}
	best := p.draw.draw()
	for range p.choices - 1 {
		if i := p.draw.draw(); p.lessLoaded(i, best) {
			best = i
		}
	}
	return p.eps[best]
}

// lessLoaded compares (active+1)/weight without division: the +1 makes an idle heavy endpoint
// preferable to an idle light one.
func (p *leastRequestPicker) lessLoaded(i, j int) bool {
	ai := uint64(max(0, p.eps[i].active.Load())) + 1
	aj := uint64(max(0, p.eps[j].active.Load())) + 1
	return ai*p.weights[j] < aj*p.weights[i]
}
