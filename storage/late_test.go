package storage

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// lateRecorder is a LateWatch with a fixed cut that keeps what it hears,
// or fails while fail is set.
type lateRecorder struct {
	mu   sync.Mutex
	cut  int64
	fail bool
	got  map[Tier][]LateBucket
}

func (l *lateRecorder) Cut() int64 { return l.cut }

func (l *lateRecorder) Late(t Tier, b []LateBucket) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return errors.New("outbox disk full")
	}
	if l.got == nil {
		l.got = map[Tier][]LateBucket{}
	}
	l.got[t] = append(l.got[t], b...)
	return nil
}

// TestFlushTellsLateRowsBeforeTheirPart: with the cut at minute h+60 of
// an hour start h (hour h+60 not yet finished), a flush reports the
// minute rows before h+60 once per metric, cell and span (a spread run with its length, a
// sketch's registers as one bucket) and the hour rows of hours ending by
// h+60; a failing watch fails the flush, and the next flush tells again.
func TestFlushTellsLateRowsBeforeTheirPart(t *testing.T) {
	h := TierHour.Truncate(time.Now().Unix()/60) - 120 // an hour start two hours ago
	watch := &lateRecorder{cut: h + 60, fail: true}
	opts := quietOptions()
	opts.Late = watch
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	ids, err := s.MetricIDs("swipes_in", "hll_cards", "count_car")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatch()
	b.Add(ids[0], false, 7, 0, h+59, 3) // late minute, late hour (h to h+59)
	b.Add(ids[0], false, 7, 0, h+60, 1) // on time
	b.Add(ids[0], false, 8, 0, h+30, 2) // late minute, late hour
	b.Add(ids[1], true, 7, 11, h+50, 4) // two registers of one late bucket
	b.Add(ids[1], true, 7, 12, h+50, 2)
	b.AddRun(b.SeriesSpread(ids[2], 9), h+40, 20, 40) // a late run of 20 minutes
	p, err := s.Submit(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	b.Release()
	if err := s.Flush(); err == nil {
		t.Fatal("a flush whose late rows could not be recorded succeeded")
	}
	watch.mu.Lock()
	watch.fail = false
	watch.mu.Unlock()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	sortLate := func(l []LateBucket) []LateBucket {
		slices.SortFunc(l, func(a, b LateBucket) int {
			if a.Metric != b.Metric {
				if a.Metric < b.Metric {
					return -1
				}
				return 1
			}
			return int(a.Cell) - int(b.Cell)
		})
		return l
	}
	wantMinute := []LateBucket{
		{"count_car", 9, h + 40, h + 60},
		{"hll_cards", 7, h + 50, h + 51},
		{"swipes_in", 7, h + 59, h + 60},
		{"swipes_in", 8, h + 30, h + 31},
	}
	wantHour := []LateBucket{
		{"count_car", 9, h, h + 60},
		{"hll_cards", 7, h, h + 60},
		{"swipes_in", 7, h, h + 60},
		{"swipes_in", 8, h, h + 60},
	}
	if got := sortLate(watch.got[TierMinute]); !slices.Equal(got, wantMinute) {
		t.Errorf("late minute buckets %v, want %v", got, wantMinute)
	}
	if got := sortLate(watch.got[TierHour]); !slices.Equal(got, wantHour) {
		t.Errorf("late hour buckets %v, want %v", got, wantHour)
	}
}
