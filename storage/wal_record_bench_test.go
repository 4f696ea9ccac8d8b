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

// BenchmarkAppendRowsRecord encodes the record of a request of 10,000
// detector readings held as rows (memtableBatches), as Submit does.
func BenchmarkAppendRowsRecord(b *testing.B) {
	bt := memtableBatches(1)[0]
	buf := appendSeriesRecord(nil, &bt.t, nil)
	for b.Loop() {
		buf = appendSeriesRecord(buf[:0], &bt.t, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(bt.t.rows)), "ns/row")
	b.ReportMetric(float64(len(buf))/float64(len(bt.t.rows)), "B/row")
}
