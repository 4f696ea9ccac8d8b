package forecast

import (
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// clock is a test's settable time.
type clock struct{ unix atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(c.unix.Load(), 0) }
func (c *clock) set(t time.Time)     { c.unix.Store(t.Unix()) }
func (c *clock) afterMinute(m int64) { c.unix.Store((m+1)*60 + 6) }

// testStart is a Monday, 00:00 UTC: the first minute of a test's history.
var testStart = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)

// openTestStore opens a store in a temporary directory on the test's
// clock, keeping whatever the test writes.
func openTestStore(t *testing.T, c *clock) *storage.Store {
	t.Helper()
	st, err := storage.Open(filepath.Join(t.TempDir(), "store"), storage.Options{
		Now: c.now, FlushInterval: time.Hour, Logf: func(string, ...any) {},
		Retention: [storage.NumTiers]time.Duration{90 * 24 * time.Hour, 365 * 24 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testRegistry holds one station and one site near West Lake.
func testRegistry(t *testing.T) *geo.Registry {
	t.Helper()
	reg := geo.New(9)
	if err := reg.PutStations([]geo.Station{{ID: "S1", Name: "Longxiangqiao", Lat: 30.2547, Lng: 120.1642}}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestTrackerLearnsHistoryAndFeedsEachMinuteOnce stores two weeks of a
// station's taps in, lets a tracker learn them at start, and checks its
// forecast of the next hour against the rhythm. It then observes two
// batches of one minute: the minute is fed once, with their sum, only
// after it has ended; a delta arriving after is counted late, and one of
// a metric nobody watches is not even queued.
func TestTrackerLearnsHistoryAndFeedsEachMinuteOnce(t *testing.T) {
	c := &clock{}
	end := testStart.Add(14*24*time.Hour + 9*time.Hour) // Monday 09:00, two weeks on
	c.set(end)
	st := openTestStore(t, c)
	reg := testRegistry(t)
	station, _ := reg.Station("S1")
	id, err := st.MetricID(vocab.SwipesIn)
	if err != nil {
		t.Fatal(err)
	}
	var deltas []storage.Delta
	for m := testStart.Unix() / 60; m < end.Unix()/60; m++ {
		deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(station.Cell), Minute: m}, Value: int64(math.Round(rhythm(m)))})
	}
	if err := st.Add(deltas); err != nil {
		t.Fatal(err)
	}
	c.set(end.Add(6 * time.Second))
	tr := NewTracker(st, reg, Options{Now: c.now})
	if err := tr.Warm(); err != nil {
		t.Fatal(err)
	}
	f, err := tr.Forecast(Query{Place: PlaceStation, ID: "S1", Metric: vocab.SwipesIn, Step: 10, Steps: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range f.Points {
		var want float64
		for m := f.From + int64(i)*10; m < f.From+int64(i)*10+10; m++ {
			want += math.Round(rhythm(m))
		}
		if math.Abs(p.Expected-want) > 0.1*want || p.Lo > want || p.Hi < want {
			t.Errorf("step %d: forecast %.1f [%.1f, %.1f], want %.1f within 10 %% and inside the interval", i, p.Expected, p.Lo, p.Hi, want)
		}
	}

	m := end.Unix() / 60
	car, err := st.MetricID(vocab.CountPrefix + "car")
	if err != nil {
		t.Fatal(err)
	}
	// count_car was stored after the tracker's last look at the metrics: it
	// learns at the delta that nobody watches it, without waiting for an
	// Advance.
	tr.ObserveDeltas([]storage.Delta{{Key: storage.Key{Metric: car, Cell: uint64(station.Cell), Minute: m}, Value: 9}})
	if n := tr.pending.Len(); n != 0 {
		t.Errorf("a delta of an unwatched metric was queued (%d queued)", n)
	}
	key := storage.Key{Metric: id, Cell: uint64(station.Cell), Minute: m}
	tr.ObserveDeltas([]storage.Delta{{Key: key, Value: 5}})
	tr.ObserveDeltas([]storage.Delta{{Key: key, Value: 7}})
	tr.Advance() // minute m has not ended
	s := tr.book.byKey[seriesKey{vocab.SwipesIn, uint64(station.Cell)}]
	if last, _ := s.model.Last(); last != m-1 {
		t.Fatalf("before minute %d ended the model's last minute is %d, want %d", m, last, m-1)
	}
	c.afterMinute(m)
	tr.Advance()
	if last, _ := s.model.Last(); last != m || s.model.recent[m%anomalyWindow] != 12 {
		t.Fatalf("after minute %d: last minute %d holding %v, want the minute holding 12", m, last, s.model.recent[m%anomalyWindow])
	}
	tr.ObserveDeltas([]storage.Delta{{Key: key, Value: 3}})
	c.afterMinute(m + 1)
	tr.Advance()
	if st := tr.Stats(); st.LateDeltas != 1 || s.model.recent[m%anomalyWindow] != 12 {
		t.Errorf("a delta for a minute already fed: %d late, minute holds %v; want 1 late and 12 kept", st.LateDeltas, s.model.recent[m%anomalyWindow])
	}
}
