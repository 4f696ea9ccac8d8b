package storage

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestFlushKeepsOldRowsInTheHourTierOnly flushes rows of three ages with
// retentions of a day (minutes) and a week (hours): the recent row goes to
// both tiers, the three-day-old one to the hour tier only, the ten-day-old
// one to neither, and the flush says how many rows each tier left out.
func TestFlushKeepsOldRowsInTheHourTierOnly(t *testing.T) {
	now := time.Now()
	logs := &logRecorder{}
	opts := quietOptions()
	opts.Logf = logs.logf
	opts.Now = func() time.Time { return now }
	opts.Retention = [numTiers]time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	minute := func(ago time.Duration) int64 { return now.Add(-ago).Unix() / 60 }
	if got := s.RetentionCutoff(TierMinute); got != minute(24*time.Hour) {
		t.Fatalf("minute cutoff %d, want %d", got, minute(24*time.Hour))
	}
	if err := s.Add([]Delta{
		{Key{Metric: id, Cell: 1, Minute: minute(0)}, 1},
		{Key{Metric: id, Cell: 1, Minute: minute(3 * 24 * time.Hour)}, 10},
		{Key{Metric: id, Cell: 1, Minute: minute(10 * 24 * time.Hour)}, 100},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != 1 {
		t.Errorf("minute tier: %d, want only the recent row, 1", total)
	}
	if total, _ := sumAll(t, s, TierHour, "count_car"); total != 11 {
		t.Errorf("hour tier: %d, want the recent and the three-day-old rows, 11", total)
	}
	if logs.find("2 minute rows", "retention") == "" || logs.find("1 hour rows", "retention") == "" {
		t.Errorf("the flush did not say how many rows each tier left out:\n%s", logs)
	}
}

// TestFullMemtableIsFlushedNotItsSuccessor: every batch applied to a full
// memtable before its rotation asks for a flush, and such a request
// outlives the flush it asked for. Left to run, it flushed the next
// memtable while that was still filling: a small part for merges to write
// again (a third more flushes in a day of the bench at 1,000 events a
// request). A request finds a memtable that is not full and does nothing;
// a full one is flushed.
func TestFullMemtableIsFlushedNotItsSuccessor(t *testing.T) {
	opts := quietOptions()
	opts.MemtableBytes = 2 << 20 // above a page (64 KB) in each of the 16 shards
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix()/60 - 600
	add := func(series, minutes int) {
		var ds []Delta
		for i := range series {
			for m := range minutes {
				ds = append(ds, Delta{Key: Key{Metric: id, Cell: 0x89309a000000000 + uint64(i)<<12, Minute: minute + int64(m)}, Value: 1})
			}
		}
		if err := s.Add(ds); err != nil {
			t.Fatal(err)
		}
	}
	parts := func() int {
		s.flushMu.Lock() // no flush under way
		defer s.flushMu.Unlock()
		return s.Stats().Parts[TierMinute]
	}
	add(100, 10)
	s.requestFlush() // left over from the last memtable's flush
	time.Sleep(200 * time.Millisecond)
	if n := parts(); n != 0 {
		t.Fatalf("a request to flush wrote a memtable of 1,000 points, a fraction of its budget, as %d part(s)", n)
	}
	add(1000, 200) // over the budget: asks for a flush itself
	deadline := time.Now().Add(10 * time.Second)
	for parts() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a full memtable was not flushed: %d parts", parts())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMemtableFilledDuringMergesIsFlushedBetweenThem fills the memtable
// past its budget while a maintenance's merges run: it is flushed before
// the next merge, not after the last (it grew to 3× its budget in the
// bench while merges ran).
func TestMemtableFilledDuringMergesIsFlushedBetweenThem(t *testing.T) {
	var s *Store
	var merges atomic.Int32
	var pointsAtSecond atomic.Int64
	opts := quietOptions()
	opts.MemtableBytes = 2 << 20 // above a page (64 KB) in each of the 16 shards
	opts.MergeFanIn = 2
	minute := time.Now().Unix()/60 - 600
	var id uint32
	add := func(series, minutes, from int) error {
		var ds []Delta
		for i := range series {
			for m := range minutes {
				ds = append(ds, Delta{Key: Key{Metric: id, Cell: 0x89309a000000000 + uint64(i)<<12, Minute: minute + int64(from+m)}, Value: 1})
			}
		}
		return s.Add(ds)
	}
	opts.Failpoint = func(name string) {
		if name != FailpointMergeRenamed {
			return
		}
		switch merges.Add(1) {
		case 1: // fill the memtable while the merges go on
			if err := add(1000, 200, 300); err != nil {
				t.Error(err)
			}
		case 2:
			s.mu.RLock()
			m := s.mem
			s.mu.RUnlock()
			pointsAtSecond.Store(int64(m.rowCount(TierMinute)))
		}
	}
	s = openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ = s.MetricID("count_car")
	for i := range 4 { // four small parts, for merges to come
		if err := add(10, 10, 10*i); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(1000, 200, 100); err != nil { // full: the background flushes, then merges
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for merges.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d merges ran; want at least 2", merges.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := pointsAtSecond.Load(); n != 0 {
		t.Fatalf("the memtable filled during the first merge still held %d points at the second: not flushed between merges", n)
	}
}
