package forecast

import (
	"testing"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// benchTracker returns a tracker on a store of its own at testStart on
// clock c, and the id of count_person, a metric it watches in every cell.
func benchTracker(b *testing.B) (c *clock, tr *Tracker, id uint32) {
	c = &clock{}
	c.set(testStart)
	st, err := storage.Open(b.TempDir(), storage.Options{Now: c.now, Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if id, err = st.MetricID(vocab.CountPrefix + "person"); err != nil {
		b.Fatal(err)
	}
	return c, NewTracker(st, geo.New(9), Options{Now: c.now, History: -1}), id
}

// BenchmarkTrackerMinute is the cost of one minute of the tracker over
// 1,000 cells of an anomaly metric that count every minute: queueing the
// minute's deltas, feeding every series, scoring every series for
// anomalies. It reports the time per series per minute.
func BenchmarkTrackerMinute(b *testing.B) {
	c, tr, id := benchTracker(b)
	cells := h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.16}, 9).GridDisk(18)[:1000]
	deltas := make([]storage.Delta, len(cells))
	minute := func(m int64) {
		for i, cell := range cells {
			deltas[i] = storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(cell), Minute: m}, Value: int64(1 + (m+int64(i))%17)}
		}
		tr.ObserveDeltas(deltas)
		c.afterMinute(m)
		tr.Advance()
	}
	m := testStart.Unix() / 60
	for ; m < testStart.Unix()/60+7*1440; m++ { // a week, so every series has its profile
		minute(m)
	}
	b.ResetTimer()
	for range b.N {
		minute(m)
		m++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(cells)), "ns/series-minute")
}

// BenchmarkTrackerObserveSecond is ingest's side of the tracker over one
// second of a busy city: 100 durable batches of 5,000 deltas each queued
// by ObserveDeltas, then the Advance that takes them. It reports the time
// and the bytes allocated per delta: queueing must copy a delta, not grow
// a fresh buffer to the second's size every second.
func BenchmarkTrackerObserveSecond(b *testing.B) {
	_, tr, id := benchTracker(b)
	cells := h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.16}, 9).GridDisk(41)[:5000]
	m := testStart.Unix() / 60
	deltas := make([]storage.Delta, len(cells))
	for i, cell := range cells {
		deltas[i] = storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(cell), Minute: m}, Value: 1}
	}
	second := func() {
		for range 100 {
			tr.ObserveDeltas(deltas)
		}
		tr.Advance()
	}
	second() // the tracker learns which metrics it watches
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		second()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(100*len(cells)), "ns/delta")
}
