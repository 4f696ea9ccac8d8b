package forecast

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkModelObserve is the cost of feeding one series one finished
// minute, averaged over whole bins (nine minutes that add to the bin, one
// that learns it), over 1,000 series, and the bytes of state per series.
func BenchmarkModelObserve(b *testing.B) {
	for _, bin := range []int{10, 60} {
		b.Run(map[int]string{10: "bin=10m", 60: "bin=60m"}[bin], func(b *testing.B) {
			p := NewParams(Params{Bin: bin})
			models := make([]*Model, 1000)
			r := rand.New(rand.NewPCG(1, 1))
			values := make([]float64, 1024)
			for i := range values {
				values[i] = float64(r.IntN(200))
			}
			for i := range models {
				models[i] = New(p)
				for x := int64(0); x < 14*1440; x += int64(bin) {
					models[i].ObserveBin(x/int64(bin), values[x%1024])
				}
			}
			minute := int64(14 * 1440)
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				m := models[n%len(models)]
				if n%len(models) == 0 {
					minute++
				}
				m.Observe(minute, values[n%1024])
			}
			b.ReportMetric(float64(models[0].Bytes()), "bytes/series")
		})
	}
}

// BenchmarkModelAt is the cost of forecasting one minute of one series.
func BenchmarkModelAt(b *testing.B) {
	p := NewParams(Params{Bin: 10})
	m := New(p)
	for x := int64(0); x < 14*1440; x++ {
		m.Observe(x, float64(x%97))
	}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		m.At(14*1440 + int64(n%60))
	}
}
