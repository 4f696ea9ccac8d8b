package dashboard

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/flowd/flowd/geo"
	"github.com/uber/h3-go/v4"
)

// shapeKey is a distinct subscription: clients sharing one share frames.
type shapeKey struct {
	metric string
	res    int
	bbox   geo.BBox
}

// shape is the state of one distinct subscription: the cells its bbox
// covers, the values its frames have described, and this tick's frames,
// each encoded once for all its clients. It is touched by the tick loop
// under the hub's mutex.
type shape struct {
	key     shapeKey
	cells   []h3.Cell // sorted
	metric  uint32
	known   bool // metric resolved to an id
	loaded  bool // values read from the window
	values  map[h3.Cell]int64
	change  map[h3.Cell]int64 // scratch: this tick's change per cell
	clients int
	// deflaters counts the clients that agreed to permessage-deflate.
	deflaters int

	// seq numbers the shape's states: a diff frame takes seq-1 to seq, a
	// snapshot is seq. A client that sees a diff whose seq is not one more
	// than the last has missed a frame.
	seq  int64
	t    int64
	diff []byte // this tick's diff frame, nil when nothing changed
	full []byte // this tick's snapshot frame, made on demand
	// The same, compressed (permessage-deflate), made on demand.
	diffZ, fullZ []byte
}

// coverage is a bbox's cells being computed for the first client to ask;
// the others that ask meanwhile wait for it instead of computing them too.
type coverage struct {
	done  chan struct{}
	cells []h3.Cell
	err   error
}

// cellsOf returns the sorted cells of key's bbox at its res, computed once
// however many clients ask at the same moment: the screens of a control
// room reconnecting after a restart all ask for the same view.
func (h *Hub) cellsOf(key shapeKey) ([]h3.Cell, error) {
	h.mu.Lock()
	if s := h.shapes[key]; s != nil {
		h.mu.Unlock()
		return s.cells, nil
	}
	if cov := h.covering[key]; cov != nil {
		h.mu.Unlock()
		<-cov.done
		return cov.cells, cov.err
	}
	cov := &coverage{done: make(chan struct{})}
	h.covering[key] = cov
	h.mu.Unlock()
	// Covering a bbox costs up to a few hundred ms at fine resolutions:
	// done outside the lock so ticks go on meanwhile.
	cov.cells, cov.err = key.bbox.Cells(key.res, maxSubscriptionCells)
	h.mu.Lock()
	delete(h.covering, key)
	h.mu.Unlock()
	close(cov.done)
	return cov.cells, cov.err
}

func newShape(key shapeKey, cells []h3.Cell) *shape {
	return &shape{key: key, cells: cells, values: map[h3.Cell]int64{}, change: map[h3.Cell]int64{}}
}

func (s *shape) covers(c h3.Cell) bool {
	_, ok := slices.BinarySearch(s.cells, c)
	return ok
}

// parentCell returns the res ancestor of the cell id base (or base itself
// at its own res) from the id's bits, without a cgo call: the resolution
// field is set to res and the digits below it to 7 (unused).
func parentCell(base uint64, res int) h3.Cell {
	const resOffset, resMask, digitBits = 52, uint64(0xf) << 52, 3
	unused := uint64(1)<<(uint(geo.MaxRes-res)*digitBits) - 1
	return h3.Cell(base&^resMask | uint64(res)<<resOffset | unused)
}

// update brings the shape to this tick: read whole from the window the
// first time, afterwards only the window's changes, so a tick costs the
// cells that changed rather than every cell of the metric.
func (s *shape) update(h *Hub, t int64) {
	s.t, s.diff, s.full, s.diffZ, s.fullZ = t, nil, nil, nil, nil
	if !s.known {
		if s.metric, s.known = h.store.LookupMetric(s.key.metric); !s.known {
			return
		}
	}
	// Until its metric has data, a shape's state is empty; its first
	// change is then everything in the window.
	all := !s.loaded
	s.loaded = true
	h.win.eachChange(s.metric, all, func(base uint64, d int64) {
		if c := parentCell(base, s.key.res); s.covers(c) {
			s.change[c] += d
		}
	})
	var set, del []h3.Cell
	for c, d := range s.change {
		if d == 0 {
			continue
		}
		if v := s.values[c] + d; v != 0 {
			s.values[c] = v
			set = append(set, c)
		} else {
			delete(s.values, c)
			del = append(del, c)
		}
	}
	clear(s.change)
	if len(set)+len(del) > 0 {
		s.seq++
		s.diff = s.encode(false, set, del)
	}
}

// fullFrame returns this tick's snapshot frame, encoding it once.
func (s *shape) fullFrame() []byte {
	if s.full == nil {
		all := make([]h3.Cell, 0, len(s.values))
		for c := range s.values {
			all = append(all, c)
		}
		s.full = s.encode(true, all, nil)
	}
	return s.full
}

// frame returns this tick's diff frame, or its snapshot when full is
// set, compressed when deflate is; nil when there is no diff and full is
// not set. Each is made once a tick, however many clients get it.
func (s *shape) frame(full, deflate bool) []byte {
	switch {
	case !full && s.diff == nil:
		return nil
	case !full && !deflate:
		return s.diff
	case !full:
		if s.diffZ == nil {
			s.diffZ = deflateFrame(s.diff)
		}
		return s.diffZ
	case !deflate:
		return s.fullFrame()
	}
	if s.fullZ == nil {
		s.fullZ = deflateFrame(s.fullFrame())
	}
	return s.fullZ
}

// encode writes a cells frame (see docs/live-protocol.md).
func (s *shape) encode(full bool, set, del []h3.Cell) []byte {
	slices.Sort(set)
	slices.Sort(del)
	buf := newFrame(96 + len(s.key.metric) + len(set)*28 + len(del)*18)
	buf = append(buf, `{"type":"cells","t":`...)
	buf = strconv.AppendInt(buf, s.t, 10)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendInt(buf, s.seq, 10)
	if full {
		buf = append(buf, `,"full":true`...)
	}
	buf = append(buf, `,"res":`...)
	buf = strconv.AppendInt(buf, int64(s.key.res), 10)
	buf = append(buf, `,"metric":`...)
	name, err := json.Marshal(s.key.metric)
	if err != nil {
		panic("BUG: marshal a metric name: " + err.Error())
	}
	buf = append(buf, name...)
	buf = append(buf, `,"set":[`...)
	for i, c := range set {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `["`...)
		buf = strconv.AppendUint(buf, uint64(c), 16)
		buf = append(buf, `",`...)
		buf = strconv.AppendInt(buf, s.values[c], 10)
		buf = append(buf, ']')
	}
	buf = append(buf, `],"del":[`...)
	for i, c := range del {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = strconv.AppendUint(buf, uint64(c), 16)
		buf = append(buf, '"')
	}
	buf = append(buf, "]}"...)
	return sealFrame(buf, opText)
}
