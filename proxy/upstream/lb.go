package upstream

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// picker chooses an endpoint among a fixed set. Pickers are built whenever membership or
// health changes and are then immutable but for atomic counters, so any number of
// requests pick concurrently without locks or allocations.
type picker interface {
	// pick returns an endpoint; h is the request's hash (or a random number without one),
	// which only hash-based policies use.
	pick(h uint64) *Endpoint
}

// policy builds the pickers of one load-balancing algorithm.
type policy interface {
	// build returns a picker over eps, which has at least one endpoint, where weights[i] >
	// 0 is the share of eps[i]. Only hash-based policies see fractional weights.
	build(eps []*Endpoint, weights []float64) picker
	// hashed reports whether the policy places requests by their hash, which then picks the
	// priority level too.
	hashed() bool
}

// schedule is a smooth weighted round-robin order (nginx's algorithm: each step adds every
// weight to its running total and takes the largest, which then loses the sum of weights),
// precomputed so that picking is one atomic increment. Equal weights need no table.
type schedule struct {
	order []uint32 // nil: plain rotation over n
	n     uint64
	next  atomic.Uint64
}

// maxScheduleLen bounds a schedule's table; weights whose reduced sum is larger are scaled
// down, which keeps every weight at least 1 and proportions within 1/maxScheduleLen.
const maxScheduleLen = 4096

// newSchedule builds the schedule of weights (all > 0). It starts at a random offset so that
// proxies restarted together don't send their first requests to the same endpoint.
func newSchedule(weights []uint64) *schedule {
	s := &schedule{n: uint64(len(weights))}
	s.next.Store(randUint64())
	if len(weights) <= 1 || allEqual(weights) {
		return s
	}
	w := reduceWeights(weights)
	var total int64
	for _, x := range w {
		total += int64(x)
	}
	s.order = make([]uint32, total)
	s.n = uint64(total)
	current := make([]int64, len(w))
	for i := range s.order {
		best := 0
		for j, x := range w {
			current[j] += int64(x)
			if current[j] > current[best] {
				best = j
			}
		}
		current[best] -= total
		s.order[i] = uint32(best)
	}
	return s
}

// nextIndex returns the index of the next weight in the schedule.
func (s *schedule) nextIndex() int {
	i := s.next.Add(1) % s.n
	if s.order == nil {
		return int(i)
	}
	return int(s.order[i])
}

// reduceWeights divides weights by their greatest common divisor and, if their sum still
// exceeds maxScheduleLen (or the count of weights, if larger), scales them down.
func reduceWeights(weights []uint64) []uint64 {
	g := weights[0]
	for _, w := range weights[1:] {
		g = gcd(g, w)
	}
	var sum uint64
	w := make([]uint64, len(weights))
	for i, x := range weights {
		w[i] = x / g
		sum += w[i]
	}
	limit := uint64(max(maxScheduleLen, len(w)))
	if sum <= limit {
		return w
	}
	for i, x := range w {
		w[i] = max(1, uint64(float64(x)*float64(limit)/float64(sum)))
	}
	return w
}

// randUint64 and randN are the package's randomness, which spreads load and jitters
// timers: it must be fast and safe for concurrent use, not unpredictable, so math/rand/v2's
// runtime-seeded source is the right one.
func randUint64() uint64 {
	return rand.Uint64()
}

func randN[T ~int64 | ~uint64 | ~uint32](n T) T {
	return rand.N(n)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func allEqual[T comparable](s []T) bool {
	for _, x := range s[1:] {
		if x != s[0] {
			return false
		}
	}
	return true
}

// integerWeights returns weights as integers; non-hash policies only ever see whole
// endpoint weights.
func integerWeights(weights []float64) []uint64 {
	w := make([]uint64, len(weights))
	for i, x := range weights {
		w[i] = max(1, uint64(x))
	}
	return w
}

// cumulative is a weighted random draw: a binary search over running sums of weights, or a
// uniform draw when weights are equal.
type cumulative struct {
	sums []uint64 // nil: uniform over n
	n    uint64
}

func newCumulative(weights []uint64) cumulative {
	c := cumulative{n: uint64(len(weights))}
	if allEqual(weights) {
		return c
	}
	c.sums = make([]uint64, len(weights))
	var sum uint64
	for i, w := range weights {
		sum += w
		c.sums[i] = sum
	}
	c.n = sum
	return c
}

// draw returns a random index, weighted.
func (c *cumulative) draw() int {
	r := randN(c.n)
	if c.sums == nil {
		return int(r)
	}
	i, _ := slices.BinarySearch(c.sums, r+1)
	return i
}
