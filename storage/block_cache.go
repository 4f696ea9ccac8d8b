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
// readings; distinct-card registers) is kept compact (compactBlock), 8 to
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
		cb := e.Value.(*cachedBlock)
		c.ll.Remove(e)
		delete(c.items, cb.key)
		c.size -= cb.size
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
// 16 bits: its rows' keys as runs of one (metric, cell), their sub-keys in
// 16 bits (none when all are 0), their minutes in 32 bits, their values in
// 32 bits when every one fits (in 64 otherwise).
// Keeping the decoded columns took 32 bytes a row (40 with a metric
// column): a query's second answer, which fills the cache, spent most of
// its time mapping fresh memory for them, and a 256-MiB cache held a
// quarter as many rows.
type compactBlock struct {
	keys    []runKey
	ends    []int32  // ends[i] is the row after run i
	subs    []uint16 // nil when every sub-key is 0
	minutes []int32
	vals32  []int32 // the values, when all fit in 32 bits
	vals64  []int64 // otherwise
}

// runKey is the metric and cell of a run of rows.
type runKey struct {
	cell   uint64
	metric uint32
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
	runs := 0
	for i := range n {
		if newRun(i) {
			runs++
		}
	}
	fits := true
	for _, v := range b.values {
		if v != int64(int32(v)) {
			fits = false
			break
		}
	}
	c := &compactBlock{keys: make([]runKey, 0, runs), ends: make([]int32, 0, runs), minutes: make([]int32, n)}
	for i := range n {
		if newRun(i) {
			if i > 0 {
				c.ends = append(c.ends, int32(i))
			}
			m := h.First.Metric
			if mixed {
				m = uint32(b.metrics[i])
			}
			c.keys = append(c.keys, runKey{cell: uint64(b.cells[i]), metric: m})
		}
		c.minutes[i] = int32(b.minutes[i])
	}
	c.ends = append(c.ends, int32(n))
	if !zeroSubs {
		c.subs = make([]uint16, n)
		for i, sub := range b.subs {
			c.subs[i] = uint16(sub)
		}
	}
	if fits {
		c.vals32 = make([]int32, n)
		for i, v := range b.values {
			c.vals32[i] = int32(v)
		}
	} else {
		c.vals64 = append([]int64(nil), b.values...)
	}
	return c
}

// size is the memory c holds, about.
func (c *compactBlock) size() int64 {
	return int64(16*cap(c.keys)+4*cap(c.ends)+2*cap(c.subs)+4*cap(c.minutes)+4*cap(c.vals32)+8*cap(c.vals64)) + 128
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
	if out.sums != nil && out.step == 1 && c.subs == nil {
		// A run's minutes ascend (a part's rows are in key order, and
		// without sub-keys a run is one series): its rows in [from, to)
		// are found by two searches and summed without a test a row.
		f, t := int32(max(from, math.MinInt32)), int32(min(to, math.MaxInt32))
		for i := lo; i < hi; i++ {
			ms := c.minutes[c.start(i):c.ends[i]]
			a, e := 0, len(ms)
			if ms[0] < f || ms[len(ms)-1] >= t { // not all of the run
				a, _ = slices.BinarySearch(ms, f)
				e, _ = slices.BinarySearch(ms[a:], t)
			}
			a += c.start(i)
			if c.vals32 != nil {
				sumSorted(out.sums, from, c.minutes[a:a+e], c.vals32[a:a+e])
			} else {
				sumSorted(out.sums, from, c.minutes[a:a+e], c.vals64[a:a+e])
			}
		}
		return
	}
	if out.sums != nil && (c.subs == nil || !out.spread) {
		j, end := c.start(lo), c.start(hi)
		if c.vals32 != nil {
			sumRows(out.sums, out.step, from, to, c.minutes[j:end], c.vals32[j:end])
		} else {
			sumRows(out.sums, out.step, from, to, c.minutes[j:end], c.vals64[j:end])
		}
		return
	}
	for i := lo; i < hi; i++ {
		cell := c.keys[i].cell
		a, e := c.start(i), int(c.ends[i])
		if out.spread && c.subs != nil {
			if c.vals32 != nil {
				spreadRows(out, from, to, nil, cell, c.subs[a:e], c.minutes[a:e], c.vals32[a:e])
			} else {
				spreadRows(out, from, to, nil, cell, c.subs[a:e], c.minutes[a:e], c.vals64[a:e])
			}
			continue
		}
		// Here out.sums is nil: a sum with sub-keys is a spread one.
		var subs []uint16
		if c.subs != nil {
			subs = c.subs[a:e]
		}
		if c.vals32 != nil {
			eachRow(out.fn, cell, subs, c.minutes[a:e], c.vals32[a:e], from, to)
		} else {
			eachRow(out.fn, cell, subs, c.minutes[a:e], c.vals64[a:e], from, to)
		}
	}
}

// sumSorted adds values[k] into sums[minutes[k]-from], every minute in
// [from, from+len(sums)).
func sumSorted[V int32 | int64](sums []int64, from int64, minutes []int32, values []V) {
	values = values[:len(minutes)]
	for k, m := range minutes {
		i := int64(m) - from
		sums[i] = SatAdd(sums[i], int64(values[k]))
	}
}

// eachRow calls fn for the rows of a run of cell whose minutes lie in
// [from, to), with their sub-keys (all 0 when subs is nil).
func eachRow[V int32 | int64](fn func(cell, sub uint64, minute, value int64), cell uint64, subs []uint16, minutes []int32, values []V, from, to int64) {
	if subs == nil {
		for k, m32 := range minutes {
			if m := int64(m32); m >= from && m < to {
				fn(cell, 0, m, int64(values[k]))
			}
		}
		return
	}
	for k, m32 := range minutes {
		if m := int64(m32); m >= from && m < to {
			fn(cell, uint64(subs[k]), m, int64(values[k]))
		}
	}
}
