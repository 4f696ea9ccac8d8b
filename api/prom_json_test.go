package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
)

// boxedSeries and boxedAnswer are promSeries and promAnswer as they were
// before promPoint, each point a [2]any of its time and its value's text:
// what encoding/json writes for them is the reference AppendJSON must
// match byte for byte.
type boxedSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values,omitempty"`
	Value  []any             `json:"value,omitempty"`
}

type boxedAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     any    `json:"result"`
	} `json:"data"`
	answer.Took
	released
}

func boxed(a *promAnswer) *boxedAnswer {
	b := &boxedAnswer{Status: a.Status, Took: a.Took, released: a.released}
	b.Data.ResultType = a.Data.ResultType
	b.Data.Result = a.Data.Result
	if ss, ok := a.Data.Result.([]promSeries); ok && ss != nil {
		out := []boxedSeries{}
		for _, s := range ss {
			bs := boxedSeries{Metric: s.Metric, Value: s.Value}
			for _, p := range s.Values {
				v := p.text
				if v == "" {
					v = strconv.FormatInt(p.v, 10)
				}
				bs.Values = append(bs.Values, [2]any{p.t, v})
			}
			out = append(out, bs)
		}
		b.Data.Result = out
	}
	return b
}

// TestPromAnswerJSONIsEncodingJSONs checks that Prometheus answers written
// by promAnswer.AppendJSON, and through answer.JSON, are byte for byte
// what encoding/json wrote for their former boxed points: matrices summed
// and by cell, with labels to escape, values at int64's ends, a scalar's
// text, vectors, scalars, empty and absent results, a privacy note, and
// strings holding the text the result replaces.
func TestPromAnswerJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	matrix := func(s ...promSeries) *promAnswer {
		return &promAnswer{Status: "success", Data: promData{ResultType: "matrix", Result: s}}
	}
	note := released{Privacy: &privacy.Note{Noise: "laplace", Epsilon: 0.5, K: 10, Step: `"result":null`}}
	answers := []*promAnswer{
		matrix(),
		{Status: "success", Data: promData{ResultType: "matrix", Result: []promSeries(nil)}},
		matrix(promSeries{Metric: map[string]string{}, Values: []promPoint{{t: 60, v: 0}, {t: -60, v: -1}, {t: math.MinInt64, v: math.MaxInt64}, {t: math.MaxInt64, v: math.MinInt64}}}),
		matrix(
			promSeries{Metric: map[string]string{"__name__": "count_car", "cell": "89309a4a7b3ffff"}, Values: []promPoint{{t: 1546819500, v: 12}}},
			promSeries{Metric: map[string]string{"cell": `<&>"\` + "\u2028é", "__name__": `"result":null`}, Values: []promPoint{{t: 1, v: 2}, {t: 3, v: 4}}},
			promSeries{Metric: nil},
			promSeries{Metric: map[string]string{}, Values: []promPoint{}},
		),
		{Status: "success", Data: promData{ResultType: "vector", Result: []promSeries{{Metric: map[string]string{"cell": "x"}, Value: []any{int64(1546819500), "7"}}}}, Took: answer.Took{TookMs: 0.125}, released: note},
		{Status: "success", Data: promData{ResultType: "scalar", Result: []any{int64(1546819500), "2"}}},
		promScalar(promQuery{from: 100, to: 110, step: 2, scalar: new(float64)}, 5),
	}
	for _, f := range []float64{1.5, -0.25, math.NaN(), math.Inf(1), 1e300} {
		answers = append(answers, promScalar(promQuery{from: 100, to: 104, step: 1, scalar: &f}, 4))
	}
	big := matrix(promSeries{Metric: map[string]string{}})
	for i := range 70128 {
		big.Data.Result.([]promSeries)[0].Values = append(big.Data.Result.([]promSeries)[0].Values, promPoint{t: 1230768000 + int64(i)*3600, v: r.Int64N(1e6) - 1000})
	}
	answers = append(answers, big)
	for i, a := range answers {
		want, err := json.Marshal(boxed(a))
		if err != nil {
			t.Fatal(err)
		}
		checkAppendJSON(t, i, a, want)
		if direct, err := json.Marshal(a); err != nil || !bytes.Equal(direct, want) {
			t.Fatalf("answer %d: json.Marshal wrote\n%.400s (%v)\nwant\n%.400s", i, direct, err, want)
		}
	}
}

// BenchmarkPromAnswerJSON makes and writes the query_range answer of an
// eight-year hourly series (70,128 points), as Grafana asks it: with the
// former boxed points through encoding/json, and with promPoint (their
// room made at once, as promQuery does) through AppendJSON.
func BenchmarkPromAnswerJSON(b *testing.B) {
	const n = 70128
	value := func(i int) int64 { return int64(i*7919) % 4000 }
	b.Run("boxed-encoding-json", func(b *testing.B) {
		for b.Loop() {
			s := boxedSeries{Metric: map[string]string{}}
			for i := range n {
				s.Values = append(s.Values, [2]any{1230768000 + int64(i)*3600, strconv.FormatInt(value(i), 10)})
			}
			a := &boxedAnswer{Status: "success"}
			a.Data.ResultType, a.Data.Result = "matrix", []boxedSeries{s}
			if _, err := json.Marshal(a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
	})
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			s := promSeries{Metric: map[string]string{}, Values: make([]promPoint, 0, n)}
			for i := range n {
				s.Values = append(s.Values, promPoint{t: 1230768000 + int64(i)*3600, v: value(i)})
			}
			a := &promAnswer{Status: "success", Data: promData{ResultType: "matrix", Result: []promSeries{s}}}
			var err error
			if buf, err = a.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
	})
}
