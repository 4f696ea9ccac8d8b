package forecast

import (
	"fmt"
	"slices"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Warm teaches every model the stored history of its series, up to
// Options.History back (the store's minute tier keeps 30 days by
// default), so that a restarted flowd forecasts at once rather than after
// a week. Run calls it before its first minute; the tracker's lock is
// held meanwhile, so queries wait for it (about a second for a city's
// stations and sites, more with many cells).
func (t *Tracker) Warm() error {
	if t.opts.History < 0 {
		return nil
	}
	start := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.book.refresh(t.reg, t.store)
	to := t.done + 1
	from := to - int64(t.opts.History/time.Minute)
	first := to
	for _, name := range t.book.watchedNames() {
		f, err := t.warmMetric(name, from, to)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		first = min(first, f)
	}
	for _, src := range t.sources {
		err := src.LevelHistory(from, to, func(r Reading) {
			if s := t.book.bySite[r.Site]; s != nil {
				s.model.Observe(r.Minute, r.Value)
			}
		})
		if err != nil {
			return fmt.Errorf("levels: %w", err)
		}
	}
	t.book.since = first
	t.book.warmSeconds = time.Since(start).Seconds()
	t.opts.Logf("forecast: learnt %d days of history of %d series in %.1f s", (to-first)/1440, len(t.book.byKey)+len(t.book.bySite), t.book.warmSeconds)
	return nil
}

// history is one metric's stored minutes over [from, to), gathered per
// cell into the bins of the series' model (and of its twin), but for its
// last minutes, kept one by one: the bin in progress at to and, when that
// has fewer, the anomaly window's worth before it, which a model must hold
// minute by minute to score its first live minutes.
type history struct {
	from, to int64
	bin      int64 // minutes a bin of the metric's models
	twinBin  int64 // minutes a bin of the twins; 0 without twins
	bins     map[uint64][]float32
	twins    map[uint64][]float32
	partial  map[uint64][]float32 // minutes from tail() to to
	first    map[uint64]int64     // each cell's first minute with data
}

// warmMetric reads metric's history and feeds it to its series, creating
// the series of the cells of an anomaly metric. It returns the first
// minute the metric has data in, to when none.
func (t *Tracker) warmMetric(name string, from, to int64) (int64, error) {
	b := t.book
	p := b.flow
	ranges := vocab.Everywhere
	if b.cellM[name] {
		p = b.perCell
	} else {
		ranges = b.rangesOf(name)
		if len(ranges) == 0 {
			return to, nil
		}
	}
	h := &history{from: from, to: to, bin: int64(p.Bin), bins: map[uint64][]float32{},
		twins: map[uint64][]float32{}, partial: map[uint64][]float32{}, first: map[uint64]int64{}}
	if b.layer != nil && vocab.PrivacyOf(name) != vocab.Public {
		h.twinBin = int64(b.twinParams.Bin)
	}
	err := t.store.Scan(storage.TierMinute, name, ranges, from, to, h.add)
	if err != nil {
		return to, err
	}
	first := to
	for _, f := range h.first {
		first = min(first, f)
	}
	now := t.opts.Now()
	for cell := range h.first {
		if s := b.byKey[seriesKey{name, cell}]; s == nil && b.cellM[name] {
			b.newCell(name, cell, h.first[cell]).model.AssumeZero(first/h.bin, h.first[cell]/h.bin)
		}
	}
	for k, s := range b.byKey {
		if k.metric == name {
			h.feed(b, s, first, now)
		}
	}
	return first, nil
}

// rangesOf returns the cells of the series of metric as sorted ranges.
func (b *book) rangesOf(metric string) []vocab.CellRange {
	var cells []uint64
	for k := range b.byKey {
		if k.metric == metric {
			cells = append(cells, k.cell)
		}
	}
	slices.Sort(cells)
	cells = slices.Compact(cells)
	rs := make([]vocab.CellRange, len(cells))
	for i, c := range cells {
		rs[i] = vocab.CellRange{Lo: c, Hi: c}
	}
	return rs
}

// tail is the first minute kept one by one: a bin's start.
func (h *history) tail() int64 {
	return (h.to - anomalyWindow) / h.bin * h.bin
}

// add gathers one stored bucket.
func (h *history) add(cell uint64, minute, v int64) {
	if f, ok := h.first[cell]; !ok || minute < f {
		h.first[cell] = minute
	}
	whole := h.tail()
	if minute >= whole {
		p := h.partial[cell]
		if p == nil {
			p = make([]float32, h.to-whole)
			h.partial[cell] = p
		}
		p[minute-whole] += float32(v)
	} else {
		bins := h.bins[cell]
		if bins == nil {
			bins = make([]float32, max(0, whole/h.bin-h.from/h.bin))
			h.bins[cell] = bins
		}
		if i := minute/h.bin - h.from/h.bin; i >= 0 {
			bins[i] += float32(v)
		}
	}
	if h.twinBin > 0 {
		tw := h.twins[cell]
		if tw == nil {
			tw = make([]float32, (h.to-1)/h.twinBin-h.from/h.twinBin+1)
			h.twins[cell] = tw
		}
		if i := minute/h.twinBin - h.from/h.twinBin; i >= 0 {
			tw[i] += float32(v)
		}
	}
}

// feed gives series s its history from the metric's first minute with
// data (before it, flowd was not running, or nothing was sent): whole
// bins, then the minutes of the bin in progress.
func (h *history) feed(b *book, s *series, first int64, now time.Time) {
	whole := h.tail()
	if first >= h.to {
		return
	}
	bins := h.bins[s.cell]
	for bin := max(first, h.from) / h.bin; bin < whole/h.bin; bin++ {
		v := 0.0
		if i := bin - h.from/h.bin; bins != nil && i >= 0 {
			v = float64(bins[i])
		}
		s.model.ObserveBin(bin, v)
	}
	p := h.partial[s.cell]
	for m := max(whole, first); m < h.to; m++ {
		v := 0.0
		if p != nil {
			v = float64(p[m-whole])
		}
		s.model.Observe(m, v)
	}
	if s.twin != nil && h.twinBin > 0 {
		s.twin.warm(b, s, h, max(first, h.from), now)
	}
}

// warm releases the twin's settled history bins from minute first on, and
// keeps the exact sums of the bins not settled yet for the live minutes.
func (w *twin) warm(b *book, s *series, h *history, first int64, now time.Time) {
	sums := h.twins[s.cell]
	line := now.Unix()/60 - b.policy.Delay
	w.next = first / h.twinBin
	for bin := w.next; bin <= (h.to-1)/h.twinBin; bin++ {
		v := 0.0
		if i := bin - h.from/h.twinBin; sums != nil && i >= 0 && i < int64(len(sums)) {
			v = float64(sums[i])
		}
		if (bin+1)*h.twinBin <= line {
			i := int(bin % int64(len(w.sum)))
			w.binAt[i], w.sum[i] = bin, v
			w.release(b, s, bin, now)
			w.next = bin + 1
			continue
		}
		i := int(bin % int64(len(w.sum)))
		w.binAt[i], w.sum[i] = bin, v
	}
}
