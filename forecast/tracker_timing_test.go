package forecast

import (
	"testing"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// BenchmarkTrackerMinute is the cost of one minute of the tracker over
// 1,000 cells of an anomaly metric that count every minute: queueing the
// minute's deltas, feeding every series, scoring every series for
// anomalies. It reports the time per series per minute.
func BenchmarkTrackerMinute(b *testing.B) {
	c := &clock{}
	c.set(testStart)
	st, err := storage.Open(b.TempDir(), storage.Options{Now: c.now, Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	id, err := st.MetricID(vocab.CountPrefix + "person")
	if err != nil {
		b.Fatal(err)
	}
	tr := NewTracker(st, geo.New(9), Options{Now: c.now, History: -1})
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
