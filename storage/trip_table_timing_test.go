package storage

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkApplyTripOps applies batches of 10,000 trip operations (a
// tap-in opening a card's trip, a tap-out closing one opened before) to a
// table holding about 30,000 open trips, legs of a few lines: the store's
// durable copy at the city's busiest. It reports nanoseconds an operation.
func BenchmarkApplyTripOps(b *testing.B) {
	const open, perBatch = 30000, 10000
	r := rand.New(rand.NewPCG(7, 8))
	lines := []string{"1", "2", "3", "B7"}
	var tb TripTable
	var live []uint64
	for range open {
		c := r.Uint64() | 1
		tb.Put(OpenTrip{Card: c, Start: 1, Cell: 2, Line: lines[r.IntN(len(lines))]})
		live = append(live, c)
	}
	batches := make([][]TripOp, 64)
	for i := range batches {
		ops := make([]TripOp, perBatch)
		for j := range ops {
			if j%2 == 0 {
				c := r.Uint64() | 1
				ops[j] = TripOp{Open: true, Trip: OpenTrip{Card: c, Start: int64(j), Cell: 3, Line: lines[j%len(lines)]}}
				live = append(live, c)
			} else {
				k := r.IntN(len(live))
				ops[j] = TripOp{Trip: OpenTrip{Card: live[k]}}
				live[k] = live[len(live)-1]
				live = live[:len(live)-1]
			}
		}
		batches[i] = ops
	}
	var sink uint64
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		sink += applyTripOps(&tb, batches[i%len(batches)])
		n += perBatch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/op")
	_ = sink
}
