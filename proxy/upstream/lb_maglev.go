package upstream

import (
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// defaultMaglevTableSize is Envoy's default, a prime.
const defaultMaglevTableSize = 65537

// maxMaglevEndpoints is the most endpoints a Maglev table indexes (its entries are uint16).
const maxMaglevEndpoints = 1 << 16

// maglev is MAGLEV: Envoy's weighted Maglev table (endpoints sorted by address; offset and
// skip from xxHash64 of the address with seeds 0 and 1), so that a request hash lands on the
// same endpoint here as it would in Envoy.
type maglev struct {
	size uint64 // prime
}

func (maglev) hashed() bool { return true }

func (m maglev) build(eps []*Endpoint, weights []float64) picker {
	type entry struct {
		ep                  uint16
		offset, skip, next  uint64
		weight, targetCount float64
	}
	order := make([]int, len(eps))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(eps[a].addr, eps[b].addr) })
	var sum, maxWeight float64
	for _, w := range weights {
		sum += w
	}
	entries := make([]entry, len(eps))
	seeded := xxhash.NewWithSeed(1)
	for k, i := range order {
		seeded.ResetWithSeed(1)
		_, _ = seeded.WriteString(eps[i].addr)
		w := weights[i] / sum
		maxWeight = max(maxWeight, w)
		entries[k] = entry{
			ep:     uint16(i),
			offset: xxhash.Sum64String(eps[i].addr) % m.size,
			skip:   seeded.Sum64()%(m.size-1) + 1,
			weight: w,
		}
	}

	table := make([]uint16, m.size)
	filled := make([]bool, m.size)
	var count uint64
	// Each round, an endpoint of maximal weight takes a slot and lighter ones take one in
	// proportion: one every maxWeight/weight rounds.
	for round := 1.0; count < m.size; round++ {
		for k := range entries {
			if count == m.size {
				break
			}
			e := &entries[k]
			if round*e.weight < e.targetCount {
				continue
			}
			e.targetCount += maxWeight
			c := (e.offset + e.skip*e.next) % m.size
			for filled[c] {
				e.next++
				c = (e.offset + e.skip*e.next) % m.size
			}
			table[c], filled[c] = e.ep, true
			e.next++
			count++
		}
	}
	return &maglevPicker{eps: eps, table: table}
}

type maglevPicker struct {
	eps   []*Endpoint
	table []uint16
}

func (p *maglevPicker) pick(h uint64) *Endpoint {
	return p.eps[p.table[h%uint64(len(p.table))]]
}
