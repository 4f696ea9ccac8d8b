package forecast

import (
	"math"
	"time"

	"github.com/flowd/flowd/privacy"
	"github.com/uber/h3-go/v4"
)

// twin is a card-derived series' model as a caller below admin may see
// it: it learns only from the figures the privacy layer releases of the
// series' cell, one settled bin of the metric's time floor at a time.
// Those figures are the published pyramid's (one cell, one aligned bin),
// the same noisy value for every caller and free of any budget, so
// whatever the twin forecasts or flags is computed from released figures
// alone and reveals nothing more of a person than they do.
type twin struct {
	model *Model
	// The exact sums of the bins not released yet: their number and sum.
	binAt []int64
	sum   []float64
	next  int64 // the next bin to release; 0 before the first minute

	last   Deviation // of the last bin released
	lastOK bool
	lastAt int64 // its number
	since  int64 // minute first flagged as an anomaly, 0 when not flagged
}

// newTwin returns the twin of a series whose figures are released delay
// minutes after their bin ends: the bins not released yet are the one in
// progress and those waiting out the delay.
func newTwin(p *Params, delay int64) *twin {
	n := int(delay/int64(p.Bin)) + 3
	return &twin{model: New(p), binAt: make([]int64, n), sum: make([]float64, n)}
}

// bytes is the twin's size in memory.
func (w *twin) bytes() int { return w.model.Bytes() + 16*len(w.sum) }

// add gathers minute m's exact value v, then releases every bin that has
// settled by now, as the privacy layer releases it.
func (w *twin) add(b *book, s *series, m int64, v float64, now time.Time) {
	step := int64(w.model.p.Bin)
	bin := m / step
	if w.next == 0 {
		w.next = bin
	}
	i := int(bin % int64(len(w.sum)))
	if w.binAt[i] != bin {
		w.binAt[i], w.sum[i] = bin, 0
	}
	w.sum[i] += v
	line := now.Unix()/60 - b.policy.Delay // bins ending by then have settled
	for (w.next+1)*step <= line && w.next <= bin {
		w.release(b, s, w.next, now)
		w.next++
	}
}

// release passes bin's exact sum through the layer and learns the figure.
func (w *twin) release(b *book, s *series, bin int64, now time.Time) {
	i := int(bin % int64(len(w.sum)))
	exact := 0.0
	if w.binAt[i] == bin {
		exact = w.sum[i]
	}
	v := releasedCount(b.layer, s, bin, int64(w.model.p.Bin), exact, now)
	w.last, w.lastOK = w.model.BinDeviation(bin, v)
	w.lastAt = bin
	w.model.ObserveBin(bin, v)
}

// releasedCount is the figure a caller below admin is given for the
// series' cell over bin: noisy, 0 when withheld.
func releasedCount(l *privacy.Layer, s *series, bin, step int64, exact float64, now time.Time) float64 {
	rel := l.For("forecast", now)
	f := privacy.Figure{Metric: s.metric, Area: rel.CellArea(h3.Cell(s.cell)), From: bin * step, To: (bin + 1) * step}
	v, _ := rel.Count(f, int64(math.Round(exact)))
	return float64(v)
}
