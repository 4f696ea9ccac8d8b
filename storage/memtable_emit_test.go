package storage

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// emitChain and emitValues are the emitters of one tier that a flush
// called once a tier before emitChainTiers and emitValuesTiers: the
// reference the fused emitters must agree with.

// emitChain is emitSeries over the chunks of series se of tab, read in
// place; its points must be in minute order (se.unordered unset).
func emitChain(t Tier, k SeriesKey, tab *seriesTable, se *series, out *runOut, fn runFn) error {
	have := false
	var m, v int64
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = tab.chunkAt(se, c)
		for _, pt := range run {
			pm := t.Truncate(int64(pt.minute))
			if have && pm == m {
				v = SatAdd(v, pt.val())
				continue
			}
			if have {
				out.add(m, v)
			}
			m, v, have = pm, pt.val(), true
		}
	}
	if have {
		out.add(m, v)
	}
	return out.send(k, fn)
}

// emitValues is emitSeries over words from sortedValues.
func emitValues(t Tier, k SeriesKey, words []uint64, out *runOut, fn runFn) error {
	for j := 0; j < len(words); {
		m := t.Truncate(int64(words[j] >> 32))
		v := int64(uint32(words[j]))
		n := j + 1
		for ; n < len(words) && t.Truncate(int64(words[n]>>32)) == m; n++ {
			v += int64(uint32(words[n])) // at most 2^32 values under 2^32: no overflow
		}
		out.add(m, v)
		j = n
	}
	return out.send(k, fn)
}

// emitted records what the fns of a flush are handed, a tier each.
type emitted struct{ got [numTiers][][2]int64 }

func (e *emitted) fns(skip Tier) [numTiers]runFn {
	var fns [numTiers]runFn
	for t := range numTiers {
		if t == skip {
			continue
		}
		fns[t] = func(_ SeriesKey, minutes, values []int64) error {
			for i := range minutes {
				e.got[t] = append(e.got[t], [2]int64{minutes[i], values[i]})
			}
			e.got[t] = append(e.got[t], [2]int64{-1, -1}) // a call's end
			return nil
		}
	}
	return fns
}

// TestFusedEmittersAgree checks that emitChainTiers and emitValuesTiers
// hand every tier the runs that emitChain and emitValues, called once a
// tier, did: random series across hours and days, minutes repeated (the
// words) or not (a chain), values near int64's ends (a chain, where sums
// saturate), tiers left out, one point and none, runOuts reused.
func TestFusedEmittersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	k := SeriesKey{Metric: 1, Cell: 2}
	var outs [numTiers]runOut
	var out runOut
	for round := range 400 {
		n := []int{0, 1, 2, r.IntN(50), r.IntN(3000)}[round%5]
		skip := Tier(numTiers) // none
		if round%7 == 3 {
			skip = Tier(r.IntN(int(numTiers)))
		}
		step := []int{1, 7, 61, 1500}[r.IntN(4)]
		minute := int64(27_000_000 + r.IntN(3000))

		// Words: sorted, minutes repeated, values of 32 bits.
		var words []uint64
		m := minute
		for range n {
			if r.IntN(3) > 0 {
				m += int64(r.IntN(step))
			}
			words = append(words, uint64(m)<<32|uint64(r.Uint32()))
		}
		var want, got emitted
		for tr := range numTiers {
			if fn := want.fns(skip)[tr]; fn != nil {
				if err := emitValues(tr, k, words, &out, fn); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := emitValuesTiers(k, words, &outs, got.fns(skip)); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(want.got[:], got.got[:], slices.Equal) {
			t.Fatalf("round %d, words: per tier %v\nfused %v", round, want.got, got.got)
		}

		// A chain: minutes increasing, values of any size.
		var tab seriesTable
		d := tab.lookup(k, k.hash(), false, false)
		m = minute
		for range n {
			m += 1 + int64(r.IntN(step))
			v := r.Int64N(1000) - 10
			switch r.IntN(10) {
			case 0:
				v = math.MaxInt64 - r.Int64N(10)
			case 1:
				v = math.MinInt64 + r.Int64N(10)
			}
			tab.add(d, m, v)
		}
		se := &tab.series[d]
		if se.unordered {
			t.Fatal("a chain out of order")
		}
		want, got = emitted{}, emitted{}
		for tr := range numTiers {
			if fn := want.fns(skip)[tr]; fn != nil {
				if err := emitChain(tr, k, &tab, se, &out, fn); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := emitChainTiers(k, &tab, se, &outs, got.fns(skip)); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(want.got[:], got.got[:], slices.Equal) {
			t.Fatalf("round %d, chain: per tier %v\nfused %v", round, want.got, got.got)
		}
		tab.reset()
	}
}
