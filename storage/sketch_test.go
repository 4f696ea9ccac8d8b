package storage

import (
	"maps"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// sketchAdds are additions to the registers of two cells over three
// minutes, registers repeated with smaller and larger values, in a
// shuffled order; want is each (cell, register, minute) bucket's maximum.
func sketchAdds(regs uint32, m0 int64) (adds []Delta, want map[Key]int64) {
	rng := rand.New(rand.NewPCG(3, 4))
	want = map[Key]int64{}
	for range 3000 {
		k := Key{Metric: regs, Cell: 10 + uint64(rng.IntN(2)), Sub: uint64(rng.IntN(vocab.HLLRegisters)), Minute: m0 + int64(rng.IntN(3))}
		v := 1 + int64(rng.IntN(50))
		adds = append(adds, Delta{k, v})
		want[k] = max(want[k], v)
	}
	return adds, want
}

// registersIn reads the sketch's buckets of tier t as the maximum of each
// (cell, register, minute).
func registersIn(t *testing.T, s *Store, tier Tier, regs uint32) map[Key]int64 {
	t.Helper()
	got := map[Key]int64{}
	err := s.ScanSub(tier, vocab.DistinctCards, []vocab.CellRange{{Lo: 0, Hi: 100}}, 0, 1<<40, func(cell, sub uint64, minute, v int64) {
		k := Key{Metric: regs, Cell: cell, Sub: sub, Minute: minute}
		got[k] = max(got[k], v)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func hourly(want map[Key]int64) map[Key]int64 {
	h := map[Key]int64{}
	for k, v := range want {
		k.Minute = TierHour.Truncate(k.Minute)
		h[k] = max(h[k], v)
	}
	return h
}

// TestSketchRegistersShareASeries adds thousands of register updates to
// two cells: a batch holds them in one series per cell, and the registers
// read back exactly (each bucket's maximum) from the memtable, the live
// deltas, a WAL replay after a crash, the parts of both tiers, and a
// replay of the per-register series records flowd wrote before.
func TestSketchRegistersShareASeries(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	regs, _ := s.MetricID(vocab.DistinctCards)
	m0 := time.Now().Unix()/60 - 10
	adds, want := sketchAdds(regs, m0)

	b := NewBatch()
	for _, d := range adds {
		b.Add(d.Metric, true, d.Cell, d.Sub, d.Minute, d.Value)
	}
	if n := len(b.t.series); n != 2 {
		t.Fatalf("the batch holds %d series for two cells' registers, want 2", n)
	}
	deltas := map[Key]int64{}
	for _, d := range b.AppendDeltas(nil) {
		deltas[d.Key] = max(deltas[d.Key], d.Value)
	}
	if !maps.Equal(deltas, want) {
		t.Fatalf("live deltas: %d buckets, want %d", len(deltas), len(want))
	}
	commitBatch(t, s, b)
	check := func(when string, s *Store) {
		t.Helper()
		if got := registersIn(t, s, TierMinute, regs); !maps.Equal(got, want) {
			t.Fatalf("%s: %d minute buckets, want %d", when, len(got), len(want))
		}
		if got, wantH := registersIn(t, s, TierHour, regs), hourly(want); !maps.Equal(got, wantH) {
			t.Fatalf("%s: %d hour buckets, want %d", when, len(got), len(wantH))
		}
	}
	check("in the memtable", s)
	crash(s)
	s = openTestStore(t, dir, quietOptions())
	check("after a crash and WAL replay", s)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check("in parts", s)
	crash(s)

	// A record of flowd before packed registers: a series per register.
	var old seriesTable
	for _, d := range adds {
		k := SeriesKey{Metric: d.Metric, Cell: d.Cell + 20, Sub: d.Sub}
		old.add(old.lookup(k, k.hash(), true, false), d.Minute, d.Value)
	}
	seg := append(walSegmentHeader[:], appendFrame(nil, appendSeriesRecord(nil, &old, nil))...)
	s = reopenWithSegment(t, dir, seg)
	defer s.Close()
	shifted := maps.Clone(want)
	for k, v := range want {
		k.Cell += 20
		shifted[k] = v
	}
	want = shifted
	check("after replaying per-register records", s)
}

// TestSketchValueOutOfRangeFailsTheBatch: a register value that does not
// fit its 8 bits is refused at Submit rather than stored wrong.
func TestSketchValueOutOfRangeFailsTheBatch(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	regs, _ := s.MetricID(vocab.DistinctCards)
	b := NewBatch()
	defer b.Release()
	b.Add(regs, true, 10, 5, time.Now().Unix()/60, 256)
	if _, err := s.Submit(b, nil); err == nil {
		t.Fatal("a register value of 256 was accepted")
	}
}

// TestEmptySeriesFlushes: a series created without points (a count of
// zero) is flushed without a row and without failing.
func TestEmptySeriesFlushes(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, _ := s.MetricID("count_car")
	b := NewBatch()
	b.Series(id, 10, 0)
	b.Add(id, false, 11, 0, time.Now().Unix()/60, 4)
	commitBatch(t, s, b)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if total, per := sumAll(t, s, TierMinute, "count_car"); total != 4 || len(per) != 1 {
		t.Fatalf("after the flush: total %d in %d buckets, want 4 in 1", total, len(per))
	}
}

// TestSpreadRowsSurviveACrash: a reading spread over 30 minutes is one
// point in the WAL; replayed after a crash it still reads as its minutes'
// shares in the minute tier and as one bucket in the hour tier, from a
// scan that starts inside it.
func TestSpreadRowsSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	id, _ := s.MetricID("count_car")
	hour := TierHour.Truncate(time.Now().Unix()/60 - 120)
	b := NewBatch()
	b.AddRun(b.SeriesSpread(id, 10), hour+15, 30, 90)
	b.Add(id, false, 10, 0, hour+50, 4) // a plain row
	commitBatch(t, s, b)
	crash(s)
	s = openTestStore(t, dir, quietOptions())
	defer s.Close()
	for _, when := range []string{"replayed", "flushed"} {
		got := map[int64]int64{}
		err := s.Scan(TierMinute, "count_car", []vocab.CellRange{{Lo: 0, Hi: 100}}, hour+20, hour+60, func(_ uint64, m, v int64) { got[m-hour] += v })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 26 || got[20] != 3 || got[44] != 3 || got[45] != 0 || got[50] != 4 {
			t.Fatalf("%s: minutes from 20 of the hour: %v; want 3 in each of 20-44 and 4 at 50", when, got)
		}
		if total, _ := sumAll(t, s, TierHour, "count_car"); total != 94 {
			t.Fatalf("%s: hour tier %d, want 94", when, total)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpreadRowPairsSurviveCrashes: runs of readings with their speed sums
// as rows (AddRunPairRecent: two of one minute and length that combine,
// one of another length from the same minute, one whose speed sum passes
// 32 bits) read the same, minute by minute and hour by hour, from the
// memtable, after a crash (the WAL's record of rows replayed), from parts,
// and after a crash between the parts of a flush's tiers (the hour and
// day tiers replayed alone).
func TestSpreadRowPairsSurviveCrashes(t *testing.T) {
	dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "store")
	opts := quietOptions()
	opts.Failpoint, _ = snapshotAt(t, FailpointFlushPartInstalled, dir, crashed)
	s := openTestStore(t, dir, opts)
	count, _ := s.MetricID("count_car")
	speed, _ := s.MetricID("speed_car")
	hour := TierHour.Truncate(time.Now().Unix()/60 - 180)
	want := map[string]map[int64]int64{"count_car": {}, "speed_car": {}}
	b := NewBatch()
	for _, r := range []struct{ first, n, v, v2 int64 }{
		{15, 30, 90, 300},
		{15, 30, 60, 30},
		{15, 20, 40, 1000},
		{40, 5, 10, 5 << 32},
	} {
		b.AddRunPairRecent(count, speed, 10, hour+r.first, r.n, r.v, r.v2)
		for i := range r.n {
			want["count_car"][r.first+i] += SpreadShare(r.v, r.n, i)
			want["speed_car"][r.first+i] += SpreadShare(r.v2, r.n, i)
		}
	}
	if len(b.t.rows) != 3 {
		t.Fatalf("%d rows, want 3 (two runs combined)", len(b.t.rows))
	}
	commitBatch(t, s, b)
	check := func(s *Store, when string) {
		t.Helper()
		for metric, w := range want {
			got := map[int64]int64{}
			if err := s.Scan(TierMinute, metric, []vocab.CellRange{{Lo: 0, Hi: 100}}, hour, hour+60, func(_ uint64, m, v int64) { got[m-hour] += v }); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, w) {
				t.Fatalf("%s: %s by minute %v, want %v", when, metric, got, w)
			}
			total := int64(0)
			for _, v := range w {
				total += v
			}
			for _, tier := range []Tier{TierHour, TierDay} {
				if got, _ := sumAll(t, s, tier, metric); got != total {
					t.Fatalf("%s: %s tier %s %d, want %d", when, metric, tier, got, total)
				}
			}
		}
	}
	check(s, "in the memtable")
	crash(s)
	s = openTestStore(t, dir, opts)
	check(s, "replayed")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check(s, "flushed")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, crashed, quietOptions())
	defer s.Close()
	if st := s.Stats(); st.Parts[TierMinute] != 1 || st.MemtableRows[TierHour] == 0 {
		t.Fatalf("the crash between tiers: parts %v, memtable rows %v; want a minute part and hour rows in memory", st.Parts, st.MemtableRows)
	}
	check(s, "after a crash between the tiers' parts")
}
