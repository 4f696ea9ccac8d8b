package bench

import (
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// BenchmarkGenerateDay measures rendering and bucketing an hour of the
// city, the load generator's own cost before any server sees it.
func BenchmarkGenerateDay(b *testing.B) {
	c := city.New(city.Config{Seed: 1, Scale: 1})
	var events int64
	for b.Loop() {
		d, err := GenerateDay(c, city.DefaultStart.Add(8*time.Hour), 60, 9)
		if err != nil {
			b.Fatal(err)
		}
		events += d.Events()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}
