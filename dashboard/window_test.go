package dashboard

import (
	"math/rand/v2"
	"testing"

	"github.com/flowd/flowd/storage"
)

// TestWindowAgreesWithSumsOfItsMinutes feeds a window deltas of a few
// metrics and cells — inside it, ahead of the clock, too old, negative,
// cancelling — while its clock moves (by a minute or two, past all it
// holds, or back), and checks at every tick its totals,
// its count of cells and the changes it reports since the last settle
// against sums of the deltas kept by hand.
func TestWindowAgreesWithSumsOfItsMinutes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const width = 5
	now := int64(1000)
	w := newWindow(width, now)
	type key struct {
		metric uint32
		cell   uint64
		minute int64
	}
	kept := map[key]int64{} // every delta the window should keep, by minute
	totalsAt := func(now int64) map[bucket]int64 {
		tot := map[bucket]int64{}
		for k, v := range kept {
			if k.minute > now-width && k.minute <= now {
				tot[bucket{k.metric, k.cell}] += v
			}
		}
		for b, v := range tot {
			if v == 0 {
				delete(tot, b)
			}
		}
		return tot
	}
	before := totalsAt(now)
	for tick := range 200 {
		for range r.IntN(300) {
			d := storage.Delta{Key: storage.Key{Metric: uint32(1 + r.IntN(3)), Cell: uint64(r.IntN(40)), Minute: now - 8 + int64(r.IntN(16))}, Value: int64(r.IntN(11) - 3)}
			w.add(d)
			if d.Minute > now-width && d.Minute <= now+maxAheadMinutes && d.Value != 0 {
				kept[key{d.Metric, d.Cell, d.Minute}] += d.Value
			}
		}
		switch {
		case tick%50 == 49:
			now += int64(8 + r.IntN(20)) // a jump past all it held
			w.advance(now)
		case tick%3 == 0:
			now += int64(r.IntN(3))
			w.advance(now)
		case tick%7 == 0:
			w.advance(now - 1) // a clock going back: ignored
		}
		want := totalsAt(now)
		got := map[bucket]int64{}
		changes := map[bucket]int64{}
		for m := range uint32(4) {
			w.eachChange(m, true, func(cell uint64, v int64) { got[bucket{m, cell}] = v })
			w.eachChange(m, false, func(cell uint64, d int64) { changes[bucket{m, cell}] += d })
		}
		if len(got) != len(want) || w.cells() != len(want) {
			t.Fatalf("tick %d: %d cells with totals (cells() %d); want %d", tick, len(got), w.cells(), len(want))
		}
		for b, v := range want {
			if got[b] != v {
				t.Fatalf("tick %d: total of %v is %d; want %d", tick, b, got[b], v)
			}
		}
		for b := range union(want, before) {
			if d := want[b] - before[b]; changes[b] != d {
				t.Fatalf("tick %d: change of %v is %d; want %d", tick, b, changes[b], d)
			}
		}
		w.settle()
		before = want
	}
}

func union(a, b map[bucket]int64) map[bucket]bool {
	u := map[bucket]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}
