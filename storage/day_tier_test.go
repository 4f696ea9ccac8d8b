package storage

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The day tier holds the hour tier's rows summed into UTC days: written by
// flushes, summed by merges, replayed after a crash, and derived from the
// hour parts of a store that has none (one from before the day tier).
func TestDayTierIsTheHoursSummedIntoDays(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	s := openTestStore(t, dir, opts)
	id, err := s.MetricID("count_car")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now().Unix() / 60
	wantDay := map[Key]int64{}
	var wantTotal int64
	add := func(n int) {
		ds := make([]Delta, n)
		for i := range ds {
			k := Key{Metric: id, Cell: 0x89309a000000000 + uint64(rng.IntN(30))<<12, Minute: now - 4*1440 + int64(rng.IntN(4*1440))}
			ds[i] = Delta{Key: k, Value: int64(1 + rng.IntN(9))}
			k.Minute = TierDay.Truncate(k.Minute)
			wantDay[k] += ds[i].Value
			wantTotal += ds[i].Value
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		total, got := sumAll(t, s, TierDay, "count_car")
		if total != wantTotal || len(got) != len(wantDay) {
			t.Fatalf("%s: day tier total %d in %d rows, want %d in %d", when, total, len(got), wantTotal, len(wantDay))
		}
		for k, v := range wantDay {
			if got[k] != v {
				t.Fatalf("%s: day %v = %d, want %d", when, k, got[k], v)
			}
		}
		if htotal, _ := sumAll(t, s, TierHour, "count_car"); htotal != wantTotal {
			t.Fatalf("%s: hour tier total %d, want %d", when, htotal, wantTotal)
		}
	}
	for batch := range 12 {
		add(400)
		if batch%2 == 1 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("in parts and memtable")
	s.maintain()
	if n := s.Stats().Parts[TierDay]; n == 0 || n > 3 {
		t.Fatalf("%d day parts after the merges, want 1 to 3", n)
	}
	check("after merges")
	add(300)
	crash(s)
	s = openTestStore(t, dir, opts)
	check("after a crash and replay")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A store from before the day tier: no day part, and a manifest that
	// names none.
	os.RemoveAll(filepath.Join(dir, "parts", "day"))
	os.Remove(filepath.Join(dir, "parts", "manifest.json"))
	s = openTestStore(t, dir, opts)
	defer s.Close()
	if st := s.Stats(); st.Parts[TierDay] != 1 || st.PartsMissing != 0 {
		t.Fatalf("after opening a store without a day tier: %d day parts, %d missing; want one derived from the hour parts and none missing", st.Parts[TierDay], st.PartsMissing)
	}
	check("derived from the hour parts")
}
