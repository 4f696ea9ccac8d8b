package geo

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/uber/h3-go/v4"
)

// TestPlaceIndexAnswersAsAMap checks the index against a Go map on ids of
// every length from 0 to 40, ids one byte apart, ids that differ only in
// trailing zero bytes (which the slot's padding must tell apart), and ids
// not in it, at several sizes, full and nearly empty.
func TestPlaceIndexAnswersAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 100, 5000, 20000} {
		m := map[string]Place{}
		var probes []string
		for len(m) < n {
			b := make([]byte, r.IntN(41))
			for i := range b {
				b[i] = "ab0\x00-_é"[r.IntN(8)]
			}
			id := string(b)
			m[id] = Place{Cell: h3.Cell(r.Uint64()), Key: h3.Cell(len(m))}
			probes = append(probes, id, id+"\x00", id+"a")
			if len(id) > 0 {
				probes = append(probes, id[:len(id)-1], id[1:])
			}
		}
		for range 1000 {
			probes = append(probes, fmt.Sprintf("s%d", r.IntN(1e6)))
		}
		probes = append(probes, "", "\x00", "\x00\x00")
		x := newPlaceIndex(m)
		for _, id := range probes {
			got, gotOK := x.get(id)
			want, wantOK := m[id]
			if got != want || gotOK != wantOK {
				t.Fatalf("%d ids: get(%q) = %v, %v; the map says %v, %v", n, id, got, gotOK, want, wantOK)
			}
		}
		// getMany, of the same probes in groups of 1 to 17 (the last
		// beyond its bound: left as it was), answers as get does.
		for i := 0; i < len(probes); {
			k := min(1+r.IntN(manyIDs+1), len(probes)-i)
			group := probes[i : i+k]
			places := make([]Place, k)
			found := make([]bool, k)
			for j := range places {
				places[j], found[j] = Place{Cell: 7}, true // overwritten, but past the bound
			}
			x.getMany(group, places, found)
			for j, id := range group {
				want, wantOK := m[id]
				if j >= manyIDs {
					want, wantOK = Place{Cell: 7}, true
				}
				if places[j] != want || found[j] != wantOK {
					t.Fatalf("%d ids: getMany of %d, %q: %v, %v; want %v, %v", n, k, id, places[j], found[j], want, wantOK)
				}
			}
			i += k
		}
	}
	var none *placeIndex
	if _, ok := none.get("a"); ok {
		t.Fatal("a nil index found an id")
	}
	found := []bool{true}
	if none.getMany([]string{"a"}, make([]Place, 1), found); found[0] {
		t.Fatal("a nil index found an id in getMany")
	}
}

// sensorIDs returns n sensors' places by id, their ids, and an order to
// look them up in.
func sensorIDs(n int) (map[string]Place, []string, []int) {
	m := map[string]Place{}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("det-%05d", i)
		m[ids[i]] = Place{Cell: h3.Cell(i + 1)}
	}
	return m, ids, rand.New(rand.NewPCG(3, 4)).Perm(n)
}

// BenchmarkSensorLookup looks up 20,000 sensors' ids in a random order, as
// a feed of many detectors does, in a Go map and in the placeIndex.
func BenchmarkSensorLookup(b *testing.B) {
	m, ids, order := sensorIDs(20000)
	x := newPlaceIndex(m)
	var sink h3.Cell
	b.Run("map", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			p := m[ids[order[i%len(ids)]]]
			sink += p.Cell
		}
	})
	b.Run("index", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			p, _ := x.get(ids[order[i%len(ids)]])
			sink += p.Cell
		}
	})
	if sink == 1 {
		b.Log(sink)
	}
}

// BenchmarkSensorLookupCold is BenchmarkSensorLookup with the caches
// emptied (8 MiB written, untimed) before each run of 100 lookups, as the
// rest of a server's work between two lines of a request empties them.
func BenchmarkSensorLookupCold(b *testing.B) {
	m, ids, order := sensorIDs(20000)
	x := newPlaceIndex(m)
	junk := make([]uint64, 1<<20)
	var sink h3.Cell
	for _, c := range []struct {
		name string
		get  func(string) (Place, bool)
	}{{"map", func(id string) (Place, bool) { p, ok := m[id]; return p, ok }}, {"index", x.get}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if i%100 == 0 {
					b.StopTimer()
					for j := 0; j < len(junk); j += 8 {
						junk[j]++
					}
					b.StartTimer()
				}
				p, _ := c.get(ids[order[i%len(ids)]])
				sink += p.Cell
			}
		})
	}
	if sink == 1 {
		b.Log(sink)
	}
}
