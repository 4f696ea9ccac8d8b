package storage

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

func quietOptions() Options {
	return Options{FlushInterval: time.Hour, Logf: func(string, ...any) {}}
}

func openTestStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// sumAll sums every bucket of metric in tier t over all cells and time.
func sumAll(t *testing.T, s *Store, tier Tier, metric string) (total int64, perKey map[Key]int64) {
	t.Helper()
	perKey = map[Key]int64{}
	id, _ := s.LookupMetric(metric)
	err := s.Scan(tier, metric, []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}, -1<<62, 1<<62, func(cell uint64, minute, v int64) {
		total += v
		perKey[Key{Metric: id, Cell: cell, Minute: minute}] += v
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return total, perKey
}

func randomDeltas(rng *rand.Rand, metric uint32, n int) []Delta {
	ds := make([]Delta, n)
	for i := range ds {
		ds[i] = Delta{Key: Key{Metric: metric, Cell: 0x89309a000000000 + uint64(rng.IntN(50))<<12, Minute: time.Now().Unix()/60 - 300 + int64(rng.IntN(600))}, Value: int64(rng.IntN(20))}
	}
	return ds
}

func TestStoreAddScanAcrossFlushesMergesAndRestart(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	s := openTestStore(t, dir, opts)
	id, err := s.MetricID("swipes_in")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[Key]int64{}
	wantHour := map[Key]int64{}
	var wantTotal int64
	for batch := range 40 {
		ds := randomDeltas(rng, id, 500)
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			want[d.Key] += d.Value
			hk := d.Key
			hk.Minute = TierHour.Truncate(hk.Minute)
			wantHour[hk] += d.Value
			wantTotal += d.Value
		}
		if batch%3 == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if batch%10 == 9 {
			s.maintain()
		}
	}
	check := func(s *Store, when string) {
		total, got := sumAll(t, s, TierMinute, "swipes_in")
		if total != wantTotal {
			t.Fatalf("%s: minute total %d, want %d", when, total, wantTotal)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: bucket %v = %d, want %d", when, k, got[k], v)
			}
		}
		htotal, hgot := sumAll(t, s, TierHour, "swipes_in")
		if htotal != wantTotal || len(hgot) != len(wantHour) {
			t.Fatalf("%s: hour total %d in %d buckets, want %d in %d", when, htotal, len(hgot), wantTotal, len(wantHour))
		}
	}
	check(s, "before restart")
	st := s.Stats()
	if st.Parts[TierMinute] == 0 || st.Parts[TierMinute] > 8 {
		t.Fatalf("minute parts = %d; want 1..8 after merges", st.Parts[TierMinute])
	}
	// Add more without a flush: they live only in the WAL when we close
	// without flushing below.
	ds := randomDeltas(rng, id, 300)
	if err := s.Add(ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		want[d.Key] += d.Value
		hk := d.Key
		hk.Minute = TierHour.Truncate(hk.Minute)
		wantHour[hk] += d.Value
		wantTotal += d.Value
	}
	crash(s)

	s2 := openTestStore(t, dir, opts)
	defer s2.Close()
	check(s2, "after crash and replay")
	if err := s2.Flush(); err != nil {
		t.Fatal(err)
	}
	check(s2, "after flush of replayed rows")
}

func TestStoreDamagedPartIsSetAside(t *testing.T) {
	dir := t.TempDir()
	logs := make(chan string, 16)
	opts := quietOptions()
	opts.Logf = func(f string, a ...any) {
		select {
		case logs <- f:
		default:
		}
	}
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("m")
	minute := time.Now().Unix() / 60
	if err := s.Add([]Delta{{Key{Metric: id, Cell: 100, Minute: minute}, 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add([]Delta{{Key{Metric: id, Cell: 200, Minute: minute}, 11}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "parts", "minute", "*", "index.bin"))
	if len(parts) != 2 {
		t.Fatalf("want 2 minute parts, have %v", parts)
	}
	victim := parts[0]
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, dir, opts)
	defer s2.Close()
	total, _ := sumAll(t, s2, TierMinute, "m")
	if total != 11 {
		t.Fatalf("total after setting the damaged part aside = %d, want 11 (the other part)", total)
	}
	st := s2.Stats()
	if st.Quarantined != 1 {
		t.Fatalf("quarantined = %d, want 1", st.Quarantined)
	}
	if want := victim; !strings.Contains(st.LastError, want) {
		t.Fatalf("last error %q does not name %s", st.LastError, want)
	}
}

func TestMergesKeepPartCountBounded(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, _ := s.MetricID("count_car")
	rng := rand.New(rand.NewPCG(3, 4))
	var want int64
	maxParts := 0
	const flushes = 80
	for range flushes {
		ds := randomDeltas(rng, id, 200)
		for _, d := range ds {
			want += d.Value
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		s.maintain()
		maxParts = max(maxParts, s.Stats().Parts[TierMinute])
	}
	// Size-tiered merging with fan-in F keeps at most F-1 parts per size
	// class; a merge's part holds F flushes, a class of the next merge
	// F², so 80 flushes make parts of at most three sizes.
	if f := s.opts.MergeFanIn; maxParts > 3*(f-1) {
		t.Fatalf("%d flushes left up to %d minute parts; merges of %d should keep it at %d or fewer", flushes, maxParts, f, 3*(f-1))
	}
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != want {
		t.Fatalf("after merges total %d, want %d", total, want)
	}
	t.Logf("%d flushes: at most %d minute parts", flushes, maxParts)
}

func TestSubKeysAndMaxMetrics(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	trips, _ := s.MetricID("trips")
	regs, _ := s.MetricID(vocab.DistinctCards)
	now := time.Now().Unix() / 60
	adds := [][]Delta{
		{{Key{Metric: trips, Cell: 10, Sub: 20, Minute: now}, 1}, {Key{Metric: trips, Cell: 10, Sub: 30, Minute: now}, 2}, {Key{Metric: regs, Cell: 10, Sub: 7, Minute: now}, 3}},
		{{Key{Metric: trips, Cell: 10, Sub: 20, Minute: now}, 4}, {Key{Metric: regs, Cell: 10, Sub: 7, Minute: now}, 2}, {Key{Metric: regs, Cell: 10, Sub: 8, Minute: now}, 5}},
		{{Key{Metric: regs, Cell: 10, Sub: 7, Minute: now + 1}, 9}},
	}
	check := func(when string, want20, want30 int64) {
		got := map[[2]uint64]int64{}
		err := s.ScanSub(TierMinute, "trips", []vocab.CellRange{{Lo: 0, Hi: 100}}, now, now+1, func(cell, sub uint64, minute, v int64) {
			got[[2]uint64{cell, sub}] += v
		})
		if err != nil || got[[2]uint64{10, 20}] != want20 || got[[2]uint64{10, 30}] != want30 {
			t.Fatalf("%s: trips by destination %v (%v); want 10→20: %d, 10→30: %d", when, got, err, want20, want30)
		}
		reg := map[uint64]int64{}
		s.ScanSub(TierHour, vocab.DistinctCards, []vocab.CellRange{{Lo: 0, Hi: 100}}, TierHour.Truncate(now), now+60, func(cell, sub uint64, minute, v int64) {
			reg[sub] = max(reg[sub], v)
		})
		if reg[7] != 9 || reg[8] != 5 {
			t.Fatalf("%s: hourly registers %v; want 7: 9 (max, not sum), 8: 5", when, reg)
		}
		reg = map[uint64]int64{}
		s.ScanSub(TierMinute, vocab.DistinctCards, []vocab.CellRange{{Lo: 0, Hi: 100}}, now, now+1, func(cell, sub uint64, minute, v int64) {
			reg[sub] = max(reg[sub], v)
		})
		if reg[7] != 3 {
			t.Fatalf("%s: register 7 in the first minute = %d, want max(3, 2) = 3", when, reg[7])
		}
	}
	for _, ds := range adds {
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	check("in parts", 5, 2)
	s.maintain()
	for range 3 {
		s.Add(adds[0])
		s.Flush()
	}
	// Registers keep their maxima through merges; trips add up.
	s.maintain()
	check("after merges", 8, 8)
	s.Close()
	s = openTestStore(t, dir, quietOptions())
	defer s.Close()
	check("after reopening", 8, 8)
}

func TestRetentionDropsWholePartsPerTier(t *testing.T) {
	now := time.Now()
	clock := now
	opts := quietOptions()
	opts.Now = func() time.Time { return clock }
	opts.Retention = [numTiers]time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("m")
	old := now.Add(-3*24*time.Hour).Unix() / 60
	recent := now.Unix() / 60
	for _, m := range []int64{old, recent} {
		if err := s.Add([]Delta{{Key{Metric: id, Cell: 1, Minute: m}, 5}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	s.applyRetention()
	if m, _ := sumAll(t, s, TierMinute, "m"); m != 5 {
		t.Errorf("minute tier after retention of 1 day: %d, want only the recent 5", m)
	}
	if h, _ := sumAll(t, s, TierHour, "m"); h != 10 {
		t.Errorf("hour tier (retention 7 days): %d, want both, 10", h)
	}
	clock = now.Add(8 * 24 * time.Hour)
	s.applyRetention()
	if h, _ := sumAll(t, s, TierHour, "m"); h != 0 {
		t.Errorf("hour tier 8 days later: %d, want 0", h)
	}
	if st := s.Stats(); st.Parts[TierMinute]+st.Parts[TierHour] != 0 {
		t.Errorf("parts left past every retention: %+v", st.Parts)
	}
}

// TestSumsSaturate adds to one bucket past the largest int64, in a batch,
// across batches in the memtable, and across parts through a flush and a
// merge: the sum stops at the largest value (the smallest, going down)
// instead of wrapping to the other sign.
func TestSumsSaturate(t *testing.T) {
	const big = math.MaxInt64 - 10
	opts := quietOptions()
	opts.MergeFanIn = 2
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix() / 60
	up := []Delta{{Key{Metric: id, Cell: 1, Minute: minute}, big}, {Key{Metric: id, Cell: 1, Minute: minute}, big}}
	down := []Delta{{Key{Metric: id, Cell: 2, Minute: minute}, -big}, {Key{Metric: id, Cell: 2, Minute: minute}, -big}}
	check := func(when string) {
		t.Helper()
		_, got := sumAll(t, s, TierMinute, "count_car")
		if got[Key{Metric: id, Cell: 1, Minute: minute}] != math.MaxInt64 || got[Key{Metric: id, Cell: 2, Minute: minute}] != math.MinInt64 {
			t.Fatalf("%s: buckets %v; want the largest and the smallest int64", when, got)
		}
	}
	for range 2 {
		if err := s.Add(append(up, down...)); err != nil {
			t.Fatal(err)
		}
	}
	check("in the memtable")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(append(up, down...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Two parts hold the bucket: a query's sum saturates too.
	for cell, want := range map[uint64]int64{1: math.MaxInt64, 2: math.MinInt64} {
		sums := make([]int64, 1)
		if err := s.SumSteps(TierMinute, "count_car", []vocab.CellRange{{Lo: cell, Hi: cell}}, minute, minute+1, 1, sums); err != nil || sums[0] != want {
			t.Fatalf("SumSteps of cell %d over two parts: %d (%v), want %d", cell, sums[0], err, want)
		}
	}
	if err := s.mergeTier(TierMinute); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Parts[TierMinute] != 1 {
		t.Fatalf("%d minute parts after the merge, want 1", st.Parts[TierMinute])
	}
	check("after a merge")
}

// commitBatch submits b to s, waits until it is durable and releases it,
// failing the test on an error.
func commitBatch(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	p, err := s.Submit(b, nil)
	if err == nil {
		err = p.Wait()
	}
	b.Release()
	if err != nil {
		t.Fatal(err)
	}
}
