package upstream

import (
	"math"
	"slices"
	"testing"
)

// percents describes levels of 100 endpoints each by their healthy percentage, so that
// the documented tables read directly.
func percents(healthy ...uint64) []levelHealth {
	levels := make([]levelHealth, len(healthy))
	for i, h := range healthy {
		levels[i] = levelHealth{hosts: 100, healthyHosts: h, total: 100, healthy: h}
	}
	return levels
}

// TestPriorityLoadEnvoyTables reproduces the tables of Envoy's "Priority levels" page
// (arch_overview/upstream/load_balancing/priority) with the default overprovisioning factor
// 1.4. The page leaves the panic threshold aside, so these run with it disabled; the
// integer arithmetic is Envoy's, which truncates: 71% healthy is a health of 99 (99.4), so
// P0 keeps 99% and P1 takes 1%.
func TestPriorityLoadEnvoyTables(t *testing.T) {
	tests := []struct {
		name    string
		healthy []uint64
		want    []uint32
	}{
		// Two levels, P1 fully healthy.
		{"100/100", []uint64{100, 100}, []uint32{100, 0}},
		{"72/100", []uint64{72, 100}, []uint32{100, 0}},
		{"71/100", []uint64{71, 100}, []uint32{99, 1}},
		{"50/100", []uint64{50, 100}, []uint32{70, 30}},
		{"25/100", []uint64{25, 100}, []uint32{35, 65}},
		{"0/100", []uint64{0, 100}, []uint32{0, 100}},
		// Two levels degrading together: below a total health of 100, loads are normalized.
		{"72/72", []uint64{72, 72}, []uint32{100, 0}},
		{"71/71", []uint64{71, 71}, []uint32{99, 1}},
		{"50/50", []uint64{50, 50}, []uint32{70, 30}},
		{"25/25", []uint64{25, 25}, []uint32{50, 50}},
		// Three levels.
		{"100/100/100", []uint64{100, 100, 100}, []uint32{100, 0, 0}},
		{"72/72/100", []uint64{72, 72, 100}, []uint32{100, 0, 0}},
		{"71/71/100", []uint64{71, 71, 100}, []uint32{99, 1, 0}},
		{"50/50/100", []uint64{50, 50, 100}, []uint32{70, 30, 0}},
		{"25/100/100", []uint64{25, 100, 100}, []uint32{35, 65, 0}},
		{"25/25/100", []uint64{25, 25, 100}, []uint32{35, 35, 30}},
		// The page prints 36/36/28, rounding 35.7/35.7/28.6; Envoy's code truncates each
		// share (35/35/28) and gives the 2 left over to the first healthy level.
		{"25/25/20", []uint64{25, 25, 20}, []uint32{37, 35, 28}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := computePriorityLoad(percents(tt.healthy...), 140, 0)
			if !slices.Equal(got.healthy, tt.want) {
				t.Errorf("healthy load = %v, want %v", got.healthy, tt.want)
			}
			if slices.Contains(got.panic, true) {
				t.Errorf("panic = %v with the threshold disabled", got.panic)
			}
		})
	}
}

func TestPriorityLoadPanic(t *testing.T) {
	tests := []struct {
		name      string
		levels    []levelHealth
		threshold uint32
		healthy   []uint32
		panic     []bool
	}{
		{
			// Total health 100: no panic, however few endpoints a level has left.
			name:      "enough elsewhere",
			levels:    percents(10, 100),
			threshold: 50,
			healthy:   []uint32{14, 86},
			panic:     []bool{false, false},
		},
		{
			// 28 + 70 < 100: P0 (20% healthy) is in panic, P1 (50%) is not.
			name:      "one level in panic",
			levels:    percents(20, 50),
			threshold: 50,
			healthy:   []uint32{29, 71},
			panic:     []bool{true, false},
		},
		{
			// Every level in panic: load follows endpoint counts (10 and 30).
			name:      "total panic",
			levels:    []levelHealth{{hosts: 10, total: 10}, {hosts: 30, total: 30, healthyHosts: 3, healthy: 3}},
			threshold: 50,
			healthy:   []uint32{25, 75},
			panic:     []bool{true, true},
		},
		{
			// Nothing healthy anywhere: panic routes to every endpoint, by count.
			name:      "nothing healthy",
			levels:    percents(0, 0),
			threshold: 50,
			healthy:   []uint32{50, 50},
			panic:     []bool{true, true},
		},
		{
			// Panic disabled and nothing healthy: P0 takes the load and routes nowhere.
			name:      "panic disabled",
			levels:    percents(0, 0),
			threshold: 0,
			healthy:   []uint32{100, 0},
			panic:     []bool{false, false},
		},
		{
			// An empty level (a gap in priorities) has no health and takes no load.
			name:      "gap",
			levels:    []levelHealth{{}, {hosts: 2, healthyHosts: 2, total: 2, healthy: 2}},
			threshold: 50,
			healthy:   []uint32{0, 100},
			panic:     []bool{false, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := computePriorityLoad(tt.levels, 140, tt.threshold)
			if !slices.Equal(got.healthy, tt.healthy) || !slices.Equal(got.panic, tt.panic) {
				t.Errorf("got load %v panic %v, want %v %v", got.healthy, got.panic, tt.healthy, tt.panic)
			}
		})
	}
}

// TestPriorityLoadDegraded is the example in Envoy's recalculatePerPriorityState: health
// 10/20/10% and degraded 20/10/0% give 16/28/14 healthy and 28/14/0 degraded load, the
// first healthy level taking the 2 left by rounding.
func TestPriorityLoadDegraded(t *testing.T) {
	levels := []levelHealth{
		{hosts: 100, healthyHosts: 10, degradedHosts: 20, total: 100, healthy: 10, degraded: 20},
		{hosts: 100, healthyHosts: 20, degradedHosts: 10, total: 100, healthy: 20, degraded: 10},
		{hosts: 100, healthyHosts: 10, total: 100, healthy: 10},
	}
	got := computePriorityLoad(levels, 140, 0)
	if !slices.Equal(got.healthy, []uint32{16, 28, 14}) || !slices.Equal(got.degraded, []uint32{28, 14, 0}) {
		t.Errorf("got healthy %v degraded %v, want [16 28 14] [28 14 0]", got.healthy, got.degraded)
	}
}

func TestPriorityLoadFactorAndWeights(t *testing.T) {
	// Without overprovisioning, P0 at 71% keeps exactly 71%.
	if got := computePriorityLoad(percents(71, 100), 100, 50); !slices.Equal(got.healthy, []uint32{71, 29}) {
		t.Errorf("factor 100: got %v, want [71 29]", got.healthy)
	}
	// Weighted priority health: one of two endpoints is down, but it carried 3 of 4
	// weight, so P0's health is 1.4 × 25% = 35, not 1.4 × 50% = 70.
	weighted := []levelHealth{
		{hosts: 2, healthyHosts: 1, total: 4, healthy: 1},
		{hosts: 2, healthyHosts: 2, total: 2, healthy: 2},
	}
	if got := computePriorityLoad(weighted, 140, 50); !slices.Equal(got.healthy, []uint32{35, 65}) {
		t.Errorf("weighted: got %v, want [35 65]", got.healthy)
	}
}

func TestChoosePriority(t *testing.T) {
	pl := priorityLoad{healthy: []uint32{70, 0, 20}, degraded: []uint32{0, 10, 0}, panic: make([]bool, 3)}
	counts := map[[2]int]int{}
	for h := range uint64(100) {
		p, degraded := choosePriority(h, &pl)
		d := 0
		if degraded {
			d = 1
		}
		counts[[2]int{p, d}]++
	}
	want := map[[2]int]int{{0, 0}: 70, {2, 0}: 20, {1, 1}: 10}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("level %d degraded=%d: %d of 100 hashes, want %d", k[0], k[1], counts[k], v)
		}
	}
}

// TestEffectiveLocalityWeight reproduces the table of Envoy's "Locality weighted load
// balancing" page: locality X (weight 1) loses endpoints while Y (weight 2) stays healthy.
func TestEffectiveLocalityWeight(t *testing.T) {
	y := effectiveLocalityWeight(2, 100, 100, 140)
	for _, tt := range []struct {
		healthy int
		want    float64 // percent of traffic to X
	}{{100, 33}, {70, 33}, {50, 26}, {25, 15}, {0, 0}} {
		x := effectiveLocalityWeight(1, tt.healthy, 100, 140)
		if got := math.Round(100 * float64(x) / float64(x+y)); got != tt.want {
			t.Errorf("X %d%% healthy: X gets %v%%, want %v%%", tt.healthy, got, tt.want)
		}
	}
}
