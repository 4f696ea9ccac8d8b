package storage

import "math/bits"

// TripTable holds open trips by card, for ingest's trip matching (its
// working copy) and the store (the durable one, written through the WAL):
// open addressing with linear probing, the trips in the slots themselves.
// A lookup reads a slot or two of one array, beginning where the card's
// bits say, where a Go map hashes the key and reads a group's control
// word before its slot. A card is a keyed hash, so nobody can choose
// cards that collide; its bits are still mixed by one multiplication, so
// that small cards (the tests') spread too.
//
// The slots hold no pointers: a trip's line and rider group are numbers
// in the table's list of the names it has seen (lines and groups are
// few), so the garbage collector never scans the slots and writing one
// needs no write barrier.
//
// An empty slot has card 0. The trip of card 0, which a keyed hash gives
// one card in 2⁶⁴, is kept aside.
type TripTable struct {
	slots []tripSlot // a power of two of them, at most half full
	shift uint8      // 64 - log2(len(slots))
	n     int        // trips in slots
	zero  *OpenTrip  // the trip of card 0, nil when none is open

	names  []string          // names[0] is ""
	nameID map[string]uint32 // names' indexes
}

// tripSlot is an OpenTrip with its names as numbers (see TripTable).
type tripSlot struct {
	card, cell, tripCell, dayCell uint64
	start, tripStart              int64
	line, group                   uint32
}

// minTripSlots is the table's smallest size.
const minTripSlots = 64

// home is the slot where card's probe starts.
func (t *TripTable) home(card uint64) int {
	return int((card * 0x9e3779b97f4a7c15) >> t.shift)
}

// Len is the number of open trips.
func (t *TripTable) Len() int {
	if t.zero != nil {
		return t.n + 1
	}
	return t.n
}

// Get returns card's open trip.
func (t *TripTable) Get(card uint64) (OpenTrip, bool) {
	if card == 0 {
		if t.zero != nil {
			return *t.zero, true
		}
		return OpenTrip{}, false
	}
	if len(t.slots) == 0 {
		return OpenTrip{}, false
	}
	mask := len(t.slots) - 1
	for i := t.home(card); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.card == card {
			return t.trip(s), true
		}
		if s.card == 0 {
			return OpenTrip{}, false
		}
	}
}

// trip is the open trip slot s holds.
func (t *TripTable) trip(s *tripSlot) OpenTrip {
	return OpenTrip{Card: s.card, Start: s.start, Cell: s.cell, Line: t.names[s.line],
		TripStart: s.tripStart, TripCell: s.tripCell, DayCell: s.dayCell, Group: t.names[s.group]}
}

// id returns the number of a line's or group's name, "" being 0.
func (t *TripTable) id(name string) uint32 {
	if name == "" {
		return 0
	}
	if id, ok := t.nameID[name]; ok {
		return id
	}
	if t.nameID == nil {
		t.nameID = map[string]uint32{}
	}
	id := uint32(len(t.names))
	t.names = append(t.names, name)
	t.nameID[name] = id
	return id
}

// Put opens o, in place of its card's trip if one is open.
func (t *TripTable) Put(o OpenTrip) {
	if o.Card == 0 {
		z := o
		t.zero = &z
		return
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	t.put(tripSlot{card: o.Card, cell: o.Cell, tripCell: o.TripCell, dayCell: o.DayCell,
		start: o.Start, tripStart: o.TripStart, line: t.id(o.Line), group: t.id(o.Group)})
}

// put writes x to its card's slot, which must have room.
func (t *TripTable) put(x tripSlot) {
	mask := len(t.slots) - 1
	for i := t.home(x.card); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.card == x.card {
			*s = x
			return
		}
		if s.card == 0 {
			*s = x
			t.n++
			return
		}
	}
}

// Del closes card's trip, if one is open. The trips after it in its run
// of full slots that it had pushed from their home move back (backward
// shift deletion), so that no probe needs a tombstone.
func (t *TripTable) Del(card uint64) {
	if card == 0 {
		t.zero = nil
		return
	}
	if len(t.slots) == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.home(card)
	for ; t.slots[i].card != card; i = (i + 1) & mask {
		if t.slots[i].card == 0 {
			return
		}
	}
	for j := (i + 1) & mask; t.slots[j].card != 0; j = (j + 1) & mask {
		// The trip at j may fill the hole at i unless its home lies
		// cyclically after i, up to j: then its probe never passes i.
		if h := t.home(t.slots[j].card); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = tripSlot{}
	t.n--
}

// grow doubles the slots (or makes the first ones) and puts the trips back.
func (t *TripTable) grow() {
	if t.names == nil {
		t.names = []string{""} // before any slot names one
	}
	old := t.slots
	n := max(2*len(old), minTripSlots)
	t.slots = make([]tripSlot, n)
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	t.n = 0
	for i := range old {
		if old[i].card != 0 {
			t.put(old[i])
		}
	}
}

// Warm reads the first slot each card's probe reads, and returns a sum
// of what it read for the caller to keep (loads whose values are unused
// could be dropped). The loads do not depend on one another, so their
// cache misses overlap, where the lookups that follow, each behind the
// last one's probing and branches, would take them one after another:
// call it for the next few cards before looking them up.
func (t *TripTable) Warm(cards []uint64) uint64 {
	var sum uint64
	if len(t.slots) == 0 {
		return 0
	}
	for _, c := range cards {
		sum += t.slots[t.home(c)].card
	}
	return sum
}

// Each calls fn with every open trip, in no order.
func (t *TripTable) Each(fn func(OpenTrip)) {
	if t.zero != nil {
		fn(*t.zero)
	}
	for i := range t.slots {
		if t.slots[i].card != 0 {
			fn(t.trip(&t.slots[i]))
		}
	}
}
