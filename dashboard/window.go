package dashboard

import "github.com/flowd/flowd/storage"

// maxAheadMinutes bounds how far past the clock a delta's minute may lie
// and still be kept for when the window reaches it; devices with clocks
// further ahead are ignored by the live view (the store keeps them).
const maxAheadMinutes = 5

// bucket is a metric at a base-resolution cell.
type bucket struct {
	metric uint32
	cell   uint64
}

// window is the sliding window of the live view: per-minute sums of every
// bucket, and their totals over the minutes (now-width, now]. It matches
// what GET /api/v1/density answers for the same window ending now. It is
// owned by the hub's tick loop and not safe for concurrent use.
//
// A delta costs two map lookups: its minute's sum of its bucket, and its
// cell's state in its metric, which holds the cell's total and its change
// since the last settle at once. A batch's deltas come in runs of one
// metric and one minute, so those two maps are looked up once a run.
type window struct {
	width   int64 // minutes
	now     int64 // the newest minute inside the window
	minutes map[int64]map[bucket]int64
	metrics map[uint32]*metricWindow

	// The maps of the last delta's minute and metric.
	lastMinute  int64
	lastMinutes map[bucket]int64
	lastMetric  uint32
	lastWindow  *metricWindow
}

// metricWindow is one metric's cells in the window.
type metricWindow struct {
	cells map[uint64]*cellState
	// changed lists the cells whose change may be non-zero since the
	// last settle, each once.
	changed []uint64
	nonzero int // cells whose total is not 0
}

type cellState struct {
	total   int64 // over the window
	change  int64 // since the last settle
	changed bool  // listed in changed
}

func newWindow(width, now int64) *window {
	return &window{width: width, now: now, minutes: map[int64]map[bucket]int64{}, metrics: map[uint32]*metricWindow{}}
}

// settle forgets the changes, once every shape has taken them, and the
// cells whose total is back to 0.
func (w *window) settle() {
	for _, mw := range w.metrics {
		for _, c := range mw.changed {
			if st := mw.cells[c]; st != nil {
				st.change, st.changed = 0, false
				if st.total == 0 {
					delete(mw.cells, c)
				}
			}
		}
		mw.changed = mw.changed[:0]
	}
}

// cells counts the buckets with a non-zero total.
func (w *window) cells() int {
	n := 0
	for _, mw := range w.metrics {
		n += mw.nonzero
	}
	return n
}

// eachChange calls fn with every cell of metric whose total changed since
// the last settle, and by how much; with all set, with every cell whose
// total is not 0, and its total.
func (w *window) eachChange(metric uint32, all bool, fn func(cell uint64, d int64)) {
	mw := w.metrics[metric]
	if mw == nil {
		return
	}
	if all {
		for c, st := range mw.cells {
			if st.total != 0 {
				fn(c, st.total)
			}
		}
		return
	}
	for _, c := range mw.changed {
		if st := mw.cells[c]; st != nil && st.change != 0 {
			fn(c, st.change)
		}
	}
}

func (w *window) inside(m, now int64) bool { return m > now-w.width && m <= now }

// add applies one delta by its own minute: inside the window it counts at
// once, a little ahead of the clock it waits, older it is dropped.
func (w *window) add(d storage.Delta) {
	m := d.Minute
	if m <= w.now-w.width || m > w.now+maxAheadMinutes || d.Value == 0 {
		return
	}
	mm := w.lastMinutes
	if mm == nil || m != w.lastMinute {
		if mm = w.minutes[m]; mm == nil {
			mm = map[bucket]int64{}
			w.minutes[m] = mm
		}
		w.lastMinute, w.lastMinutes = m, mm
	}
	mm[bucket{d.Metric, d.Cell}] += d.Value
	if m <= w.now {
		w.addTotal(d.Metric, d.Cell, d.Value)
	}
}

func (w *window) addTotal(metric uint32, cell uint64, v int64) {
	mw := w.lastWindow
	if mw == nil || metric != w.lastMetric {
		if mw = w.metrics[metric]; mw == nil {
			mw = &metricWindow{cells: map[uint64]*cellState{}}
			w.metrics[metric] = mw
		}
		w.lastMetric, w.lastWindow = metric, mw
	}
	st := mw.cells[cell]
	if st == nil {
		st = &cellState{}
		mw.cells[cell] = st
	}
	was := st.total != 0
	st.total += v
	if is := st.total != 0; is != was {
		if is {
			mw.nonzero++
		} else {
			mw.nonzero--
		}
	}
	st.change += v
	if !st.changed {
		st.changed = true
		mw.changed = append(mw.changed, cell)
	}
}

// advance moves the window's end to minute now: minutes falling out are
// subtracted from the totals, minutes held ahead that now fall in are
// added. A clock going back is ignored.
func (w *window) advance(now int64) {
	if now <= w.now {
		return
	}
	for m, mm := range w.minutes {
		was, is := w.inside(m, w.now), w.inside(m, now)
		switch {
		case was && !is:
			for b, v := range mm {
				w.addTotal(b.metric, b.cell, -v)
			}
		case !was && is:
			for b, v := range mm {
				w.addTotal(b.metric, b.cell, v)
			}
		}
		if m <= now-w.width {
			delete(w.minutes, m)
		}
	}
	w.lastMinutes = nil // its minute may be gone
	w.now = now
}
