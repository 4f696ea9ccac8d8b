package ingest

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// tap is one swipe kept for trip matching.
type tap struct {
	card     uint64
	prevCard uint64 // the pseudonym under the previous key, or 0
	ms       int64
	in       bool
	seq      int32 // its place in the batch, for a stable sort by time
	cell     uint64
	line     uint32 // an Inference's line id; set only when destinations are inferred
	group    uint8  // a RiderGroups' group, from 1; 0 for none
}

// Trips matches tap-ins with tap-outs and, given an Inference, infers the
// destinations of legs of lines that have no tap-out. Its table of open
// trips is the working copy; the store keeps the durable one, written with
// the same batch through the WAL, and Trips is rebuilt from it on start.
type Trips struct {
	window int64 // seconds
	infer  *Inference

	mu    sync.Mutex
	open  storage.TripTable
	queue expiryQueue // trips, expiring a window after their tap-in
	// legs are the open legs of lines, expiring when their service day
	// ends (a window after the tap-in without an Inference).
	legs      expiryQueue
	watermark int64 // latest tap time seen, unix seconds
}

// expiryQueue holds open trips by tap-in time; entries a later tap has
// replaced are skipped.
type expiryQueue struct {
	q    []queued
	head int  // q[:head] is expired
	legs bool // the queue of legs of lines (see queueFor)
}

// queued is an open trip waiting in an expiry queue: its card and tap-in
// time, 16 bytes rather than the whole trip. An open trip is the one
// queued when it has the same tap-in time and belongs to the same queue:
// its deadline, which depends on nothing else, is then the entry's, so
// ending it from this entry or from a later one of the same second is the
// same event.
type queued struct {
	card  uint64
	start int64
}

// holds reports whether the queue entry x stands for the open trip o of
// its card.
func (eq *expiryQueue) holds(x queued, o storage.OpenTrip) bool {
	return o.Start == x.start && (o.Line != "") == eq.legs
}

// push queues o. Trips closed by a tap stay in the queue until their
// deadline passes (stale, skipped then); a leg's deadline is the end of
// its service day, so when the queue holds more than twice the open trips
// it drops its stale entries, keeping it about as long as the trips still
// open rather than a whole day of them.
func (eq *expiryQueue) push(o storage.OpenTrip, open *storage.TripTable) {
	if len(eq.q)-eq.head > 2*open.Len()+4096 {
		kept := eq.q[:0]
		for _, x := range eq.q[eq.head:] {
			if cur, ok := open.Get(x.card); ok && eq.holds(x, cur) {
				kept = append(kept, x)
			}
		}
		eq.q, eq.head = kept, 0
	}
	eq.q = append(eq.q, queued{card: o.Card, start: o.Start})
}

// NewTrips returns a matcher holding the store's open trips; inf, when not
// nil, infers the destinations of legs of lines.
func NewTrips(st *storage.Store, window time.Duration, inf *Inference) *Trips {
	t := &Trips{window: int64(window / time.Second), infer: inf}
	t.legs.legs = true
	for _, o := range st.OpenTrips() {
		t.open.Put(o)
		eq := t.queueFor(o)
		eq.q = append(eq.q, queued{card: o.Card, start: o.Start})
		t.watermark = max(t.watermark, o.Start)
	}
	return t
}

// Inferring reports whether the matcher infers destinations.
func (t *Trips) Inferring() bool { return t.infer != nil }

// queueFor is the expiry queue an open trip waits in.
func (t *Trips) queueFor(o storage.OpenTrip) *expiryQueue {
	if o.Line != "" {
		return &t.legs
	}
	return &t.queue
}

// deadline is when an open trip expires: a leg of a line at the end of
// its service day, when destinations are inferred; any other a window
// after its tap-in.
func (t *Trips) deadline(o storage.OpenTrip) int64 {
	if o.Line != "" && t.infer != nil {
		return t.infer.dayEnd(o.Start)
	}
	return o.Start + t.window
}

// queuedDeadline is the deadline of the open trip queued as x in eq.
func (t *Trips) queuedDeadline(eq *expiryQueue, x queued) int64 {
	if eq.legs && t.infer != nil {
		return t.infer.dayEnd(x.start)
	}
	return x.start + t.window
}

// undo restores the open-trip table if a batch could not be made durable.
// What the batch left is its last operation on the card: open (with the
// trip it wrote) or closed.
type undo struct {
	card   uint64
	before storage.OpenTrip
	lastOp int32 // index of the batch's last operation on the card
	had    bool
}

// matchScratch is what matching a batch writes, kept with the batch so that
// a pooled batch matches without allocating.
type matchScratch struct {
	ops     []storage.TripOp
	undos   []undo
	touched touchedCards
	keys    []uint64 // for sortTaps
	sink    uint64   // what TripTable.Warm read, kept so that its loads are not dead code
}

// touchedCards maps the cards a batch has touched to their undos: open
// addressing over a batch's cards, cleared for the next. Its taps' cards
// are most; the trips they expire add more.
type touchedCards struct {
	slots []touchedSlot // a power of two, at most half full
	shift uint8
	n     int
}

type touchedSlot struct {
	card uint64
	undo int32
	used bool
}

// reset empties the table, sized for n cards.
func (tc *touchedCards) reset(n int) {
	size := 64
	for size < 2*n {
		size *= 2
	}
	if cap(tc.slots) < size {
		tc.slots = make([]touchedSlot, size)
	} else {
		tc.slots = tc.slots[:size]
		clear(tc.slots)
	}
	tc.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	tc.n = 0
}

// slot returns card's slot: used when the batch has touched it, else the
// empty slot to take for it, which the caller must fill (see take).
func (tc *touchedCards) slot(card uint64) *touchedSlot {
	mask := len(tc.slots) - 1
	for i := int((card * 0x9e3779b97f4a7c15) >> tc.shift); ; i = (i + 1) & mask {
		if s := &tc.slots[i]; !s.used || s.card == card {
			return s
		}
	}
}

// take fills the empty slot s, from slot, with card's undo, and doubles
// the slots when they are half full.
func (tc *touchedCards) take(s *touchedSlot, card uint64, undo int32) {
	*s = touchedSlot{card: card, undo: undo, used: true}
	if tc.n++; 2*tc.n <= len(tc.slots) {
		return
	}
	old := tc.slots
	tc.slots = make([]touchedSlot, 2*len(old))
	tc.shift--
	for _, x := range old {
		if x.used {
			*tc.slot(x.card) = x
		}
	}
}

// sortTaps sorts taps by time and, among equal times, by seq (their order
// in the batch); keys is scratch, returned for reuse. Most requests come
// in time order and are left as they are. Otherwise each tap's time and
// index are packed into one word, the words sorted as integers, and the
// taps moved into place by following the permutation's cycles, each once,
// rather than swapped about by a comparison sort of 48-byte taps.
func sortTaps(taps []tap, keys []uint64) []uint64 {
	byTime := func(a, b tap) int { return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.seq, b.seq)) }
	if slices.IsSortedFunc(taps, byTime) {
		return keys
	}
	lo, hi := taps[0].ms, taps[0].ms
	ordered := true // seq ascends, so index order is seq order
	for i, tp := range taps {
		lo, hi = min(lo, tp.ms), max(hi, tp.ms)
		ordered = ordered && (i == 0 || taps[i-1].seq < tp.seq)
	}
	const idxBits, done = 24, uint64(1) << 63
	if !ordered || len(taps) >= 1<<idxBits || uint64(hi-lo) >= 1<<(63-idxBits) {
		slices.SortFunc(taps, byTime) // stable by seq, without SortStableFunc's rotations
		return keys
	}
	keys = keys[:0]
	for i, tp := range taps {
		keys = append(keys, uint64(tp.ms-lo)<<idxBits|uint64(i))
	}
	slices.Sort(keys)
	// taps[i] takes the tap at index keys[i]'s low bits: move each cycle
	// of that permutation once, marking its keys done.
	for i := range taps {
		if keys[i]&done != 0 {
			continue
		}
		first, j := taps[i], i
		for {
			k := int(keys[j] & (1<<idxBits - 1))
			keys[j] |= done
			if k == i {
				taps[j] = first
				break
			}
			taps[j], j = taps[k], k
		}
	}
	return keys
}

// match runs the batch's taps, in time order, against the open trips;
// groups names the rider groups of their group ids. It calls add for each
// delta and returns the trip operations to log and how to take them back,
// in sc's buffers.
func (t *Trips) match(taps []tap, sc *matchScratch, groups *RiderGroups, add func(metric string, cell, sub uint64, minute, v int64)) ([]storage.TripOp, []undo) {
	sc.keys = sortTaps(taps, sc.keys)
	ops, undos := sc.ops[:0], sc.undos[:0]
	touched := &sc.touched
	touched.reset(len(taps))
	defer func() { sc.ops, sc.undos = ops, undos }()
	// remember returns the card's undo, made before the batch's first
	// operation on it.
	remember := func(card uint64) *undo {
		ts := touched.slot(card)
		if ts.used {
			return &undos[ts.undo]
		}
		touched.take(ts, card, int32(len(undos)))
		before, had := t.open.Get(card)
		undos = append(undos, undo{card: card, had: had, before: before})
		return &undos[len(undos)-1]
	}
	closeTrip := func(card uint64) {
		u := remember(card)
		t.open.Del(card)
		ops = append(ops, storage.TripOp{Trip: storage.OpenTrip{Card: card}})
		u.lastOp = int32(len(ops) - 1)
	}
	var ahead [16]uint64
	for i, tp := range taps {
		if i%len(ahead) == 0 {
			// This tap's card's slot and the next ones', read together
			// (see TripTable.Warm).
			n := 0
			for _, next := range taps[i:min(i+len(ahead), len(taps))] {
				ahead[n], n = next.card, n+1
			}
			sc.sink += t.open.Warm(ahead[:n])
		}
		sec := vocab.FloorDiv(tp.ms, 1000)
		if sec > t.watermark {
			t.watermark = sec
			t.expire(groups, add, closeTrip)
		}
		card := tp.card
		o, isOpen := t.open.Get(card)
		if !isOpen && tp.prevCard != 0 {
			// A trip opened before the key was rotated.
			if o, isOpen = t.open.Get(tp.prevCard); isOpen {
				card = tp.prevCard
			}
		}
		if isOpen && (sec >= t.deadline(o) || sec < o.Start) {
			// Past its day or window, or a tap from before it opened: the
			// open trip ends as it would have expired.
			t.end(o, groups, add)
			closeTrip(card)
			isOpen = false
		}
		if tp.in {
			n := storage.OpenTrip{Card: tp.card, Start: sec, Cell: tp.cell}
			if tp.line != 0 {
				n.Line = t.infer.lineName(tp.line)
			}
			if n.Line != "" {
				n.TripStart, n.TripCell, n.DayCell = sec, tp.cell, tp.cell
				if g := groups.byID(tp.group); g != nil {
					n.Group = g.name // the card's group, as its tap-in gives it
				}
			}
			if n.Line != "" {
				// Learnt first: a card boarding the line it rode again
				// is taken to have alighted where it boards.
				t.infer.learn(n.Line, n.Cell)
			}
			if isOpen {
				t.follow(o, &n, groups, add)
				if card != tp.card {
					closeTrip(card) // the leg under the previous key
				}
			}
			u := remember(tp.card)
			t.open.Put(n)
			t.queueFor(n).push(n, &t.open)
			ops = append(ops, storage.TripOp{Open: true, Trip: n})
			u.lastOp = int32(len(ops) - 1)
			continue
		}
		if !isOpen || sec-o.Start > t.window {
			// A tap-out with no tap-in open, or one of a leg that stayed
			// open past the trip window for its destination to be
			// inferred: the two taps are not one trip.
			if isOpen {
				add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
				closeTrip(card)
			}
			add(vocab.UnmatchedOut, tp.cell, 0, vocab.FloorDiv(sec, 60), 1)
			continue
		}
		minute := vocab.FloorDiv(o.Start, 60)
		add(vocab.Trips, o.Cell, tp.cell, minute, 1)
		add(vocab.TripSeconds, o.Cell, tp.cell, minute, sec-o.Start)
		if g := groups.byID(tp.group); g != nil {
			// The card's group, as its tap-out gives it: fare systems
			// write the category on both taps.
			add(g.trips, o.Cell, tp.cell, minute, 1)
			add(g.sec, o.Cell, tp.cell, minute, sec-o.Start)
		}
		closeTrip(card)
	}
	return ops, undos
}

// expire ends the trips and legs whose deadline the watermark has passed,
// oldest first.
func (t *Trips) expire(groups *RiderGroups, add func(metric string, cell, sub uint64, minute, v int64), closeTrip func(uint64)) {
	for _, eq := range []*expiryQueue{&t.queue, &t.legs} {
		for ; eq.head < len(eq.q) && t.queuedDeadline(eq, eq.q[eq.head]) <= t.watermark; eq.head++ {
			q := eq.q[eq.head]
			if o, ok := t.open.Get(q.card); ok && eq.holds(q, o) {
				t.end(o, groups, add)
				closeTrip(q.card)
			}
		}
		// Drop the expired front once it is most of the queue, so the
		// queue costs amortised O(1) a trip.
		if eq.head > len(eq.q)/2 {
			eq.q = append(eq.q[:0], eq.q[eq.head:]...)
			eq.head = 0
		}
	}
}

// end counts an open trip that no tap closes: a leg of a line as the
// day's last, ending at its line's stop nearest to the day's first
// boarding; any other as an unmatched tap-in.
func (t *Trips) end(o storage.OpenTrip, groups *RiderGroups, add func(metric string, cell, sub uint64, minute, v int64)) {
	if o.Line != "" && t.infer != nil {
		if dest, ok := t.infer.alight(o.Line, o.DayCell); ok && dest != o.Cell {
			g := groups.named(o.Group)
			addLeg(g, o, dest, add)
			addInferredTrip(g, o, dest, add)
			return
		}
	}
	add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
}

// follow counts the open trip o that the same card's tap-in n follows the
// same service day and sets n's chaining fields. A leg of a line ends at
// its line's stop nearest to n: the trip goes on through n when n comes
// within the transfer time, and ends there otherwise. Any other open trip,
// and a leg with no stop near n, is an unmatched tap-in and ends its trip.
func (t *Trips) follow(o storage.OpenTrip, n *storage.OpenTrip, groups *RiderGroups, add func(metric string, cell, sub uint64, minute, v int64)) {
	if n.Line != "" && o.Line != "" {
		n.DayCell = o.DayCell
	}
	if o.Line == "" || t.infer == nil {
		add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
		return
	}
	dest, ok := t.infer.alight(o.Line, n.Cell)
	if !ok || dest == o.Cell {
		add(vocab.UnmatchedIn, o.Cell, 0, vocab.FloorDiv(o.Start, 60), 1)
		return
	}
	g := groups.named(o.Group)
	addLeg(g, o, dest, add)
	if n.Line != "" && n.Start-o.Start <= t.infer.transfer() {
		n.TripStart, n.TripCell = o.TripStart, o.TripCell
		return
	}
	addInferredTrip(g, o, dest, add)
}

// addLeg counts the inferred leg o ending at dest, in its rider group g
// too when it has one.
func addLeg(g *riderGroup, o storage.OpenTrip, dest uint64, add func(metric string, cell, sub uint64, minute, v int64)) {
	add(vocab.LegsInferred, o.Cell, dest, vocab.FloorDiv(o.Start, 60), 1)
	if g != nil {
		add(g.legs, o.Cell, dest, vocab.FloorDiv(o.Start, 60), 1)
	}
}

// addInferredTrip counts the inferred trip whose last leg is o, ending at
// dest, in the group of that leg's card too. A card's legs are of one
// group: fare systems write the category on every tap.
func addInferredTrip(g *riderGroup, o storage.OpenTrip, dest uint64, add func(metric string, cell, sub uint64, minute, v int64)) {
	add(vocab.TripsInferred, o.TripCell, dest, vocab.FloorDiv(o.TripStart, 60), 1)
	if g != nil {
		add(g.tripsInferred, o.TripCell, dest, vocab.FloorDiv(o.TripStart, 60), 1)
	}
}

// revert takes back a batch's effect on the open trips, given its undos
// and operations, where no later batch has changed them since.
func (t *Trips) revert(undos []undo, ops []storage.TripOp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range undos {
		cur, open := t.open.Get(u.card)
		left := ops[u.lastOp]
		if open != left.Open || open && cur != left.Trip {
			continue
		}
		if u.had {
			t.open.Put(u.before)
			eq := t.queueFor(u.before)
			eq.q = append(eq.q, queued{card: u.before.Card, start: u.before.Start})
		} else {
			t.open.Del(u.card)
		}
	}
}
