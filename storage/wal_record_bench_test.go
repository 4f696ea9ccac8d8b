package storage

import "testing"

// BenchmarkAppendSeriesRecord encodes the record of a city's request of
// detector readings (hangzhouBatch) as type 3 (before recordSeries2) and
// as type 4, into a buffer kept from the previous record.
func BenchmarkAppendSeriesRecord(b *testing.B) {
	bt := hangzhouBatch(b)
	defer bt.Release()
	for _, c := range []struct {
		name   string
		encode func([]byte, *seriesTable, []TripOp) []byte
	}{{"v3", appendSeriesRecordV3}, {"v4", appendSeriesRecord}} {
		b.Run(c.name, func(b *testing.B) {
			buf := c.encode(nil, &bt.t, nil)
			for b.Loop() {
				buf = c.encode(buf[:0], &bt.t, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(bt.t.series)), "ns/series")
			b.ReportMetric(float64(len(buf))/float64(bt.Len()), "B/point")
		})
	}
}
