package storage

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// The day tier holds the hour tier's rows summed into UTC days: written by
// flushes, summed by merges, replayed after a crash, and derived from the
// hour parts of a store that has none (one from before the day tier).
func TestDayTierIsTheHoursSummedIntoDays(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	opts.MergeFanIn = 4 // the six flushes below merge
	s := openTestStore(t, dir, opts)
	id, err := s.MetricID("count_car")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// The four whole UTC days before today: each flush's day part then
	// holds the same 120 rows (30 cells × 4 days), all of one size class.
	// From a time of day, the partial first day gave parts on both sides
	// of a class boundary (128 rows) late in the UTC day, which no merge
	// of four took.
	now := TierDay.Truncate(time.Now().Unix() / 60)
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

// The hour tier cuts its blocks at two-week periods, so that a day out of
// months of a cell's hours decodes a few weeks of them, not all, after a
// flush and after a merge, and answers the same sums. (Uncut, the day
// would read the whole part: a block of 8,192 rows holds two cells'
// four months.)
func TestHourBlocksAreCutAtTwoWeeks(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, err := s.MetricID("swipes_in")
	if err != nil {
		t.Fatal(err)
	}
	const cells, days = 8, 120
	start := floorDiv(time.Now().Unix()/60-(days+5)*1440, hourBlockPeriod) * hourBlockPeriod
	want := map[int64]int64{} // per hour
	for half := range 2 {
		var ds []Delta
		for c := range cells {
			for h := range days * 24 {
				if h%2 != half {
					continue
				}
				m := start + int64(h)*60
				ds = append(ds, Delta{Key: Key{Metric: id, Cell: 0x89309a000000000 + uint64(c)<<12, Minute: m + int64(c)}, Value: int64(1 + (h+c)%7)})
				want[m] += int64(1 + (h+c)%7)
			}
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	from := start + 60*1440 + 300
	for _, when := range []string{"after two flushes", "after their merge"} {
		read := s.RowsToRead(TierHour, "swipes_in", all, from, from+1440)
		// A cell's block of the day's period, and the block before it,
		// which may hold the last days of the cell before and its first.
		if parts := s.Stats().Parts[TierHour]; read > int64(parts)*cells*3*14*24 || read*3 > int64(cells*days*24) {
			t.Errorf("%s: a day of %d cells' hours in %d parts reads %d rows; want at most three periods a cell and part, %d", when, cells, parts, read, parts*cells*3*14*24)
		}
		var sum int64
		if err := s.Scan(TierHour, "swipes_in", all, from-300, from+1140, func(_ uint64, _, v int64) { sum += v }); err != nil {
			t.Fatal(err)
		}
		var wantSum int64
		for m := from - 300; m < from+1140; m += 60 {
			wantSum += want[m]
		}
		if sum != wantSum {
			t.Errorf("%s: the day sums %d, want %d", when, sum, wantSum)
		}
		if err := s.mergeWith(TierHour, slices.Clone(s.parts[TierHour]), zstdFlush, false); err != nil {
			t.Fatal(err)
		}
	}
}

// SumSteps over many ranges, read in two halves at once, sums what a scan
// of the same ranges finds.
func TestSumStepsOfManyRangesIsTheScansSum(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, err := s.MetricID("swipes_in")
	if err != nil {
		t.Fatal(err)
	}
	m0 := time.Now().Unix()/60 - 600
	var ds []Delta
	var ranges []vocab.CellRange
	for c := range 40 {
		cell := 0x89309a000000000 + uint64(c)<<12
		ranges = append(ranges, vocab.CellRange{Lo: cell, Hi: cell})
		for m := range 500 {
			ds = append(ds, Delta{Key: Key{Metric: id, Cell: cell, Minute: m0 + int64(m)}, Value: int64(1 + (c*m)%5)})
		}
	}
	if err := s.Add(ds[:len(ds)/2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ds[len(ds)/2:]); err != nil { // in the memtable
		t.Fatal(err)
	}
	sums := make([]int64, 50)
	if err := s.SumSteps(TierMinute, "swipes_in", ranges, m0, m0+500, 10, sums); err != nil {
		t.Fatal(err)
	}
	want := make([]int64, 50)
	if err := s.Scan(TierMinute, "swipes_in", ranges, m0, m0+500, func(_ uint64, m, v int64) { want[(m-m0)/10] += v }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sums, want) || want[0] == 0 {
		t.Fatalf("sums %v, want %v", sums, want)
	}
}

// TestTruncateByWidth: each tier's Truncate, which divides by a constant
// of its own, agrees with a floor to the tier's width, minutes before
// 1970 (negative) included.
func TestTruncateByWidth(t *testing.T) {
	for tr := range numTiers {
		w := tr.Width()
		for _, m := range []int64{0, 1, 59, 60, 61, 1439, 1440, 1441, -1, -59, -60, -61, -1440, -1441, 27000000, 27000059, math.MaxInt32, math.MinInt64 + 1440, math.MaxInt64} {
			want := m - ((m%w)+w)%w
			if got := tr.Truncate(m); got != want {
				t.Errorf("%s.Truncate(%d) = %d, want %d", tr, m, got, want)
			}
		}
	}
}
