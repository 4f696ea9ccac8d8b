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
// A delta costs one map lookup: its cell's state in its metric, which
// holds the cell's total, its change since the last settle and its
// minutes' sums, a ring of the minutes the window holds (those inside it
// and those up to maxAheadMinutes ahead of it). A batch's deltas come in
// runs of one metric, whose map is looked up once a run.
type window struct {
	width   int64 // minutes
	now     int64 // the newest minute inside the window
	ring    int64 // minutes held: width + maxAheadMinutes
	metrics map[uint32]*metricWindow

	// The last delta's metric and its cells.
	lastMetric uint32
	lastWindow *metricWindow
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
	// mins holds the sum of each minute held, minute m at m mod ring.
	mins []int64
}

func newWindow(width, now int64) *window {
	return &window{width: width, now: now, ring: width + maxAheadMinutes, metrics: map[uint32]*metricWindow{}}
}

// slot is the place of minute m in a cell's ring.
func (w *window) slot(m int64) int64 {
	i := m % w.ring
	if i < 0 {
		i += w.ring
	}
	return i
}

// settle forgets the changes, once every shape has taken them, and the
// cells that hold nothing any more.
func (w *window) settle() {
	for _, mw := range w.metrics {
		for _, c := range mw.changed {
			if st := mw.cells[c]; st != nil {
				st.change, st.changed = 0, false
				if st.empty() {
					delete(mw.cells, c)
				}
			}
		}
		mw.changed = mw.changed[:0]
	}
}

// empty reports whether the cell holds nothing: no total, no minute.
func (st *cellState) empty() bool {
	if st.total != 0 {
		return false
	}
	for _, v := range st.mins {
		if v != 0 {
			return false
		}
	}
	return true
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

// add applies one delta by its own minute: inside the window it counts at
// once, a little ahead of the clock it waits, older it is dropped.
func (w *window) add(d storage.Delta) {
	m := d.Minute
	if m <= w.now-w.width || m > w.now+maxAheadMinutes || d.Value == 0 {
		return
	}
	mw := w.lastWindow
	if mw == nil || d.Metric != w.lastMetric {
		if mw = w.metrics[d.Metric]; mw == nil {
			mw = &metricWindow{cells: map[uint64]*cellState{}}
			w.metrics[d.Metric] = mw
		}
		w.lastMetric, w.lastWindow = d.Metric, mw
	}
	st := mw.cells[d.Cell]
	if st == nil {
		st = &cellState{mins: make([]int64, w.ring)}
		mw.cells[d.Cell] = st
	}
	st.mins[w.slot(m)] += d.Value
	if m <= w.now {
		mw.addTotal(d.Cell, st, d.Value)
	}
}

// addTotal adds v to the total of cell, whose state is st.
func (mw *metricWindow) addTotal(cell uint64, st *cellState, v int64) {
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
// subtracted from the totals and their places in the rings freed, minutes
// held ahead that now fall in are added. A clock going back is ignored.
func (w *window) advance(now int64) {
	if now <= w.now {
		return
	}
	for _, mw := range w.metrics {
		for c, st := range mw.cells {
			for m := w.now - w.width + 1; m <= w.now+maxAheadMinutes; m++ {
				i := w.slot(m)
				v := st.mins[i]
				if v == 0 {
					continue
				}
				was, is := m <= w.now, m > now-w.width && m <= now
				switch {
				case was && !is:
					mw.addTotal(c, st, -v)
				case !was && is:
					mw.addTotal(c, st, v)
				}
				if m <= now-w.width {
					st.mins[i] = 0
				}
			}
			if !st.changed && st.empty() {
				delete(mw.cells, c)
			}
		}
	}
	w.now = now
}
