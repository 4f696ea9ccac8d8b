package ingest

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// BenchmarkTripsMatch matches batches of 10,000 taps, in time order, of
// 200,000 cards that each tap in and, most of them, out again 5 to 40
// minutes later: about 30,000 trips open at a time, as in flowd-bench's
// city at its busiest. It reports nanoseconds a tap.
func BenchmarkTripsMatch(b *testing.B) {
	const cards, perBatch = 200000, 10000
	r := rand.New(rand.NewPCG(5, 6))
	type ev struct {
		card uint64
		ms   int64
		in   bool
	}
	var evs []ev
	start := int64(1_546_819_200_000) // 2019-01-07
	for c := range cards {
		card := r.Uint64() | 1
		in := start + r.Int64N(4*3600_000)
		evs = append(evs, ev{card, in, true})
		if c%10 != 0 { // a tenth never taps out
			evs = append(evs, ev{card, in + 300_000 + r.Int64N(2100_000), false})
		}
	}
	slicesSortFunc(evs, func(a, b ev) bool { return a.ms < b.ms })
	var batches [][]tap
	for i := 0; i+perBatch <= len(evs); i += perBatch {
		taps := make([]tap, perBatch)
		for j, e := range evs[i : i+perBatch] {
			taps[j] = tap{card: e.card, ms: e.ms, in: e.in, seq: int32(j), cell: uint64(j % 97)}
		}
		batches = append(batches, taps)
	}
	add := func(metric string, cell, sub uint64, minute, v int64) {}
	var sc matchScratch
	tr := benchTrips()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		if i%len(batches) == 0 && i > 0 {
			b.StopTimer()
			tr = benchTrips() // the day again, from no trips open
			b.StartTimer()
		}
		tr.match(batches[i%len(batches)], &sc, nil, add)
		n += perBatch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/tap")
}

func slicesSortFunc[T any](s []T, less func(a, b T) bool) {
	sort.Slice(s, func(i, j int) bool { return less(s[i], s[j]) })
}

// benchTrips is a matcher with no trips open and no inference.
func benchTrips() *Trips { return &Trips{window: 7200} }
