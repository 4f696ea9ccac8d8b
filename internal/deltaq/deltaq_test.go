package deltaq

import (
	"testing"

	"github.com/flowd/flowd/storage"
)

func delta(i int) storage.Delta {
	return storage.Delta{Key: storage.Key{Metric: 1, Cell: uint64(i), Minute: int64(i)}, Value: int64(i)}
}

// TestQueueKeepsOrderAndReusesItsBlocks pushes more than a block between
// takes, checks that every delta comes back once and in order, that a
// steady feed allocates nothing once its blocks exist, and that a burst's
// blocks are let go by the next release after it.
func TestQueueKeepsOrderAndReusesItsBlocks(t *testing.T) {
	var q Queue
	next := 0
	round := func(n int) {
		t.Helper()
		first := next
		for range n {
			q.Push(delta(next))
			next++
		}
		if q.Len() != n {
			t.Fatalf("Len %d after %d pushes", q.Len(), n)
		}
		taken := q.Take()
		if q.Len() != 0 || taken.Len() != n {
			t.Fatalf("after Take: queue %d, taken %d; want 0, %d", q.Len(), taken.Len(), n)
		}
		want := first
		for run := range taken.All() {
			for _, d := range run {
				if d != delta(want) {
					t.Fatalf("delta %+v; want %+v", d, delta(want))
				}
				want++
			}
		}
		if want != next {
			t.Fatalf("%d deltas came back; want %d", want-first, n)
		}
		q.Release(taken)
	}
	round(3*blockLen + 17)
	round(3*blockLen + 17)
	// Over many rounds, so that what another goroutine allocates meanwhile
	// (AllocsPerRun counts the whole process's) rounds down to nothing: a
	// CI run saw 10 or more in 10 rounds once; an allocation of the queue's
	// own would be one a round at least.
	if allocs := testing.AllocsPerRun(1000, func() { round(3*blockLen + 17) }); allocs != 0 {
		t.Errorf("a steady feed allocates %v times a round; want 0", allocs)
	}
	round(40 * blockLen) // a burst
	round(10)
	round(10)
	if len(q.free) > 1 {
		t.Errorf("%d free blocks kept after a burst and two small rounds; want 1", len(q.free))
	}
	round(0)
	if q.Take().Len() != 0 {
		t.Error("an empty queue took deltas")
	}
}

// TestPushBetweenTakeAndRelease is the consumer's order of events: it
// takes, ingest pushes while it reads, then it releases.
func TestPushBetweenTakeAndRelease(t *testing.T) {
	var q Queue
	for i := range blockLen + 1 {
		q.Push(delta(i))
	}
	taken := q.Take()
	q.Push(delta(-1))
	q.Release(taken)
	q.Push(delta(-2))
	got := q.Take()
	var ds []storage.Delta
	for run := range got.All() {
		ds = append(ds, run...)
	}
	if len(ds) != 2 || ds[0] != delta(-1) || ds[1] != delta(-2) {
		t.Errorf("after a release, the queue holds %+v; want the two deltas pushed meanwhile", ds)
	}
}
