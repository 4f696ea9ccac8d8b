package ingest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// TestNewClassesPastTheMetricCapAreLineErrors counts four detector
// classes into a store that keeps at most six metrics: three classes (two
// metrics each) are kept, the fourth class's line is refused naming the
// flag, and the batch commits.
func TestNewClassesPastTheMetricCapAreLineErrors(t *testing.T) {
	st, err := storage.Open(filepath.Join(t.TempDir(), "store"), storage.Options{MaxMetrics: 6, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := geo.New(9)
	if err := reg.PutSensors([]geo.Sensor{{ID: "C1", Lat: 30.25, Lng: 120.16}}); err != nil {
		t.Fatal(err)
	}
	b := &Bucketer{Registry: reg, Store: st, Res: 9}
	bt := b.NewBatch()
	defer bt.Release()
	now := time.Now().UnixMilli()
	for i, class := range []string{"car", "bus", "bike", "tram"} {
		if err := bt.AddCount(i+1, &Count{Time: now, Sensor: "C1", Class: class, Count: 1, Interval: 60}); err != nil {
			t.Fatalf("%s: %v", class, err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	rej := bt.Rejected()
	if bt.Accepted() != 3 || len(rej) != 1 || rej[0].Line != 4 || rej[0].Field != "class" || !strings.Contains(rej[0].Reason, "-max-metrics") {
		t.Fatalf("%d accepted, rejected %+v; want 3, and line 4's class refused naming -max-metrics", bt.Accepted(), rej)
	}
}

// TestCountsOfOneKeyInARequestAddUp sends requests whose readings name one
// (class, cell) many times, far apart among hundreds of others (past the
// batch's table of recent series, which then makes a second series of the
// key), from sensors alone in their cells and sensors sharing one, with
// and without a speed, over two minutes; the sums are read back from the
// memtable and from parts (storage's TestSeriesRecentKeysAddUp reads such
// batches back from WAL records too).
func TestCountsOfOneKeyInARequestAddUp(t *testing.T) {
	dir := t.TempDir()
	reg := geo.New(9)
	var sensors []geo.Sensor
	for i := range 600 {
		// Sensors 0 and 1 of every ten share a cell.
		lat, lng := 30.1+float64(i/10)*0.004, 120.0+float64(i%10/2)*0.004
		if i%10 >= 2 {
			lng += float64(i%10) * 0.0005
		}
		sensors = append(sensors, geo.Sensor{ID: fmt.Sprintf("s%d", i), Lat: lat, Lng: lng})
	}
	if err := reg.PutSensors(sensors); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	b := &Bucketer{Registry: reg, Store: st, Res: 9}
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	type bucket struct {
		metric string
		cell   uint64
		minute int64
	}
	want := map[bucket]int64{}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 3 {
		bt := b.NewBatch()
		for line := 1; line <= 4000; line++ {
			s := rng.IntN(len(sensors))
			class := [3]string{"car", "bus", "bike"}[rng.IntN(3)]
			at := base.Add(time.Duration(rng.IntN(2)) * time.Minute)
			c := Count{Time: at.UnixMilli(), Sensor: sensors[s].ID, Class: class, Count: int64(1 + rng.IntN(20)), Interval: 60}
			if rng.IntN(2) == 0 {
				c.Speed, c.HasSpeed = float64(10+rng.IntN(50)), true
			}
			if err := bt.AddCount(line, &c); err != nil {
				t.Fatal(err)
			}
			place, _ := reg.SensorPlace(sensors[s].ID)
			m := vocab.MinuteOf(c.Time)
			want[bucket{vocab.CountPrefix + class, uint64(place.Cell), m}] += c.Count
			if c.HasSpeed {
				want[bucket{vocab.SpeedPrefix + class, uint64(place.Cell), m}] += vocab.SpeedSum(c.Speed, c.Count)
			}
		}
		if err := bt.Commit(); err != nil || len(bt.Rejected()) > 0 {
			t.Fatal(err, bt.Rejected())
		}
		bt.Release()
	}
	check := func(when string, st *storage.Store) {
		t.Helper()
		got := map[bucket]int64{}
		for _, class := range []string{"car", "bus", "bike"} {
			for _, metric := range []string{vocab.CountPrefix + class, vocab.SpeedPrefix + class} {
				err := st.Scan(storage.TierMinute, metric, []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}, -1<<62, 1<<62, func(cell uint64, minute, v int64) {
					got[bucket{metric, cell, minute}] += v
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if !maps.Equal(got, want) {
			n := 0
			for k, v := range want {
				if got[k] != v && n < 5 {
					t.Errorf("%s: %+v = %d, want %d", when, k, got[k], v)
					n++
				}
			}
			t.Fatalf("%s: %d buckets, want %d", when, len(got), len(want))
		}
	}
	defer st.Close()
	check("in the memtable", st)
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	check("in parts", st)
}

// TestPooledBatchesNameMetricsByTheirOwnStore buckets swipes through two
// Bucketers whose stores number the same metrics differently, one request
// after the other on the same pooled batch: each store gets its taps
// under the right metric (a batch remembers the ids of the metrics its
// request added to, and must forget them between requests).
func TestPooledBatchesNameMetricsByTheirOwnStore(t *testing.T) {
	dir := t.TempDir()
	reg := geo.New(9)
	if err := reg.PutStations([]geo.Station{{ID: "S1", Name: "One", Lat: 30.25, Lng: 120.16}}); err != nil {
		t.Fatal(err)
	}
	cards, err := LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	var bks [2]*Bucketer
	for i := range bks {
		st, err := storage.Open(filepath.Join(dir, fmt.Sprint("store", i)), storage.Options{Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if i == 1 {
			// Other metrics first: the second store numbers the swipes'
			// metrics after them.
			for _, m := range []string{vocab.FootfallIn, vocab.FootfallOut, vocab.TripSeconds} {
				if _, err := st.MetricID(m); err != nil {
					t.Fatal(err)
				}
			}
		}
		bks[i] = &Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
	}
	now := time.Now().Truncate(time.Minute)
	for round := range 3 {
		for i, b := range bks {
			bt := b.NewBatch()
			for n := range i + 1 {
				if err := bt.AddSwipe(n+1, &Swipe{Time: now.UnixMilli(), Card: fmt.Sprint("card", round, i, n), In: true, Station: "S1"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := bt.Commit(); err != nil {
				t.Fatal(err)
			}
			bt.Release()
		}
	}
	for i, b := range bks {
		var in, out int64
		from, to := vocab.MinuteOf(now.UnixMilli()), vocab.MinuteOf(now.UnixMilli())+1
		all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
		if err := b.Store.Scan(storage.TierMinute, vocab.SwipesIn, all, from, to, func(_ uint64, _, v int64) { in += v }); err != nil {
			t.Fatal(err)
		}
		if err := b.Store.Scan(storage.TierMinute, vocab.SwipesOut, all, from, to, func(_ uint64, _, v int64) { out += v }); err != nil {
			t.Fatal(err)
		}
		if want := int64(3 * (i + 1)); in != want || out != 0 {
			t.Errorf("store %d: %d taps in and %d out, want %d in and none out", i, in, out, want)
		}
	}
}

// TestSameIDAsEquals checks sameID, which compares ids of 8 to 16 bytes
// as two words, against ==: ids of every length to 20, equal and
// differing in any one byte (the words overlap for ids under 16), and of
// different lengths sharing a prefix, taken from one buffer so that their
// bytes sit anywhere in a word.
func TestSameIDAsEquals(t *testing.T) {
	buf := []byte("det-00001-det-00001-xyzxyzxyzxyzxyzxyz")
	for n := range 21 {
		for off := range 8 {
			if off+n > len(buf) {
				continue
			}
			a := string(buf[off : off+n])
			for i := range n {
				for _, c := range []byte{0, '0', '1', 0xff} {
					b := []byte(a)
					b[i] = c
					if got, want := sameID(a, string(b)), a == string(b); got != want {
						t.Fatalf("sameID(%q, %q) = %v", a, b, got)
					}
				}
			}
			if !sameID(a, strings.Clone(a)) {
				t.Fatalf("sameID(%q, a copy) = false", a)
			}
			if m := n + 1; off+m <= len(buf) && sameID(a, string(buf[off:off+m])) {
				t.Fatalf("sameID(%q, %q) = true", a, buf[off:off+m])
			}
		}
	}
}
