package ingest

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// TestExpiryQueueDropsClosedTrips pushes a day of taps whose trips mostly
// close at once, as a metro's tap-outs close its legs long before their
// day ends: the queue stays about as long as the trips still open, and
// holds each of them, in order.
func TestExpiryQueueDropsClosedTrips(t *testing.T) {
	var open storage.TripTable
	eq := expiryQueue{legs: true}
	longest := 0
	for i := range 200000 {
		o := storage.OpenTrip{Card: uint64(i), Start: int64(i), Cell: 1, Line: "L1"}
		open.Put(o)
		eq.push(o, &open)
		if i%100 != 0 {
			open.Del(o.Card) // tapped out: 1 trip in 100 stays open
		}
		longest = max(longest, len(eq.q)-eq.head)
	}
	if limit := 2*open.Len() + 4096 + 1; longest > limit {
		t.Errorf("the queue grew to %d entries for %d open trips; want at most %d", longest, open.Len(), limit)
	}
	var live []int64
	for _, x := range eq.q[eq.head:] {
		if cur, ok := open.Get(x.card); ok && eq.holds(x, cur) {
			live = append(live, x.start)
		}
	}
	if len(live) != open.Len() || !slices.IsSorted(live) {
		t.Errorf("the queue holds %d of the %d open trips (in order: %v)", len(live), open.Len(), slices.IsSorted(live))
	}
}

// TestRevertTakesBackOnlyWhatNoLaterBatchChanged matches a batch that
// closes a trip open before it, opens one, opens and closes another and
// opens a fourth, as if its write then failed: revert restores the trip
// closed and drops those opened, except the card a later batch opened
// again meanwhile; the restored trip still expires at its deadline.
func TestRevertTakesBackOnlyWhatNoLaterBatchChanged(t *testing.T) {
	tr := &Trips{window: 3600}
	tr.legs.legs = true
	before := storage.OpenTrip{Card: 1, Start: 100, Cell: 7}
	tr.open.Put(before)
	tr.queue.push(before, &tr.open)
	taps := []tap{
		{card: 1, ms: 200_000, cell: 8, seq: 0},           // closes card 1's trip
		{card: 2, ms: 210_000, in: true, cell: 9, seq: 1}, // opens card 2's
		{card: 3, ms: 220_000, in: true, cell: 9, seq: 2}, // opens card 3's…
		{card: 3, ms: 230_000, cell: 5, seq: 3},           // …and closes it
		{card: 4, ms: 240_000, in: true, cell: 6, seq: 4}, // opens card 4's
	}
	var sc matchScratch
	var added []string
	ops, undos := tr.match(taps, &sc, nil, func(metric string, cell, sub uint64, minute, v int64) { added = append(added, metric) })
	if len(ops) != 5 || len(undos) != 4 || tr.open.Len() != 2 {
		t.Fatalf("the batch made %d operations and %d undos, leaving %d trips open; want 5, 4 and 2", len(ops), len(undos), tr.open.Len())
	}
	later := storage.OpenTrip{Card: 4, Start: 300, Cell: 1} // another batch, after this one
	tr.open.Put(later)
	tr.revert(undos, ops)
	want := map[uint64]storage.OpenTrip{1: before, 4: later}
	if got := tripsByCard(&tr.open); !maps.Equal(got, want) {
		t.Fatalf("after revert the open trips are %v; want %v", got, want)
	}
	// A tap past card 1's deadline expires the restored trip: one
	// unmatched tap-in, at its tap-in cell.
	var unmatched []uint64
	tr.match([]tap{{card: 9, ms: (100 + 3600 + 1) * 1000, in: true, cell: 3}}, &sc, nil, func(metric string, cell, sub uint64, minute, v int64) {
		if metric == vocab.UnmatchedIn {
			unmatched = append(unmatched, cell)
		}
	})
	if !slices.Equal(unmatched, []uint64{7}) {
		t.Errorf("past its deadline the restored trip gave unmatched tap-ins at %v; want [7]", unmatched)
	}
	if _, ok := tr.open.Get(1); ok {
		t.Error("the restored trip is still open past its deadline")
	}
}

// TestSortTapsByTimeThenArrival sorts batches of taps with many equal
// times through both of sortTaps' ways (packed words, and the comparison
// sort for taps not in arrival order) against a stable sort.
func TestSortTapsByTimeThenArrival(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []uint64
	for round := range 200 {
		n := 1 + rng.IntN(300)
		taps := make([]tap, n)
		for i := range taps {
			taps[i] = tap{card: rng.Uint64(), ms: 1_500_000_000_000 + rng.Int64N(int64(1+round%7*1000)), seq: int32(i)}
		}
		if round%5 == 4 && n > 1 { // not in arrival order: the comparison sort
			taps[0].seq, taps[1].seq = taps[1].seq, taps[0].seq
		}
		want := slices.Clone(taps)
		slices.SortStableFunc(want, func(a, b tap) int { return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.seq, b.seq)) })
		keys = sortTaps(taps, keys)
		if !slices.Equal(taps, want) {
			t.Fatalf("round %d: %d taps sorted wrongly", round, n)
		}
	}
}

// TestRevertRestoresTripsATapInReplaced matches a batch whose tap-ins
// meet trips open before it: one the tap-in follows, one it finds opened
// after it (so it ends that one first), and one under the card's previous
// key. Each tap-in reads the card's open trip once and its undo keeps
// what that read found; revert must bring every one of them back and
// drop the trips the batch opened.
func TestRevertRestoresTripsATapInReplaced(t *testing.T) {
	tr := &Trips{window: 3600}
	tr.legs.legs = true
	before := map[uint64]storage.OpenTrip{
		5:  {Card: 5, Start: 100, Cell: 7},
		6:  {Card: 6, Start: 500, Cell: 8},
		70: {Card: 70, Start: 150, Cell: 9},
	}
	for _, o := range before {
		tr.open.Put(o)
		tr.queue.push(o, &tr.open)
	}
	taps := []tap{
		{card: 5, ms: 200_000, in: true, cell: 1, seq: 0},               // follows card 5's trip
		{card: 6, ms: 300_000, in: true, cell: 2, seq: 1},               // before card 6's trip opened: ends it
		{card: 7, prevCard: 70, ms: 310_000, in: true, cell: 3, seq: 2}, // card 70's trip, under the new key
	}
	var sc matchScratch
	var unmatched int
	ops, undos := tr.match(taps, &sc, nil, func(metric string, cell, sub uint64, minute, v int64) {
		if metric == vocab.UnmatchedIn {
			unmatched++
		}
	})
	got := tripsByCard(&tr.open)
	if len(got) != 3 || got[5].Start != 200 || got[6].Start != 300 || got[7].Start != 310 || unmatched != 3 {
		t.Fatalf("after the batch the open trips are %v and %d unmatched tap-ins; want cards 5, 6 and 7 opened by it and 3", got, unmatched)
	}
	if len(undos) != 4 {
		t.Fatalf("the batch made %d undos; want 4 (cards 5, 6, 70 and 7)", len(undos))
	}
	tr.revert(undos, ops)
	if got := tripsByCard(&tr.open); !maps.Equal(got, before) {
		t.Fatalf("after revert the open trips are %v; want %v", got, before)
	}
}

// tripsByCard is a table's trips by card.
func tripsByCard(t *storage.TripTable) map[uint64]storage.OpenTrip {
	m := map[uint64]storage.OpenTrip{}
	t.Each(func(o storage.OpenTrip) { m[o.Card] = o })
	return m
}
