package storage

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// snapshotAt returns a Failpoint that copies the store directory the first
// time name is reached, as a kill at that moment would leave it: every
// write before the failpoint is done, nothing after it has begun.
func snapshotAt(t *testing.T, name, src, dst string) (failpoint func(string), taken *atomic.Bool) {
	var once sync.Once
	taken = new(atomic.Bool)
	return func(n string) {
		if n == name {
			once.Do(func() {
				copyDir(t, src, dst)
				taken.Store(true)
			})
		}
	}, taken
}

// addParts flushes n parts of rows rows of metric each: cell c+1 gets
// 1+i%7 at minute m0+i for row i of part c.
func addParts(t *testing.T, s *Store, metric uint32, n, rows int, m0 int64) (total int64) {
	t.Helper()
	for c := range n {
		ds := make([]Delta, rows)
		for i := range ds {
			ds[i] = Delta{Key{Metric: metric, Cell: uint64(c + 1), Minute: m0 + int64(i)}, int64(1 + i%7)}
			total += ds[i].Value
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return total
}

// TestMergeCrashAfterRename kills the store between a merge's rename and
// the removal of its sources, and reopens it: the sources are removed on
// start, and nothing is counted twice.
func TestMergeCrashAfterRename(t *testing.T) {
	dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "store")
	opts := quietOptions()
	opts.MergeFanIn = 2
	failpoint, taken := snapshotAt(t, FailpointMergeRenamed, dir, crashed)
	opts.Failpoint = failpoint
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	want := addParts(t, s, id, 2, 100, time.Now().Unix()/60-200)
	if err := s.mergeTier(TierMinute); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !taken.Load() {
		t.Fatal("no merge reached its rename")
	}
	parts, _ := filepath.Glob(filepath.Join(crashed, "parts", "minute", "0*"))
	if len(parts) != 3 {
		t.Fatalf("the crash left %d minute parts, want the merged one and its 2 sources", len(parts))
	}
	s = openTestStore(t, crashed, quietOptions())
	defer s.Close()
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != want {
		t.Fatalf("after the crash: minute total %d, want %d", total, want)
	}
	if st := s.Stats(); st.Parts[TierMinute] != 1 {
		t.Fatalf("after the crash: %d minute parts, want the merged one", st.Parts[TierMinute])
	}
}

// TestMergeOfAPartSetAside finds a source of a running merge damaged (a
// query reads a block that went bad after the merge read it) and sets it
// aside: the merge still installs its part, releases only what it holds,
// and every row is counted once.
func TestMergeOfAPartSetAside(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	opts.MergeFanIn = 2
	var s *Store
	var victim string
	opts.Failpoint = func(name string) {
		if name != FailpointMergeRenamed || victim != "" {
			return
		}
		s.mu.RLock()
		victim = s.parts[TierMinute][0].dir
		s.mu.RUnlock()
		path := filepath.Join(victim, "value.bin")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Error(err)
		}
		sumAll(t, s, TierMinute, "count_car") // finds it and sets it aside
	}
	s = openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	want := addParts(t, s, id, 2, 100, time.Now().Unix()/60-200)
	if err := s.mergeTier(TierMinute); err != nil {
		t.Fatal(err)
	}
	if victim == "" {
		t.Fatal("no merge reached its rename")
	}
	if st := s.Stats(); st.Quarantined != 1 || st.Parts[TierMinute] != 1 {
		t.Fatalf("after the merge: %d parts quarantined, %d minute parts; want 1 and 1 (the merged one)", st.Quarantined, st.Parts[TierMinute])
	}
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != want {
		t.Fatalf("after the merge: minute total %d, want %d", total, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, quietOptions())
	defer s.Close()
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != want {
		t.Fatalf("after reopening: minute total %d, want %d", total, want)
	}
}

// TestMergeLogsRowsDroppedForAge lets rows age past the minute retention
// while in parts: the merge that drops them says how many.
func TestMergeLogsRowsDroppedForAge(t *testing.T) {
	now := time.Now()
	clock := now
	logs := &logRecorder{}
	opts := quietOptions()
	opts.Logf = logs.logf
	opts.MergeFanIn = 2
	opts.Now = func() time.Time { return clock }
	opts.Retention = [numTiers]time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	addParts(t, s, id, 1, 30, now.Add(-20*time.Hour).Unix()/60)
	addParts(t, s, id, 1, 30, now.Unix()/60)
	clock = now.Add(10 * time.Hour) // the first part's rows are 30 hours old
	if err := s.mergeTier(TierMinute); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Parts[TierMinute] != 1 || st.PartRows[TierMinute] != 30 {
		t.Fatalf("after the merge: %d minute parts of %d rows, want 1 of 30", st.Parts[TierMinute], st.PartRows[TierMinute])
	}
	if logs.find("merge", "dropped 30 rows", "retention") == "" {
		t.Fatalf("the merge did not say it dropped 30 rows for age:\n%s", logs)
	}
}

// TestIdleCompaction: parts of different sizes that size-tiered merges
// leave apart become one part once ingest has been idle, at the strongest
// compression, holding the same sums.
func TestIdleCompaction(t *testing.T) {
	now := time.Unix(1700000000, 0)
	opts := quietOptions()
	opts.MergeFanIn = 100 // no size-tiered merge
	opts.Now = func() time.Time { return now }
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	var total int64
	for i := range 5 {
		var ds []Delta
		for c := range 100 * (i + 1) {
			ds = append(ds, Delta{Key{Metric: id, Cell: uint64(c), Minute: now.Unix()/60 - 10 + int64(i)}, int64(c%7 + 1)})
			total += int64(c%7 + 1)
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Stats().Parts[TierMinute]; n != 5 {
		t.Fatalf("%d minute parts before compaction, want 5", n)
	}
	s.maintain() // just after ingest: not idle, nothing compacted
	if n := s.Stats().Parts[TierMinute]; n != 5 {
		t.Fatalf("%d minute parts right after ingest, want 5", n)
	}
	now = now.Add(idleAfter)
	s.maintain()
	st := s.Stats()
	if st.Parts[TierMinute] != 1 || st.Parts[TierHour] != 1 {
		t.Fatalf("parts after an idle compaction: %d minute, %d hour; want 1 and 1", st.Parts[TierMinute], st.Parts[TierHour])
	}
	for _, tier := range []Tier{TierMinute, TierHour} {
		var got int64
		if err := s.Scan(tier, "count_car", []vocab.CellRange{{Lo: 0, Hi: 1000}}, 0, 1<<31, func(_ uint64, _, v int64) { got += v }); err != nil {
			t.Fatal(err)
		}
		if got != total {
			t.Errorf("%s tier holds %d after compaction, want %d", tier, got, total)
		}
	}
}

// TestMergeRowsMatchesAMap merges random parts whose keys overlap in
// every way (runs of one part, keys shared by two or all, rows past the
// cutoff) and checks the result against sums in a map: every key once, in
// order, summed (the maximum for a max metric).
func TestMergeRowsMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	isMax := func(m uint32) bool { return m == 3 }
	runs := 0
	for trial := range 20 {
		dir := t.TempDir()
		nparts := 1 + rng.IntN(5)
		want := map[Key]int64{}
		var its []*partIterator
		for p := range nparts {
			rows := map[Key]int64{}
			for range rng.IntN(3000) {
				minute := int64(1000 + rng.IntN(200))
				if trial%2 == 1 { // like flushes: each part its own minutes, but for some overlap
					minute = int64(1000 + p*40 + rng.IntN(50))
				}
				k := Key{Metric: uint32(1 + rng.IntN(3)), Cell: uint64(rng.IntN(20)), Minute: minute}
				rows[k] = int64(rng.IntN(100))
			}
			keys := slices.SortedFunc(maps.Keys(rows), func(a, b Key) int {
				if a.Less(b) {
					return -1
				}
				if b.Less(a) {
					return 1
				}
				return 0
			})
			w, err := newPartWriter(filepath.Join(dir, fmt.Sprintf("tmp-%d", p)), TierMinute, zstdFlush)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if err := w.add(k, rows[k]); err != nil {
					t.Fatal(err)
				}
				if old, ok := want[k]; ok {
					want[k] = combine(isMax(k.Metric), old, rows[k])
				} else {
					want[k] = rows[k]
				}
			}
			if len(keys) == 0 {
				w.abort()
				continue
			}
			pt, err := w.finish(filepath.Join(dir, fmt.Sprintf("p-%d", p)))
			if err != nil {
				t.Fatal(err)
			}
			defer pt.closeFiles()
			its = append(its, &partIterator{p: pt})
		}
		const cutoff = 1010
		wantExpired := 0
		for k := range want {
			if k.Minute < cutoff {
				wantExpired++
				delete(want, k)
			}
		}
		for _, bulk := range []bool{false, true} {
			for _, it := range its {
				*it = partIterator{p: it.p}
			}
			var got []Key
			check := func(k Key, v int64) error {
				if len(got) > 0 && !got[len(got)-1].Less(k) {
					return fmt.Errorf("%v after %v", k, got[len(got)-1])
				}
				got = append(got, k)
				if w, ok := want[k]; !ok || w != v {
					return fmt.Errorf("%v = %d, want %d (present %v)", k, v, w, ok)
				}
				return nil
			}
			var addRows func(b *block, i, j int) error
			if bulk {
				addRows = func(b *block, i, j int) error {
					runs++
					for x := i; x < j; x++ {
						if err := check(b.key(x), b.values[x]); err != nil {
							return err
						}
					}
					return nil
				}
			}
			expired, err := mergeRows(its, cutoff, isMax, check, addRows)
			if err != nil {
				t.Fatalf("trial %d (bulk %v): %v", trial, bulk, err)
			}
			if len(got) != len(want) || expired != wantExpired {
				t.Fatalf("trial %d (bulk %v): %d keys and %d expired, want %d and %d", trial, bulk, len(got), expired, len(want), wantExpired)
			}
		}
	}
	if runs < 100 {
		t.Fatalf("%d runs of rows were copied at once; the test should make more", runs)
	}
}

// TestIdleCompactionRewritesALonePartOnce: a tier the ordinary merges
// (or a single flush) left as one part is still rewritten once at the
// strongest compression when ingest goes idle — how many parts a tier
// holds then is a matter of timing — and not again at the next idle
// round; the part holds the same sums.
func TestIdleCompactionRewritesALonePartOnce(t *testing.T) {
	now := time.Unix(1700000000, 0)
	opts := quietOptions()
	opts.Now = func() time.Time { return now }
	dir := t.TempDir()
	s := openTestStore(t, dir, opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	var ds []Delta
	var total int64
	for c := range 3000 {
		ds = append(ds, Delta{Key{Metric: id, Cell: uint64(c), Minute: now.Unix()/60 - 10 + int64(c%5)}, int64(c%7 + 1)})
		total += int64(c%7 + 1)
	}
	if err := s.Add(ds); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	name := func() (string, bool) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if len(s.parts[TierMinute]) != 1 {
			t.Fatalf("%d minute parts; want 1", len(s.parts[TierMinute]))
		}
		p := s.parts[TierMinute][0]
		return p.name, p.meta.Compacted
	}
	first, compacted := name()
	if compacted {
		t.Fatal("a flushed part is marked compacted")
	}
	now = now.Add(idleAfter)
	s.maintain()
	second, compacted := name()
	if second == first || !compacted {
		t.Fatalf("after an idle round the minute part is %s (compacted %v); want a new, compacted part in place of %s", second, compacted, first)
	}
	now = now.Add(idleAfter)
	s.maintain()
	if third, _ := name(); third != second {
		t.Errorf("a second idle round rewrote the compacted part %s as %s", second, third)
	}
	var got int64
	if err := s.Scan(TierMinute, "count_car", []vocab.CellRange{{Lo: 0, Hi: 1 << 20}}, 0, 1<<31, func(_ uint64, _, v int64) { got += v }); err != nil {
		t.Fatal(err)
	}
	if got != total {
		t.Errorf("the minute tier holds %d after compaction, want %d", got, total)
	}
	// The mark survives a restart.
	s.Close()
	s = openTestStore(t, dir, opts)
	defer s.Close()
	if _, compacted := name(); !compacted {
		t.Error("the compacted mark was lost on reopening the store")
	}
}

// TestRunEnd holds runEnd's gallop and bisection to a scan: for every row
// of a block and keys below, between, at and past its rows, the first row
// after it whose key is not below the key.
func TestRunEnd(t *testing.T) {
	var blk block
	for m := range 200 {
		blk.append(Key{Metric: 1, Cell: uint64(m / 7), Minute: int64(m % 7 * 2)}, 1)
	}
	for i := range blk.len() {
		for c := -1; c <= 30; c++ {
			for minute := int64(-1); minute <= 14; minute++ {
				k := Key{Metric: 1, Cell: uint64(c), Minute: minute}
				if c < 0 {
					k = Key{Metric: 0}
				}
				want := i + 1
				for want < blk.len() && blk.key(want).Less(k) {
					want++
				}
				if got := runEnd(&blk, i, k); got != want {
					t.Fatalf("runEnd(row %d, %+v) = %d, want %d", i, k, got, want)
				}
			}
		}
	}
}

// TestPickMergeBoundsOneMerge checks which parts a merge takes: none while
// no size class holds fanIn parts, the smallest crowded class first, and
// of a class a burst crowded with forty parts at most sixteen at once (or
// fanIn, if larger), each merge reading a block of every part it takes.
func TestPickMergeBoundsOneMerge(t *testing.T) {
	parts := func(n int, rows uint64) []*part {
		ps := make([]*part, n)
		for i := range ps {
			ps[i] = &part{meta: partMeta{Rows: rows}}
		}
		return ps
	}
	if got := pickMerge(parts(7, 1000), 8); got != nil {
		t.Fatalf("7 parts of a class, fan-in 8: merged %d", len(got))
	}
	small, big := parts(8, 1000), parts(9, 1<<20)
	if got := pickMerge(append(slices.Clone(big), small...), 8); len(got) != 8 || got[0] != small[0] {
		t.Fatalf("two crowded classes: took %d parts, want the 8 small ones", len(got))
	}
	if got := pickMerge(parts(40, 1000), 8); len(got) != maxMergeParts {
		t.Fatalf("40 parts of a class, fan-in 8: took %d at once, want %d", len(got), maxMergeParts)
	}
	if got := pickMerge(parts(40, 1000), 20); len(got) != 20 {
		t.Fatalf("40 parts of a class, fan-in 20: took %d at once, want 20", len(got))
	}
}
