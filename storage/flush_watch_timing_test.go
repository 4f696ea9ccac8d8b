package storage

import (
	"fmt"
	"testing"
	"time"
)

// discardWatch is a FlushWatch that keeps nothing.
type discardWatch struct{}

func (discardWatch) Flushed(Tier, uint64, uint64, []Row) error { return nil }

// BenchmarkFlushWatched flushes 200,000 minute buckets (10,000 cells × 2
// metrics × 10 minutes) at a time into one store, with and without a
// FlushWatch, for what telling the watch costs the flush itself (the
// remote tier's own work is remote.BenchmarkFlushAndCut). Ingest never
// waits for a flush.
func BenchmarkFlushWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run(fmt.Sprintf("watched=%v", watched), func(b *testing.B) {
			opts := quietOptions()
			opts.FlushInterval = time.Hour
			if watched {
				opts.Watch = discardWatch{}
			}
			s := openTestStore(b, b.TempDir(), opts)
			defer s.Close()
			ids, err := s.MetricIDs("count_car", "count_bus")
			if err != nil {
				b.Fatal(err)
			}
			h := TierHour.Truncate(time.Now().Unix()/60) - 600
			for n := range int64(b.N) {
				b.StopTimer()
				bt := NewBatch()
				for c := range uint64(10000) {
					for _, id := range ids {
						for i := range int64(10) {
							bt.Add(id, false, c, 0, h+10*n+i, 3)
						}
					}
				}
				p, err := s.Submit(bt, nil)
				if err == nil {
					err = p.Wait()
				}
				if err != nil {
					b.Fatal(err)
				}
				bt.Release()
				b.StartTimer()
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
