package storage

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// asMap is the table's trips by card.
func (t *TripTable) asMap() map[uint64]OpenTrip {
	m := map[uint64]OpenTrip{}
	t.Each(func(o OpenTrip) { m[o.Card] = o })
	return m
}

// TestTripTableAgreesWithAMap runs random puts, replacements and deletes
// against the table and a Go map, over cards drawn from a few small sets
// (long runs of full slots, whose deletes move trips back across the
// table's end) and over card 0, which a slot cannot hold, half of them legs
// of lines of rider groups, whose names the slots hold as numbers; after each step
// the reads agree, and at checkpoints so do the whole contents.
func TestTripTableAgreesWithAMap(t *testing.T) {
	for _, cards := range []struct {
		name string
		draw func(r *rand.Rand) uint64
	}{
		{"small", func(r *rand.Rand) uint64 { return r.Uint64N(300) }},
		{"sparse", func(r *rand.Rand) uint64 { return r.Uint64() | 1 }},
		{"strided", func(r *rand.Rand) uint64 { return r.Uint64N(500) << 40 }},
	} {
		t.Run(cards.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var tb TripTable
			lines, groups := []string{"1", "2", "B7", "地铁1号线"}, []string{"", "student", "senior"}
			want := map[uint64]OpenTrip{}
			for step := range 200000 {
				card := cards.draw(r)
				switch op := r.IntN(10); {
				case op < 5:
					o := OpenTrip{Card: card, Start: int64(step), Cell: r.Uint64()}
					if r.IntN(2) == 0 { // a leg of a line, perhaps of a rider group
						o.Line, o.TripStart, o.TripCell, o.DayCell = lines[r.IntN(len(lines))], int64(step-r.IntN(9)), r.Uint64(), r.Uint64()
						o.Group = groups[r.IntN(len(groups))]
					}
					tb.Put(o)
					want[card] = o
				case op < 9:
					tb.Del(card)
					delete(want, card)
				default:
					card = 0 // no slot holds it
					if r.IntN(2) == 0 {
						o := OpenTrip{Card: 0, Start: int64(step)}
						tb.Put(o)
						want[0] = o
					} else {
						tb.Del(0)
						delete(want, 0)
					}
				}
				got, ok := tb.Get(card)
				w, wok := want[card]
				if ok != wok || got != w || tb.Len() != len(want) {
					t.Fatalf("step %d, card %d: table has %+v %v (%d trips), map %+v %v (%d)", step, card, got, ok, tb.Len(), w, wok, len(want))
				}
				if step%5000 == 0 {
					if !maps.Equal(tb.asMap(), want) {
						t.Fatalf("step %d: the table's trips differ from the map's", step)
					}
					for c, o := range want {
						if g, ok := tb.Get(c); !ok || g != o {
							t.Fatalf("step %d: card %d reads %+v %v; want %+v", step, c, g, ok, o)
						}
					}
				}
			}
			if 2*tb.n > len(tb.slots) {
				t.Errorf("%d trips in %d slots: more than half full", tb.n, len(tb.slots))
			}
		})
	}
}
