package dashboard

import (
	"math/rand/v2"
	"testing"

	"github.com/flowd/flowd/vocab"
)

// TestSiteDayOccupancyRule spells the rule out minute by minute: never
// below zero, exits beyond what was counted in dropped at once so the
// next entries show, a reading ends its minute at its value whatever the
// gates said, and late readings count in their own minute.
func TestSiteDayOccupancyRule(t *testing.T) {
	type reading struct {
		minute, sec int
		in, out     int64
		occ         int64 // -1: none
	}
	for _, tc := range []struct {
		name     string
		readings []reading // in arrival order
		want     []int64   // occupancy at the end of each minute
	}{
		{"entries and exits", []reading{{0, 0, 10, 0, -1}, {1, 0, 5, 3, -1}, {2, 0, 0, 12, -1}}, []int64{10, 12, 0}},
		{"exits of unseen entries do not hide the next entries", []reading{{0, 0, 0, 500, -1}, {1, 0, 100, 0, -1}, {2, 0, 0, 30, -1}}, []int64{0, 100, 70}},
		{"a reading re-baselines its minute", []reading{{0, 0, 10, 0, -1}, {1, 30, 0, 0, 800}, {1, 10, 50, 0, -1}, {2, 0, 20, 5, -1}}, []int64{10, 800, 815}},
		{"the latest reading of a minute wins, whatever the arrival order", []reading{{0, 50, 0, 0, 300}, {0, 20, 0, 0, 900}, {1, 0, 1, 0, -1}}, []int64{300, 301}},
		{"a late reading lands in its own minute", []reading{{0, 0, 10, 0, -1}, {2, 0, 5, 0, -1}, {1, 0, 0, 0, 200}}, []int64{10, 200, 205}},
		{"a reading of 0 empties the site", []reading{{0, 0, 40, 0, -1}, {1, 0, 0, 0, 0}, {2, 0, 3, 0, -1}}, []int64{40, 0, 3}},
		{"a minute without readings holds", []reading{{0, 0, 7, 0, -1}, {3, 0, 0, 2, -1}}, []int64{7, 7, 7, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newSiteDay(0, 86400000)
			for _, r := range tc.readings {
				sr := vocab.SiteReading{Time: int64(r.minute)*60000 + int64(r.sec)*1000, In: r.in, Out: r.out}
				if r.occ >= 0 {
					sr.Occupancy, sr.HasOccupancy = r.occ, true
				}
				if !d.add(&sr) {
					t.Fatalf("reading %+v refused", r)
				}
			}
			var got []int64
			d.walk(func(_ int, occ int64) { got = append(got, occ) })
			if !equalInts(got, tc.want) {
				t.Errorf("occupancy by minute %v, want %v", got, tc.want)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSiteDayNeverNegativeNorStuckAtZero feeds random days of entries,
// exits and occupancy readings, with the first hours' entries lost (a
// server started at noon) and readings arriving shuffled: occupancy is
// never negative, a minute with more entries than exits always shows
// them, each reading's minute ends at it, and a complete day is followed
// exactly, as is an incomplete one from its first reading after the loss.
func TestSiteDayNeverNegativeNorStuckAtZero(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 3))
	for run := range 200 {
		const minutes = 600
		lost := 0 // entries before this minute were never seen
		if run%2 == 1 {
			lost = 1 + r.IntN(minutes/2)
		}
		var all []vocab.SiteReading
		var truth, net [minutes]int64
		reading := map[int]int64{}
		occ := int64(0)
		for k := range minutes {
			in := int64(r.IntN(50))
			out := min(int64(r.IntN(50)), occ+in) // people leave only once inside
			occ += in - out
			truth[k] = occ
			seenIn := in
			if k < lost {
				seenIn = 0
			}
			net[k] = seenIn - out
			all = append(all, vocab.SiteReading{Time: int64(k)*60000 + int64(r.IntN(60000)), In: seenIn, Out: out})
			if r.IntN(40) == 0 {
				reading[k] = occ
				all = append(all, vocab.SiteReading{Time: int64(k)*60000 + 59999, Occupancy: occ, HasOccupancy: true})
			}
		}
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		d := newSiteDay(0, minutes*60000)
		for i := range all {
			d.add(&all[i])
		}
		exact := lost == 0
		d.walk(func(k int, got int64) {
			if _, ok := reading[k]; ok && k >= lost {
				exact = true // from a reading on, the gates are complete again
			}
			switch {
			case got < 0:
				t.Fatalf("run %d minute %d: occupancy %d", run, k, got)
			case net[k] > 0 && got < net[k]:
				if _, ok := reading[k]; !ok {
					t.Fatalf("run %d minute %d: %d more entries than exits, occupancy %d", run, k, net[k], got)
				}
			}
			if v, ok := reading[k]; ok && got != v {
				t.Fatalf("run %d minute %d: occupancy %d, want the reading %d", run, k, got, v)
			}
			if exact && got != truth[k] {
				t.Fatalf("run %d minute %d: occupancy %d of a complete day, want %d", run, k, got, truth[k])
			}
		})
	}
}
