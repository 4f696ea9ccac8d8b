package ingest

import (
	"slices"
	"testing"

	"github.com/flowd/flowd/storage"
)

// TestExpiryQueueDropsClosedTrips pushes a day of taps whose trips mostly
// close at once, as a metro's tap-outs close its legs long before their
// day ends: the queue stays about as long as the trips still open, and
// holds each of them, in order.
func TestExpiryQueueDropsClosedTrips(t *testing.T) {
	open := map[uint64]storage.OpenTrip{}
	var eq expiryQueue
	longest := 0
	for i := range 200000 {
		o := storage.OpenTrip{Card: uint64(i), Start: int64(i), Cell: 1, Line: "L1"}
		open[o.Card] = o
		eq.push(o, open)
		if i%100 != 0 {
			delete(open, o.Card) // tapped out: 1 trip in 100 stays open
		}
		longest = max(longest, len(eq.q)-eq.head)
	}
	if limit := 2*len(open) + 4096 + 1; longest > limit {
		t.Errorf("the queue grew to %d entries for %d open trips; want at most %d", longest, len(open), limit)
	}
	var live []int64
	for _, x := range eq.q[eq.head:] {
		if cur, ok := open[x.Card]; ok && cur == x {
			live = append(live, x.Start)
		}
	}
	if len(live) != len(open) || !slices.IsSorted(live) {
		t.Errorf("the queue holds %d of the %d open trips (in order: %v)", len(live), len(open), slices.IsSorted(live))
	}
}
