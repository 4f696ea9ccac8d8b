package privacy

import (
	"testing"

	"github.com/flowd/flowd/vocab"
)

// BenchmarkCountCell is the layer's cost for one cell of a density or top
// answer: the cell's area, its identity and noise.
func BenchmarkCountCell(b *testing.B) {
	l := testLayer(b, nil)
	r := l.For("bench", now)
	b.ReportAllocs()
	for i := range b.N {
		r.Count(Figure{Metric: vocab.SwipesIn, Area: r.CellArea(cellA), From: hour(0), To: hour(1)}, int64(i))
		r.figs = r.figs[:0]
	}
}

// BenchmarkCountPoint is the cost for one point of a series over an area
// whose identity is worked out once.
func BenchmarkCountPoint(b *testing.B) {
	l := testLayer(b, nil)
	r := l.For("bench", now)
	area := r.Area(rangesOf(b, cellA, cellB))
	b.ReportAllocs()
	for i := range b.N {
		from := hour(0) + int64(i%1000)*15
		r.Count(Figure{Metric: vocab.SwipesIn, Area: area, From: from, To: from + 15}, 100)
		r.figs = r.figs[:0]
	}
}
