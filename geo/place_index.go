package geo

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// placeIndex maps the ids of stations or sensors to their places, for
// ingest's hot path, where every tap and count looks one up. A Go map of
// strings reads three places in memory for a lookup that misses the
// caches — a group's control word, the slot, the key's bytes elsewhere —
// and a feed of many sensors misses them at nearly every line. Here an id
// of up to maxInlineID bytes lives in its slot, beside its place, in
// half a cache line: a lookup reads one line (or the next, at the end of
// a probe). Longer ids go to a map.
type placeIndex struct {
	slots []placeSlot // a power of two of them, at most 75 % full
	seed  uint64
	long  map[string]Place
}

// maxInlineID is the longest id kept in a slot: 15 bytes and its length.
const maxInlineID = 15

// placeSlot holds an id of 1 to maxInlineID bytes as two little-endian
// words, zero-padded, its length in the top byte of the second (so an
// empty slot, length 0, is two zero words no id has), and its place.
type placeSlot struct {
	id    [2]uint64
	place Place
}

// packID returns the words of a slot holding id, whose length must be 1
// to maxInlineID.
func packID(id string) [2]uint64 {
	var b [16]byte
	copy(b[:], id)
	b[15] = byte(len(id))
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// hash mixes an id's words with the index's seed (drawn at build, so
// that no one can choose ids that collide on every server).
func (x *placeIndex) hash(w [2]uint64) uint64 {
	h := (w[0]^x.seed)*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(w[1], 29)*0xc2b2ae3d27d4eb4f
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// newPlaceIndex builds the index of places by id.
func newPlaceIndex(places map[string]Place) *placeIndex {
	n := 8
	for n*3 < len(places)*4 { // at most 75 % full
		n *= 2
	}
	x := &placeIndex{slots: make([]placeSlot, n), seed: rand.Uint64()}
	mask := uint64(n - 1)
	for id, p := range places {
		if len(id) == 0 || len(id) > maxInlineID {
			if x.long == nil {
				x.long = map[string]Place{}
			}
			x.long[id] = p
			continue
		}
		w := packID(id)
		i := x.hash(w) & mask
		for x.slots[i].id[1] != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = placeSlot{id: w, place: p}
	}
	return x
}

// get returns the place of id; a nil index holds none.
func (x *placeIndex) get(id string) (Place, bool) {
	if x == nil {
		return Place{}, false
	}
	if len(id) == 0 || len(id) > maxInlineID {
		p, ok := x.long[id]
		return p, ok
	}
	w := packID(id)
	mask := uint64(len(x.slots) - 1)
	for i := x.hash(w) & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.id == w {
			return s.place, true
		}
		if s.id[1] == 0 {
			return Place{}, false
		}
	}
}
