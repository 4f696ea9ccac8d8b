package city

import (
	"testing"
	"time"
)

// BenchmarkMinuteNDJSON generates and encodes whole weekday minutes at
// Scale 1 (default city), cycling through the day so peaks and nights both
// count; one op is one simulated minute.
func BenchmarkMinuteNDJSON(b *testing.B) {
	c := New(Config{Seed: 1})
	buf := make([]byte, 0, 4<<20)
	events := 0
	i := 0
	for b.Loop() {
		buf = buf[:0]
		c.Minute(DefaultStart.Add(time.Duration(i%1440)*time.Minute), func(e *Event) {
			buf = AppendNDJSON(buf, e)
			events++
		})
		i += 7 // stride through the day
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// BenchmarkAFCDay writes a whole AFC day at Scale 0.1 (about 300,000 rows).
func BenchmarkAFCDay(b *testing.B) {
	c := New(Config{Seed: 1, Cameras: 1, Scale: 0.1})
	rows := 0
	for b.Loop() {
		c.AFCRows(DefaultStart, func([]byte) { rows++ })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}
