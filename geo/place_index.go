package geo

import (
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
// to maxInlineID. The id's bytes are read as whole words, overlapping
// where it is shorter than one: no copy through a buffer.
func packID(id string) [2]uint64 {
	n := len(id)
	var w0, w1 uint64
	switch {
	case n >= 8:
		w0 = le64(id)
		// bytes n-8..n-1, of which those from 8 on are kept
		w1 = le64(id[n-8:]) >> (8 * (16 - n))
	case n >= 4:
		w0 = uint64(le32(id)) | uint64(le32(id[n-4:]))<<(8*(n-4))
	default: // 1 to 3 bytes
		w0 = uint64(id[0]) | uint64(id[n/2])<<(8*(n/2)) | uint64(id[n-1])<<(8*(n-1))
	}
	return [2]uint64{w0, w1 | uint64(n)<<56}
}

// le64 and le32 read the first bytes of s as a little-endian word.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
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

// manyIDs bounds the ids getMany looks up at once.
const manyIDs = 16

// getMany is get of up to manyIDs ids at once: places[i] and found[i]
// for ids[i]. The ids' words and the slots where their probes start are
// all found before the first probe, and the probes do not depend on one
// another, so that the cache misses of a table larger than the cache
// overlap: a feed naming another sensor on every line waits for memory
// about once a group instead of once a line.
func (x *placeIndex) getMany(ids []string, places []Place, found []bool) {
	ids = ids[:min(len(ids), manyIDs, len(places), len(found))]
	if x == nil {
		clear(found[:len(ids)])
		return
	}
	var ws, first [manyIDs][2]uint64
	var at [manyIDs]uint64
	mask := uint64(len(x.slots) - 1)
	for i, id := range ids {
		if len(id) > 0 && len(id) <= maxInlineID {
			ws[i] = packID(id)
			at[i] = x.hash(ws[i]) & mask
		}
	}
	// The first slots are read here, one after another without a branch
	// between, so that their misses are all under way before the first
	// compare waits for one.
	for i := range ids {
		first[i] = x.slots[at[i]].id
	}
	for i, id := range ids {
		if len(id) == 0 || len(id) > maxInlineID {
			places[i], found[i] = x.long[id]
			continue
		}
		places[i], found[i] = Place{}, false
		if first[i] == ws[i] {
			places[i], found[i] = x.slots[at[i]].place, true
			continue
		}
		if first[i][1] == 0 {
			continue
		}
		for j := (at[i] + 1) & mask; ; j = (j + 1) & mask {
			s := &x.slots[j]
			if s.id == ws[i] {
				places[i], found[i] = s.place, true
				break
			}
			if s.id[1] == 0 {
				break
			}
		}
	}
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
