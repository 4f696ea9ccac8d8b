package storage

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// watchRecorder is a FlushWatch that keeps what it hears, or fails while
// fail is set.
type watchRecorder struct {
	mu    sync.Mutex
	fail  bool
	calls []watchCall
}

type watchCall struct {
	t             Tier
	afterSeq, seq uint64
	rows          []Row
}

func (w *watchRecorder) Flushed(t Tier, afterSeq, seq uint64, rows []Row) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return errors.New("outbox disk full")
	}
	w.calls = append(w.calls, watchCall{t, afterSeq, seq, slices.Clone(rows)})
	return nil
}

// TestFlushTellsItsRowsBeforeTheirPart: a flush tells the watch every row
// of each tier — a spread run with its span and sum, a sketch's registers
// as sub-keys, an hour row of a spread metric without its run length —
// before the part is in place: a failing watch fails the flush and leaves
// no part, and the retry tells the same rows over the same WAL segments.
func TestFlushTellsItsRowsBeforeTheirPart(t *testing.T) {
	w := &watchRecorder{fail: true}
	opts := quietOptions()
	opts.Watch = w
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	ids, err := s.MetricIDs("swipes_in", "hll_cards", "count_car")
	if err != nil {
		t.Fatal(err)
	}
	h := TierHour.Truncate(time.Now().Unix()/60) - 120 // an hour start two hours ago
	b := NewBatch()
	b.Add(ids[0], false, 7, 0, h+59, 3)
	b.Add(ids[0], false, 7, 0, h+60, 1)
	b.Add(ids[1], true, 7, 11, h+50, 4)
	b.AddRun(b.SeriesSpread(ids[2], 9), h+40, 20, 40)
	p, err := s.Submit(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	b.Release()
	if err := s.Flush(); err == nil {
		t.Fatal("a flush whose rows the watch could not record succeeded")
	}
	if st := s.Stats(); st.Parts[TierMinute]+st.Parts[TierHour] != 0 {
		t.Fatalf("a part is in place though the watch failed: %+v", st.Parts)
	}
	w.mu.Lock()
	w.fail = false
	w.mu.Unlock()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	byMetric := func(a, b Row) int {
		if a.Metric != b.Metric {
			if a.Metric < b.Metric {
				return -1
			}
			return 1
		}
		return int(a.Minute - b.Minute)
	}
	want := map[Tier][]Row{
		TierMinute: {
			{"count_car", 9, 0, h + 40, 20, 40},
			{"hll_cards", 7, 11, h + 50, 1, 4},
			{"swipes_in", 7, 0, h + 59, 1, 3},
			{"swipes_in", 7, 0, h + 60, 1, 1},
		},
		TierHour: {
			{"count_car", 9, 0, h, 60, 40},
			{"hll_cards", 7, 11, h, 60, 4},
			{"swipes_in", 7, 0, h, 60, 3},
			{"swipes_in", 7, 0, h + 60, 60, 1},
		},
	}
	if len(w.calls) != 2 {
		t.Fatalf("the watch heard %d calls, want one a tier: %+v", len(w.calls), w.calls)
	}
	for _, c := range w.calls {
		slices.SortFunc(c.rows, byMetric)
		if !slices.Equal(c.rows, want[c.t]) {
			t.Errorf("%s rows %v, want %v", c.t, c.rows, want[c.t])
		}
		if c.afterSeq != 0 || c.seq == 0 {
			t.Errorf("%s rows cover the WAL segments after %d to %d, want after 0 to the flush's", c.t, c.afterSeq, c.seq)
		}
	}
}
