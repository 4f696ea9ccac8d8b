package ingest

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// tap is one swipe kept for trip matching.
type tap struct {
	card     uint64
	prevCard uint64 // a tap-out's pseudonym under the previous key, or 0
	ms       int64
	in       bool
	seq      int32 // its place in the batch, for a stable sort by time
	cell     uint64
}

// Trips matches tap-ins with tap-outs. Its table of open trips is the
// working copy; the store keeps the durable one, written with the same
// batch through the WAL, and Trips is rebuilt from it on start.
type Trips struct {
	window int64 // seconds

	mu        sync.Mutex
	open      map[uint64]storage.OpenTrip
	queue     []storage.OpenTrip // by tap-in time, for expiry; stale entries skipped
	head      int                // queue[:head] is expired
	watermark int64              // latest tap time seen, unix seconds
}

// NewTrips returns a matcher holding the store's open trips.
func NewTrips(st *storage.Store, window time.Duration) *Trips {
	t := &Trips{window: int64(window / time.Second), open: map[uint64]storage.OpenTrip{}}
	for _, o := range st.OpenTrips() {
		t.open[o.Card] = o
		t.queue = append(t.queue, o)
		t.watermark = max(t.watermark, o.Start)
	}
	return t
}

// undo restores the open-trip table if a batch could not be made durable.
type undo struct {
	card    uint64
	had     bool
	before  storage.OpenTrip
	written storage.OpenTrip
	wasOpen bool // what the batch left: open (written) or closed
}

// matchScratch is what matching a batch writes, kept with the batch so that
// a pooled batch matches without allocating.
type matchScratch struct {
	ops     []storage.TripOp
	undos   []undo
	touched map[uint64]bool
}

// match runs the batch's taps, in time order, against the open trips. It
// calls add for each delta and returns the trip operations to log and how
// to take them back, in sc's buffers.
func (t *Trips) match(taps []tap, sc *matchScratch, add func(metric string, cell, sub uint64, minute, v int64)) ([]storage.TripOp, []undo) {
	byTime := func(a, b tap) int { return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.seq, b.seq)) }
	if !slices.IsSortedFunc(taps, byTime) { // most requests come in time order
		slices.SortFunc(taps, byTime) // stable by seq, without SortStableFunc's rotations
	}
	ops, undos := sc.ops[:0], sc.undos[:0]
	if sc.touched == nil {
		sc.touched = map[uint64]bool{}
	}
	touched := sc.touched
	clear(touched)
	defer func() { sc.ops, sc.undos = ops, undos }()
	remember := func(card uint64) {
		if touched[card] {
			return
		}
		touched[card] = true
		before, had := t.open[card]
		undos = append(undos, undo{card: card, had: had, before: before})
	}
	closeTrip := func(card uint64) {
		remember(card)
		delete(t.open, card)
		ops = append(ops, storage.TripOp{Trip: storage.OpenTrip{Card: card}})
	}
	for _, tp := range taps {
		sec := vocab.FloorDiv(tp.ms, 1000)
		if sec > t.watermark {
			t.watermark = sec
			t.expire(add, closeTrip)
		}
		o, isOpen := t.open[tp.card]
		if !isOpen && tp.prevCard != 0 {
			// A trip opened before the key was rotated.
			if o, isOpen = t.open[tp.prevCard]; isOpen {
				tp.card = tp.prevCard
			}
		}
		if isOpen && (sec-o.Start > t.window || sec < o.Start) {
			// Too old to match, or a tap from before it opened: the open
			// trip ends unmatched.
			add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
			closeTrip(tp.card)
			isOpen = false
		}
		if tp.in {
			if isOpen {
				add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
			}
			remember(tp.card)
			n := storage.OpenTrip{Card: tp.card, Start: sec, Cell: tp.cell}
			t.open[tp.card] = n
			t.queue = append(t.queue, n)
			ops = append(ops, storage.TripOp{Open: true, Trip: n})
			continue
		}
		if !isOpen {
			add(vocab.UnmatchedOut, tp.cell, 0, vocab.FloorDiv(sec, 60), 1)
			continue
		}
		minute := vocab.FloorDiv(o.Start, 60)
		add(vocab.Trips, o.Cell, tp.cell, minute, 1)
		add(vocab.TripSeconds, o.Cell, tp.cell, minute, sec-o.Start)
		closeTrip(tp.card)
	}
	for i := range undos {
		u := &undos[i]
		u.written, u.wasOpen = t.open[u.card]
	}
	return ops, undos
}

// expire ends the trips open for longer than the window before the
// watermark, oldest first.
func (t *Trips) expire(add func(metric string, cell, sub uint64, minute, v int64), closeTrip func(uint64)) {
	cut := t.watermark - t.window
	for ; t.head < len(t.queue) && t.queue[t.head].Start < cut; t.head++ {
		q := t.queue[t.head]
		if o, ok := t.open[q.Card]; ok && o == q {
			add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
			closeTrip(q.Card)
		}
	}
	// Drop the expired front once it is most of the queue, so the queue
	// costs amortised O(1) a trip.
	if t.head > len(t.queue)/2 {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
}

// revert takes back a batch's effect on the open trips where no later batch
// has changed them since.
func (t *Trips) revert(undos []undo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range undos {
		cur, open := t.open[u.card]
		if open != u.wasOpen || cur != u.written {
			continue
		}
		if u.had {
			t.open[u.card] = u.before
			t.queue = append(t.queue, u.before)
		} else {
			delete(t.open, u.card)
		}
	}
}
