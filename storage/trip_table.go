package storage

import "math/bits"

// TripTable holds open trips by card, for ingest's trip matching (its
// working copy) and the store (the durable one, written through the WAL):
// open addressing with linear probing, the trips in the slots themselves.
// A tap reads and writes its
// card's trip where it found it, in a slot or two of one array, where a Go
// map hashes the key again for every read, write and delete and keeps its
// control words apart from its slots. A card is a keyed hash, so nobody
// can choose cards that collide; its bits are still mixed, so that small
// cards (the tests') spread too.
//
// An empty slot has card 0. The trip of card 0, which a keyed hash gives
// one card in 2⁶⁴, is kept aside.
type TripTable struct {
	slots []OpenTrip // a power of two of them, at most half full
	shift uint8      // 64 - log2(len(slots))
	n     int        // trips in slots
	zero  *OpenTrip  // the trip of card 0, nil when none is open
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

// Find returns card's trip, in place, or nil. The pointer is good until
// the table's next Put or Del.
func (t *TripTable) Find(card uint64) *OpenTrip {
	if card == 0 {
		return t.zero
	}
	if len(t.slots) == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(card); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.Card == card {
			return s
		}
		if s.Card == 0 {
			return nil
		}
	}
}

// Get returns card's open trip.
func (t *TripTable) Get(card uint64) (OpenTrip, bool) {
	if p := t.Find(card); p != nil {
		return *p, true
	}
	return OpenTrip{}, false
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
	mask := len(t.slots) - 1
	for i := t.home(o.Card); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.Card == o.Card {
			*s = o
			return
		}
		if s.Card == 0 {
			*s = o
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
	for ; t.slots[i].Card != card; i = (i + 1) & mask {
		if t.slots[i].Card == 0 {
			return
		}
	}
	for j := (i + 1) & mask; t.slots[j].Card != 0; j = (j + 1) & mask {
		// The trip at j may fill the hole at i unless its home lies
		// cyclically after i, up to j: then its probe never passes i.
		if h := t.home(t.slots[j].Card); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = OpenTrip{}
	t.n--
}

// grow doubles the slots (or makes the first ones) and puts the trips back.
func (t *TripTable) grow() {
	old := t.slots
	n := max(2*len(old), minTripSlots)
	t.slots = make([]OpenTrip, n)
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	t.n = 0
	for i := range old {
		if old[i].Card != 0 {
			t.Put(old[i])
		}
	}
}

// Each calls fn with every open trip, in no order.
func (t *TripTable) Each(fn func(OpenTrip)) {
	if t.zero != nil {
		fn(*t.zero)
	}
	for i := range t.slots {
		if t.slots[i].Card != 0 {
			fn(t.slots[i])
		}
	}
}
