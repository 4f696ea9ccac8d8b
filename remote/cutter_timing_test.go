package remote

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowd/flowd/storage"
)

// BenchmarkFlushAndCut measures the remote tier's work for one flush of
// 10,000 cells × 2 metrics × 10 minutes (200,000 minute rows and their
// 20,000 hour rows) on a real outbox: the journals the flush writes, then
// the cut of those minutes into a segment. It reports the cost a minute
// row and the bytes a shipped sample and a journal row take.
func BenchmarkFlushAndCut(b *testing.B) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	var minute, hour []storage.Row
	for c := range uint64(10000) {
		cell := uint64(cell9) + c<<15 // distinct res-9 ids with the same parents
		for _, m := range []string{"count_car", "count_bus"} {
			for i := range int64(10) {
				minute = append(minute, storage.Row{Metric: m, Cell: cell, Minute: h + i, Span: 1, Value: 3 + i})
			}
			hour = append(hour, storage.Row{Metric: m, Cell: cell, Minute: h, Span: 60, Value: 75})
		}
	}
	var segBytes, journalBytes int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		tt := newTestTier(&testing.T{}, dir, &fakeStore{}, time.Unix(h*60, 0))
		tt.c.logf = b.Logf
		b.StartTimer()
		if err := tt.o.Flushed(storage.TierMinute, 0, 1, minute); err != nil {
			b.Fatal(err)
		}
		if err := tt.o.Flushed(storage.TierHour, 0, 1, hour); err != nil {
			b.Fatal(err)
		}
		_, journalBytes = dirBytes(filepath.Join(dir, journalDir))
		tt.clock = time.Unix((h+20)*60, 0)
		if err := tt.c.step(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, segBytes = dirBytes(filepath.Join(dir, segmentDir))
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(minute)), "ns/row")
	b.ReportMetric(float64(segBytes)/float64(len(minute)), "segment-bytes/sample")
	b.ReportMetric(float64(journalBytes)/float64(len(minute)+len(hour)), "journal-bytes/row")
}
