package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/valyala/fasthttp"
)

// TestSeriesAnswerJSONIsEncodingJSONs checks that a series answer written
// by its AppendJSON, and through answer.JSON, is byte for byte what
// json.Marshal writes: every field set and unset, points empty, absent
// and at int64's ends, and strings that hold the text its points replace.
func TestSeriesAnswerJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	until := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	answers := []*seriesAnswer{
		{Metric: "count_car", Points: [][2]int64{}},
		{Metric: "count_car"}, // points nil: null
		{Metric: "count_car", Points: [][2]int64{{0, 0}, {-1, 1}, {math.MinInt64, math.MaxInt64}}},
		{
			Metric: "speed_car", Sensor: "det-1", Station: "S1", Group: "g", Res: 9, Cells: 3, Tier: "hour",
			period: periodOf(27000000, 27001440), Step: "1h", Total: 42,
			Points:           [][2]int64{{1546819200, 12}, {1546822800, -3}},
			RemoteUntil:      &until,
			UnreachablePeers: []string{"a", `"points":null`},
			Took:             answer.Took{TookMs: 1.25},
			released:         released{Privacy: &privacy.Note{Noise: "laplace", Epsilon: 0.5, K: 10}},
			Comment:          `"points":null, and <html> & more`,
		},
		{Metric: `"points":null`, Comment: `x","points":null,"y`, Points: [][2]int64{{1, 2}}},
	}
	big := &seriesAnswer{Metric: "count_car", Tier: "minute"}
	for i := range 70128 {
		big.Points = append(big.Points, [2]int64{1546819200 + int64(i)*3600, r.Int64N(1e6) - 1000})
	}
	answers = append(answers, big)
	for i, a := range answers {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		checkAppendJSON(t, i, a, want)
	}
}

// checkAppendJSON checks that answer i, written by its AppendJSON after
// bytes already in the buffer and through answer.JSON, is want.
func checkAppendJSON(t *testing.T, i int, a answer.Appender, want []byte) {
	t.Helper()
	got, err := a.AppendJSON([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("answer %d: AppendJSON wrote\n%.400s\nwant\n%.400s", i, got, want)
	}
	var ctx fasthttp.RequestCtx
	answer.JSON(&ctx, fasthttp.StatusOK, a)
	if !bytes.Equal(ctx.Response.Body(), want) {
		t.Fatalf("answer %d: answer.JSON wrote\n%.400s\nwant\n%.400s", i, ctx.Response.Body(), want)
	}
}

// BenchmarkSeriesAnswerJSON writes the answer of an eight-year hourly
// series (70,128 points) as json.Marshal does and as AppendJSON does.
func BenchmarkSeriesAnswerJSON(b *testing.B) {
	a := &seriesAnswer{Metric: "count_ped", Tier: "hour", Step: "1h"}
	for i := range 70128 {
		a.Points = append(a.Points, [2]int64{1230768000 + int64(i)*3600, int64(i*7919) % 4000})
	}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(a.Points)), "ns/point")
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = a.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(a.Points)), "ns/point")
	})
}
