package forecast

import (
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// cameraFeed feeds a tracker the synthetic city's people counted by its
// cameras, minute by minute, as ingest would after each durable batch,
// advancing the tracker's clock past each minute.
type cameraFeed struct {
	c      *city.City
	cells  map[string]uint64 // sensor id -> base cell
	metric uint32
	tr     *Tracker
	clock  *clock
}

func newCameraFeed(t *testing.T, cameras int) *cameraFeed {
	cl := &clock{}
	cl.set(city.DefaultStart)
	st := openTestStore(t, cl)
	id, err := st.MetricID(vocab.CountPrefix + "person")
	if err != nil {
		t.Fatal(err)
	}
	f := &cameraFeed{c: city.New(city.Config{Seed: 1, Cameras: cameras}), cells: map[string]uint64{}, metric: id, clock: cl}
	for _, s := range f.c.Sensors {
		f.cells[s.ID] = uint64(h3.LatLngToCell(h3.LatLng{Lat: s.Pos.Lat, Lng: s.Pos.Lng}, 9))
	}
	f.tr = NewTracker(st, geo.New(9), Options{Now: cl.now, History: -1})
	return f
}

// minute feeds one minute, plus extra people counted in some cells.
func (f *cameraFeed) minute(m int64, extra map[uint64]int64) {
	sums := map[uint64]int64{}
	f.c.Counts(time.Unix(m*60, 0), func(e *city.Event) {
		if e.Class == city.ClassPerson {
			sums[f.cells[e.ID]] += int64(e.Count)
		}
	})
	for cell, v := range extra {
		sums[cell] += v
	}
	deltas := make([]storage.Delta, 0, len(sums))
	for cell, v := range sums {
		deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: f.metric, Cell: cell, Minute: m}, Value: v})
	}
	f.tr.ObserveDeltas(deltas)
	f.clock.afterMinute(m)
	f.tr.Advance()
}

// flaggedCells returns the cells flagged after the last minute fed.
func (f *cameraFeed) flaggedCells() map[uint64]Anomaly {
	_, list := f.tr.Anomalies(false)
	out := map[uint64]Anomaly{}
	for _, a := range list {
		out[a.Cell] = a
	}
	return out
}

// TestAnomaliesOnANormalDayAndANewCrowd watches every cell of the
// synthetic city's cameras (people counted) for two weeks, then:
//   - over a normal third Monday, fewer than one cell in a hundred is ever
//     flagged (counted as flag episodes, each new flag of a cell);
//   - a crowd of 40 people a minute where none is usual (a cell with no
//     camera; a camera's cell at 03:00) is flagged within two minutes.
func TestAnomaliesOnANormalDayAndANewCrowd(t *testing.T) {
	f := newCameraFeed(t, 400)
	start := city.DefaultStart.Unix() / 60
	day := start + 14*1440
	for m := start; m < day; m++ {
		f.minute(m, nil)
	}
	cells := len(f.tr.book.byKey)
	episodes := 0
	prev := map[uint64]Anomaly{}
	for m := day; m < day+1440; m++ {
		f.minute(m, nil)
		now := f.flaggedCells()
		for cell, a := range now {
			if _, was := prev[cell]; !was {
				episodes++
				t.Logf("false anomaly at %s: cell %s, %.0f people in 5 minutes, %.1f expected, score %.1f",
					time.Unix(m*60, 0).In(city.Hangzhou).Format("15:04"), a.ID, a.Value, a.Expected, a.Score)
			}
		}
		prev = now
	}
	t.Logf("a normal day over %d cells: %d anomalies flagged", cells, episodes)
	if cells < 100 || episodes*100 >= cells {
		t.Errorf("a normal day over %d cells: %d anomalies flagged, want fewer than one per hundred cells", cells, episodes)
	}

	night := day + 1440 + 3*60 // Tuesday 03:00 in Hangzhou
	for m := day + 1440; m < night; m++ {
		f.minute(m, nil)
	}
	anyCamera := f.cells[f.c.Sensors[0].ID]
	empty := uint64(h3.LatLngToCell(h3.LatLng{Lat: 30.45, Lng: 120.45}, 9)) // north-east of the city's roads
	if _, ok := f.tr.book.byKey[seriesKey{vocab.CountPrefix + "person", empty}]; ok {
		t.Fatalf("the cell meant to be empty, %s, has counts", h3.Cell(empty))
	}
	for _, crowd := range []struct {
		name string
		cell uint64
	}{{"a cell no camera sees", empty}, {"a camera's cell at night", anyCamera}} {
		t.Run(crowd.name, func(t *testing.T) {
			for i := range 2 {
				f.minute(night+int64(i), map[uint64]int64{crowd.cell: 40})
				if a, ok := f.flaggedCells()[crowd.cell]; ok {
					t.Logf("flagged after %d minute(s): %.0f people in 5 minutes, %.1f expected, score %.1f", i+1, a.Value, a.Expected, a.Score)
					return
				}
			}
			t.Errorf("a crowd of 40 a minute in %s was not flagged within two minutes", crowd.name)
		})
		night += 10
		for m := night - 8; m < night; m++ {
			f.minute(m, nil)
		}
	}
}
