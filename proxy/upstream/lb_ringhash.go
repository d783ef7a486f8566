package upstream

import (
	"cmp"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ringHash is RING_HASH: a ketama ring built exactly like Envoy's (entries hashed with
// xxHash64 from "address_i", as many per endpoint as its share of the ring), so that a
// request hash lands on the same endpoint here as it would in Envoy.
type ringHash struct {
	minSize, maxSize uint64
}

func (ringHash) hashed() bool { return true }

func (r ringHash) build(eps []*Endpoint, weights []float64) picker {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	minWeight := 1.0
	for _, w := range weights {
		minWeight = min(minWeight, w/sum)
	}
	// Scale so that the lightest endpoint gets a whole number of entries, within the bounds.
	scale := min(math.Ceil(minWeight*float64(r.minSize))/minWeight, float64(r.maxSize))
	type entry struct {
		hash uint64
		ep   uint32
	}
	entries := make([]entry, 0, int(math.Ceil(scale)))
	var current, target float64
	var key []byte
	for i, ep := range eps {
		key = append(append(key[:0], ep.addr...), '_')
		prefix := len(key)
		target += scale * weights[i] / sum
		for n := 0; current < target; n++ {
			key = strconv.AppendInt(key[:prefix], int64(n), 10)
			entries = append(entries, entry{hash: xxhash.Sum64(key), ep: uint32(i)})
			current++
		}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.hash, b.hash) })
	p := &ringPicker{eps: eps, hashes: make([]uint64, len(entries)), owners: make([]uint32, len(entries))}
	for i, e := range entries {
		p.hashes[i], p.owners[i] = e.hash, e.ep
	}
	return p
}

type ringPicker struct {
	eps    []*Endpoint
	hashes []uint64 // sorted
	owners []uint32 // owners[i] owns the ring from hashes[i-1] (exclusive) to hashes[i]
}

// pick returns the owner of the first entry at or after h, wrapping around.
func (p *ringPicker) pick(h uint64) *Endpoint {
	i, _ := slices.BinarySearch(p.hashes, h)
	if i == len(p.hashes) {
		i = 0
	}
	return p.eps[p.owners[i]]
}
