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
type window struct {
	width   int64 // minutes
	now     int64 // the newest minute inside the window
	minutes map[int64]map[bucket]int64
	totals  map[uint32]map[uint64]int64 // metric -> base cell -> sum
	changes map[uint32]map[uint64]int64 // metric -> base cell -> change since settle
}

func newWindow(width, now int64) *window {
	return &window{width: width, now: now, minutes: map[int64]map[bucket]int64{},
		totals: map[uint32]map[uint64]int64{}, changes: map[uint32]map[uint64]int64{}}
}

// settle forgets the changes, once every shape has taken them.
func (w *window) settle() {
	for _, ch := range w.changes {
		clear(ch)
	}
}

// cells counts the buckets with a non-zero total.
func (w *window) cells() int {
	n := 0
	for _, t := range w.totals {
		n += len(t)
	}
	return n
}

func (w *window) inside(m, now int64) bool { return m > now-w.width && m <= now }

// add applies one delta by its own minute: inside the window it counts at
// once, a little ahead of the clock it waits, older it is dropped.
func (w *window) add(d storage.Delta) {
	m := d.Minute
	if m <= w.now-w.width || m > w.now+maxAheadMinutes || d.Value == 0 {
		return
	}
	mm := w.minutes[m]
	if mm == nil {
		mm = map[bucket]int64{}
		w.minutes[m] = mm
	}
	mm[bucket{d.Metric, d.Cell}] += d.Value
	if m <= w.now {
		w.addTotal(d.Metric, d.Cell, d.Value)
	}
}

func (w *window) addTotal(metric uint32, cell uint64, v int64) {
	t := w.totals[metric]
	if t == nil {
		t = map[uint64]int64{}
		w.totals[metric] = t
	}
	if s := t[cell] + v; s != 0 {
		t[cell] = s
	} else {
		delete(t, cell)
	}
	ch := w.changes[metric]
	if ch == nil {
		ch = map[uint64]int64{}
		w.changes[metric] = ch
	}
	ch[cell] += v
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
	w.now = now
}
