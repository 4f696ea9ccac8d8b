package storage

import (
	"container/list"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/flowd/flowd/vocab"
)

// blockCache keeps recently decoded blocks of parts, so that a query asked
// again (a dashboard refreshing, a planner stepping through a day) walks
// the rows without reading and decoding them again. Cached blocks are
// immutable and shared by the scans that use them. It is bounded by the
// bytes it keeps, least recently used out first. A block is kept from its
// second read on: a one-off scan of a long history costs no copies and
// does not flush what repeated queries use. A block whose sub-keys fit in
// 16 bits (counts, speeds and footfall, with their runs of spread
// readings; distinct-card registers) is kept compact (compactBlock), 4 to
// 14 bytes a row; others (trips, keyed by destination cell) as their
// decoded columns, 32 to 40.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List // of *cachedBlock, most recently used first
	items map[blockKey]*list.Element
	seen  map[blockKey]bool // read once, not cached yet
}

// maxSeen bounds the blocks remembered as read once.
const maxSeen = 1 << 16

// blockKey names a block of one opened part; a merged-away part's blocks
// are never asked for again and age out.
type blockKey struct {
	p     *part
	block int
}

type cachedBlock struct {
	key  blockKey
	blk  *block        // the decoded columns, or
	cb   *compactBlock // the block compact
	size int64
}

func newBlockCache(maxBytes int64) *blockCache {
	if maxBytes <= 0 {
		return nil
	}
	return &blockCache{max: maxBytes, ll: list.New(), items: map[blockKey]*list.Element{}, seen: map[blockKey]bool{}}
}

// get returns the cached block k (its decoded columns or its compact
// form), or neither and whether a block read now should be put: true from
// its second read on.
func (c *blockCache) get(k blockKey) (*block, *compactBlock, bool) {
	if c == nil {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		if c.seen[k] {
			delete(c.seen, k)
			return nil, nil, true
		}
		if len(c.seen) >= maxSeen {
			clear(c.seen)
		}
		c.seen[k] = true
		return nil, nil, false
	}
	c.ll.MoveToFront(e)
	cb := e.Value.(*cachedBlock)
	return cb.blk, cb.cb, false
}

// put keeps the decoded columns of block k.
func (c *blockCache) put(k blockKey, blk *block) {
	if c != nil {
		c.keep(&cachedBlock{key: k, blk: blk, size: int64(8 * (cap(blk.metrics) + cap(blk.cells) + cap(blk.subs) + cap(blk.minutes) + cap(blk.values)))})
	}
}

// putCompact keeps block k compact.
func (c *blockCache) putCompact(k blockKey, cb *compactBlock) {
	if c != nil {
		c.keep(&cachedBlock{key: k, cb: cb, size: cb.size()})
	}
}

// keep adds cb, least recently used blocks out as far as its size needs.
func (c *blockCache) keep(cb *cachedBlock) {
	k, size := cb.key, cb.size
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok || size > c.max {
		return
	}
	c.items[k] = c.ll.PushFront(cb)
	c.size += size
	for c.size > c.max {
		e := c.ll.Back()
		old := e.Value.(*cachedBlock)
		c.ll.Remove(e)
		delete(c.items, old.key)
		c.size -= old.size
	}
}

// bytes returns the cache's current size.
func (c *blockCache) bytes() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// A compactBlock is a block as the cache keeps it when its sub-keys fit in
// 16 bits: its rows' keys as runs of one (metric, cell); their sub-keys
// in 16 bits (none when all are 0); their minutes in 16 bits from their
// run's base when every run spans less than 2^16 minutes (45 days), in 32
// otherwise; their values in 16 bits when every one lies in [0, 2^16), in
// 32 or 64 otherwise. Keeping the decoded columns took 32 bytes a row (40
// with a metric column): a query's second answer, which fills the cache,
// spent most of its time mapping fresh memory for them, and a 256-MiB
// cache held an eighth as many rows.
type compactBlock struct {
	keys  []runKey
	ends  []int32  // ends[i] is the row after run i
	subs  []uint16 // nil when every sub-key is 0
	min16 []uint16 // the minutes less their run's base, or
	min32 []int32  // the minutes (every base 0)
	val16 []uint16 // the values, in the narrowest of the three
	val32 []int32
	val64 []int64
}

// runKey is the metric and cell of a run of rows, and the base of its
// minutes.
type runKey struct {
	cell   uint64
	metric uint32
	base   int32
}

// compactOf returns block b, with header h, compact; nil when its
// sub-keys do not fit in 16 bits or its minutes in 32.
func compactOf(b *block, h *blockHeader) *compactBlock {
	n := b.len()
	if n == 0 || h.MinMinute < math.MinInt32 || h.MaxMinute > math.MaxInt32 {
		return nil
	}
	zeroSubs := subsAllZero(h)
	if !zeroSubs {
		for _, sub := range b.subs {
			if uint64(sub) > math.MaxUint16 {
				return nil
			}
		}
	}
	mixed := len(b.metrics) > 0
	newRun := func(i int) bool {
		return i == 0 || b.cells[i] != b.cells[i-1] || mixed && b.metrics[i] != b.metrics[i-1]
	}
	// The runs, each's first minute as its base (its least, when sub-keys
	// order its rows), and whether every run spans under 2^16 minutes.
	c := &compactBlock{}
	narrow := true
	lo, hi := int64(0), int64(0)
	for i := range n {
		m := b.minutes[i]
		if newRun(i) {
			if i > 0 {
				c.ends = append(c.ends, int32(i))
				c.keys[len(c.keys)-1].base = int32(lo)
				narrow = narrow && hi-lo <= math.MaxUint16
			}
			metric := h.First.Metric
			if mixed {
				metric = uint32(b.metrics[i])
			}
			c.keys = append(c.keys, runKey{cell: uint64(b.cells[i]), metric: metric})
			lo, hi = m, m
		}
		lo, hi = min(lo, m), max(hi, m)
	}
	c.ends = append(c.ends, int32(n))
	c.keys[len(c.keys)-1].base = int32(lo)
	narrow = narrow && hi-lo <= math.MaxUint16
	c.keys, c.ends = slices.Clip(c.keys), slices.Clip(c.ends)
	if narrow {
		c.min16 = make([]uint16, n)
		for i := range c.keys {
			base := int64(c.keys[i].base)
			for k := c.start(i); k < int(c.ends[i]); k++ {
				c.min16[k] = uint16(b.minutes[k] - base)
			}
		}
	} else {
		for i := range c.keys {
			c.keys[i].base = 0
		}
		c.min32 = make([]int32, n)
		for k, m := range b.minutes {
			c.min32[k] = int32(m)
		}
	}
	if !zeroSubs {
		c.subs = make([]uint16, n)
		for i, sub := range b.subs {
			c.subs[i] = uint16(sub)
		}
	}
	w16, w32 := true, true
	for _, v := range b.values {
		w16 = w16 && v >= 0 && v <= math.MaxUint16
		w32 = w32 && v == int64(int32(v))
	}
	switch {
	case w16:
		c.val16 = make([]uint16, n)
		for i, v := range b.values {
			c.val16[i] = uint16(v)
		}
	case w32:
		c.val32 = make([]int32, n)
		for i, v := range b.values {
			c.val32[i] = int32(v)
		}
	default:
		c.val64 = append([]int64(nil), b.values...)
	}
	return c
}

// size is the memory c holds, about.
func (c *compactBlock) size() int64 {
	return int64(16*cap(c.keys)+4*cap(c.ends)+2*cap(c.subs)+2*cap(c.min16)+4*cap(c.min32)+2*cap(c.val16)+4*cap(c.val32)+8*cap(c.val64)) + 192
}

// start returns the first row of run i (len(c.keys) for the end).
func (c *compactBlock) start(i int) int {
	if i == 0 {
		return 0
	}
	return int(c.ends[i-1])
}

// runsOf returns the runs [lo, hi) of c holding metric in cell range r.
func (c *compactBlock) runsOf(metric uint32, r vocab.CellRange) (lo, hi int) {
	lo = sort.Search(len(c.keys), func(i int) bool {
		k := c.keys[i]
		return k.metric > metric || k.metric == metric && k.cell >= r.Lo
	})
	hi = lo + sort.Search(len(c.keys)-lo, func(i int) bool {
		k := c.keys[lo+i]
		return k.metric > metric || k.metric == metric && k.cell > r.Hi
	})
	return lo, hi
}

// walk hands the rows of c holding metric in cell range r, of minutes in
// [from, to), to out, as part.walk hands a decoded block's.
func (c *compactBlock) walk(metric uint32, r vocab.CellRange, from, to int64, out *rowSink) {
	lo, hi := c.runsOf(metric, r)
	if lo == hi {
		return
	}
	switch {
	case c.min16 != nil && c.val16 != nil:
		walkCompact(c, c.min16, c.val16, lo, hi, from, to, out)
	case c.min16 != nil && c.val32 != nil:
		walkCompact(c, c.min16, c.val32, lo, hi, from, to, out)
	case c.min16 != nil:
		walkCompact(c, c.min16, c.val64, lo, hi, from, to, out)
	case c.val16 != nil:
		walkCompact(c, c.min32, c.val16, lo, hi, from, to, out)
	case c.val32 != nil:
		walkCompact(c, c.min32, c.val32, lo, hi, from, to, out)
	default:
		walkCompact(c, c.min32, c.val64, lo, hi, from, to, out)
	}
}

// walkCompact is walk over runs [lo, hi) of c, whose minutes (less each
// run's base) and values are these.
func walkCompact[M uint16 | int32, V uint16 | int32 | int64](c *compactBlock, minutes []M, values []V, lo, hi int, from, to int64, out *rowSink) {
	for i := lo; i < hi; i++ {
		k := c.keys[i]
		a, e := c.start(i), int(c.ends[i])
		ms, vs, base := minutes[a:e], values[a:e], int64(k.base)
		switch {
		case out.sums != nil && out.step == 1 && c.subs == nil:
			// A run's minutes ascend (a part's rows are in key order, and
			// without sub-keys a run is one series): its rows in [from,
			// to) are found by two searches and summed without a test a
			// row.
			f, t := 0, len(ms)
			if base+int64(ms[0]) < from || base+int64(ms[len(ms)-1]) >= to { // not all of the run
				f = sort.Search(len(ms), func(j int) bool { return base+int64(ms[j]) >= from })
				t = f + sort.Search(len(ms)-f, func(j int) bool { return base+int64(ms[f+j]) >= to })
			}
			sumSorted(out.sums, from-base, ms[f:t], vs[f:t])
		case out.sums != nil && (c.subs == nil || !out.spread):
			sumRows(out.sums, out.step, from, to, base, ms, vs)
		case out.spread && c.subs != nil:
			spreadRows(out, from, to, nil, k.cell, base, c.subs[a:e], ms, vs)
		case c.subs != nil: // out.sums is nil: a sum with sub-keys is a spread one
			eachRow(out.fn, k.cell, base, c.subs[a:e], ms, vs, from, to)
		default:
			eachRow(out.fn, k.cell, base, nil, ms, vs, from, to)
		}
	}
}

// sumSorted adds values[k] into sums[minutes[k]-from], every minute in
// [from, from+len(sums)).
func sumSorted[M uint16 | int32, V uint16 | int32 | int64](sums []int64, from int64, minutes []M, values []V) {
	values = values[:len(minutes)]
	for k, m := range minutes {
		i := int64(m) - from
		sums[i] = SatAdd(sums[i], int64(values[k]))
	}
}

// eachRow calls fn for the rows of a run of cell whose minutes (base +
// minutes[k]) lie in [from, to), with their sub-keys (all 0 when subs is
// nil).
func eachRow[M uint16 | int32, V uint16 | int32 | int64](fn func(cell, sub uint64, minute, value int64), cell uint64, base int64, subs []uint16, minutes []M, values []V, from, to int64) {
	values = values[:len(minutes)]
	if subs == nil {
		for k, mm := range minutes {
			if m := base + int64(mm); m >= from && m < to {
				fn(cell, 0, m, int64(values[k]))
			}
		}
		return
	}
	subs = subs[:len(minutes)]
	for k, mm := range minutes {
		if m := base + int64(mm); m >= from && m < to {
			fn(cell, uint64(subs[k]), m, int64(values[k]))
		}
	}
}
