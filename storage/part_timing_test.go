package storage

import (
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// benchDay fills a store with a day of one-minute buckets of 2,000 cells
// (one metric), flushed into one part, and returns the range covering them.
func benchDay(b *testing.B) (*Store, []vocab.CellRange, int64) {
	opts := quietOptions()
	opts.Retention = [numTiers]time.Duration{1 << 62, 1 << 62}
	s := openTestStore(&testing.T{}, b.TempDir(), opts)
	b.Cleanup(func() { s.Close() })
	id, _ := s.MetricID("count_car")
	const cells, minutes = 2000, 1440
	base := int64(29000000)
	batch := make([]Delta, 0, 1<<17)
	for m := range int64(minutes) {
		for c := range uint64(cells) {
			batch = append(batch, Delta{Key{Metric: id, Cell: 0x89309a000000000 + c<<12, Minute: base + m}, int64(1 + (c+uint64(m))%17)})
		}
		if len(batch) > 1<<16 {
			if err := s.Add(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Add(batch); err != nil {
		b.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	return s, []vocab.CellRange{{Lo: 0x89309a000000000, Hi: 0x89309a000000000 + cells<<12}}, base
}

// BenchmarkScanDay reads 2,000 cells × 1,440 minutes through a callback.
func BenchmarkScanDay(b *testing.B) {
	s, ranges, base := benchDay(b)
	sums := make([]int64, 1440)
	b.ResetTimer()
	for b.Loop() {
		clear(sums)
		if err := s.Scan(TierMinute, "count_car", ranges, base, base+1440, func(_ uint64, minute, v int64) { sums[minute-base] += v }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000*1440), "ns/row")
}

// BenchmarkSumStepsDay is the same query as a series of per-minute sums.
func BenchmarkSumStepsDay(b *testing.B) {
	s, ranges, base := benchDay(b)
	sums := make([]int64, 1440)
	b.ResetTimer()
	for b.Loop() {
		clear(sums)
		if err := s.SumSteps(TierMinute, "count_car", ranges, base, base+1440, 1, sums); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000*1440), "ns/row")
}

// BenchmarkSumStepsDayCacheFill is SumSteps of the day read a second time
// into an empty block cache, which keeps each block from its second read:
// the second answer of a dashboard after a restart.
func BenchmarkSumStepsDayCacheFill(b *testing.B) {
	s, ranges, base := benchDay(b)
	sums := make([]int64, 1440)
	for b.Loop() {
		b.StopTimer()
		s.blocks = newBlockCache(256 << 20)
		if err := s.SumSteps(TierMinute, "count_car", ranges, base, base+1440, 1, sums); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.SumSteps(TierMinute, "count_car", ranges, base, base+1440, 1, sums); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000*1440), "ns/row")
	b.ReportMetric(float64(s.blocks.bytes())/(2000*1440), "cached-bytes/row")
}

// BenchmarkSumStepsDayCached is SumSteps of the day with every block in
// the block cache: a dashboard's repeated query.
func BenchmarkSumStepsDayCached(b *testing.B) {
	s, ranges, base := benchDay(b)
	s.blocks = newBlockCache(256 << 20)
	sums := make([]int64, 1440)
	for range 2 {
		if err := s.SumSteps(TierMinute, "count_car", ranges, base, base+1440, 1, sums); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		clear(sums)
		if err := s.SumSteps(TierMinute, "count_car", ranges, base, base+1440, 1, sums); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000*1440), "ns/row")
}

// BenchmarkScanDayCached is BenchmarkScanDay with every block in the
// block cache: a density map's repeated query, a callback a row.
func BenchmarkScanDayCached(b *testing.B) {
	s, ranges, base := benchDay(b)
	s.blocks = newBlockCache(256 << 20)
	sums := make([]int64, 1440)
	scan := func() {
		if err := s.Scan(TierMinute, "count_car", ranges, base, base+1440, func(_ uint64, minute, v int64) { sums[minute-base] += v }); err != nil {
			b.Fatal(err)
		}
	}
	scan()
	scan()
	for b.Loop() {
		clear(sums)
		scan()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000*1440), "ns/row")
}
