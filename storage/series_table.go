package storage

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/flowd/flowd/internal/prefetch"
	"github.com/flowd/flowd/vocab"
)

// SeriesKey identifies a series of buckets: a metric at a base-resolution
// cell with a sub-key (see Key).
type SeriesKey struct {
	Metric uint32
	Cell   uint64
	Sub    uint64
}

func (a SeriesKey) compare(b SeriesKey) int {
	switch {
	case a.Metric != b.Metric:
		return cmpUint(uint64(a.Metric), uint64(b.Metric))
	case a.Cell != b.Cell:
		return cmpUint(a.Cell, b.Cell)
	}
	return cmpUint(a.Sub, b.Sub)
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// hash mixes the key's words; the low bits pick a slot, the high bits are
// kept in the slot to tell keys apart without reading them.
func (k SeriesKey) hash() uint64 {
	h := k.Cell*0x9e3779b97f4a7c15 ^ (k.Sub+uint64(k.Metric)<<40)*0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>32
}

// point is one bucket addition of a series. Minutes are unix minutes,
// which int32 holds until the year 6053; ingest accepts only the years 2000
// to 2100. The value is kept as two 32-bit halves so that a point takes 16
// bytes with v2, not 24.
//
// v2 is a second value, added at the same minute to another series of the
// same cell and sub-key: a count's speed sum (series.second names its
// metric), 0 for none. A batch's rows (Batch.AddPairRecent) and the
// memtable (addRow) keep a class's speed sums there rather than in series
// of their own: 40 % of the city's buckets, and half of a detector feed's,
// then cost no series, no lookup, no chunks and no cache lines of their
// own. Only values from 1 to 2^32-1 go there; others, and any addition v2
// cannot hold, go to the second's own series.
type point struct {
	minute int32
	lo, hi uint32
	v2     uint32
}

func mkPoint(minute int32, v int64) point {
	return point{minute: minute, lo: uint32(v), hi: uint32(uint64(v) >> 32)}
}

// val is the point's value.
func (p *point) val() int64 { return int64(uint64(p.lo) | uint64(p.hi)<<32) }

func (p *point) setVal(v int64) { p.lo, p.hi = uint32(v), uint32(uint64(v)>>32) }

// chunk is a run of consecutive points of one series in the points arena,
// chained to the series' next chunk. A series' chunks double in size up to
// maxChunk points, so reading a series touches few places in memory while
// a series of one point wastes none.
type chunk struct {
	start, n, cap int32
	next          int32 // index of the series' next chunk, or -1
}

// maxChunk bounds the points of one chunk. A series' last chunk is on
// average half empty: at 64 (before), a memtable of the bench's city held
// 547,000 points in 12 MiB, at 16 about 660,000 (a fifth fewer flushes and
// merges for the same memory); reading a chunk of 16 is three cache lines,
// and BenchmarkFlushParts and BenchmarkMemtableEach did not get slower.
const maxChunk = 16

// The points arena is made of pages of pageSize points that never move: a
// growing table allocates a page, never copies one. A chunk lies within one
// page. Pages go back to a free list when their table is reset, so a
// memtable fills the pages the previous one flushed.
const (
	pageBits = 12
	pageSize = 1 << pageBits
)

type pointPage [pageSize]point

func newPointPage() *pointPage { return pointPages.get() }

// appendMapped appends v to s; when s is full it grows as append grows it,
// into memory mapped in one system call (prefault) rather than a fault a
// page while the old contents are copied and the rest cleared: a
// memtable's series and chunk lists grow to megabytes, fresh from the
// system on its first fill. Small enough to be inlined: the growth is a
// call of its own.
func appendMapped[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = growMapped(s)
	}
	return append(s, v)
}

// growMapped returns s with room for more, its new memory mapped.
func growMapped[T any](s []T) []T {
	c := cap(s)
	n := make([]T, c, max(64, c+(c+3*256)/4))
	prefault(n)
	copy(n, s)
	return n
}

// series is one series of a seriesTable: its key and its chunks of points
// in the order they were added.
type series struct {
	key        SeriesKey
	head, tail int32 // first and last chunk, -1 when none
	// The last chunk's start, points and room, kept here too so that
	// adding a point reads the series and its last point, not the chunk.
	tailStart      int32
	tailN, tailCap uint8 // at most maxChunk
	points         int32
	// The last point's minute, so that adding a point of another minute
	// only writes to the points arena and never waits to read it.
	lastMinute int32
	isMax      bool
	spread     bool // its points are runs of spread readings, packed (see spread.go)
	// unordered is set once a point was added before the one added last,
	// so that a flush knows, without reading them, which series to sort.
	unordered bool
	// unindexed is set for a series added outside the table's index
	// (appendUnindexed): lookups do not find it, nor does growing the
	// index add it.
	unindexed bool
	// pair is, in a memtable, the index + 1 of the series of its second
	// values that its points could not hold (ownSecond), 0 for none: found
	// by one lookup, then kept.
	pair int32
	// second is the metric + 1 of the values its points hold in v2 (a
	// series of the same cell and sub-key), 0 for none.
	second uint32
	// points2 is the number of its points holding a second value.
	points2 int32
}

// seriesTable holds bucket additions grouped by series: an open-addressing
// index of series keys, and the points of all series in one arena of
// fixed-width values without pointers, so that adding a point allocates
// nothing in steady state and the garbage collector never scans it. A point
// whose minute equals its series' last point is combined into it, so a
// stream of additions to the current minute keeps one point.
//
// It is the unit of ingest: one request's additions (a Batch), a WAL
// record, and a shard of the memtable are each a seriesTable.
type seriesTable struct {
	slots  []uint64 // see slotOf; len is a power of two
	series []series
	chunks []chunk
	pages  []*pointPage
	used   int // points of the last page in use, or taken by chunks
	npts   int // points held
	// indexed is the number of series in the index: all but those
	// appendUnindexed added.
	indexed int
	// byMetric lists the series of each metric, for scans; kept only when
	// indexMetrics is set (memtables, not batches).
	byMetric     map[uint32][]int32
	indexMetrics bool
	// seconds counts the series holding second values (listSecond),
	// npts2 the points holding one.
	seconds, npts2 int
	// rows are a batch's readings outside its series (Batch.AddPairRecent)
	// in the order they came; rowSeconds is the number of those holding a
	// second value. They are one list, written in order, not one a
	// memtable shard: a request's rows written to sixteen lists at once
	// waited for memory at nearly every row (43 ns a row in the server,
	// against 11 on a cold cache in BenchmarkBatchAddRowCold), the
	// memtable finding each shard's rows by their indexes instead
	// (addTable). Only a batch's table has rows; the memtable (addRows)
	// and the deltas take each as a series of one point, a WAL record
	// (recordRows2) holds them as they are.
	rows       []row
	rowSeconds int
}

// row is one bucket addition of a reading, and its second value: a
// request of readings where each sensor comes once costs a row a
// reading, 48 bytes written once in order, rather than a series, a chunk
// and a point (96 bytes in three places) that the WAL record and the
// memtable then read back from three places too. A row of a run of
// spread readings (Batch.AddRunPairRecent) has the key of its metric's
// spread series (sub-key spreadSub), its value packed with its length
// (packSpread) and its second value the pair's sum over the same minutes.
type row struct {
	key    SeriesKey
	minute int32
	// second is the metric + 1 of v2 (see point.v2), 0 for none.
	second uint32
	v      int64
	v2     uint32
}

// A sketch (vocab.Sketch: the registers of a distinct-card HyperLogLog)
// has a bucket per register, the register being the key's Sub, and nearly
// every card of a request touches another register. Rather than a series
// per register, a seriesTable keeps one series per (metric, cell), its Sub
// 0, with each point's register packed into its value above the register's
// 8-bit value: a swipe then costs a point, not a series. addKey packs;
// scans, deltas and flushes unpack (see unpackRegister).
const registerBits = 8

// maxRegister bounds a sketch's registers (HyperLogLog's precision is far
// below), so that a register, a minute (32 bits) and a value fit a word.
const maxRegister = 1 << (64 - 32 - registerBits)

// packRegister packs register sub and its value v into a point value. A
// sub of 0 leaves v as it is: register 0, or a value already packed (a WAL
// record of a sketch series).
func packRegister(sub uint64, v int64) int64 {
	if sub == 0 {
		return v
	}
	return int64(sub)<<registerBits | v&(1<<registerBits-1)
}

// unpackRegister splits a sketch point's value into its register and the
// register's value.
func unpackRegister(v int64) (sub uint64, value int64) {
	return uint64(v) >> registerBits, v & (1<<registerBits - 1)
}

// minSlots is the index size a table starts with.
const minSlots = 64

// MinuteInRange reports whether a unix minute fits a point.
func MinuteInRange(m int64) bool { return m >= 0 && m <= math.MaxInt32 }

// A slot holds a series' index + 1 in its high half and the high half of
// the key's hash (whose low bits choose the slot) in its low half, so that a probe touches a series only when
// their hashes agree; 0 is an empty slot. The index is kept at most half
// full.
func slotOf(idx int32, h uint64) uint64 { return uint64(idx+1)<<32 | h>>32 }

// lookup returns the index of the series with key k, whose hash is h
// (k.hash(): a caller looking up many keys hashes each once, see
// addList), adding it if new; isMax and spread describe a new one.
func (t *seriesTable) lookup(k SeriesKey, h uint64, isMax, spread bool) int32 {
	if len(t.slots) == 0 {
		t.slots = make([]uint64, minSlots)
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := t.slots[i]
		if sl == 0 {
			return t.insert(i, k, h, isMax, spread)
		}
		if uint32(sl) == uint32(h>>32) {
			if idx := int32(sl>>32) - 1; t.series[idx].key == k {
				return idx
			}
		}
	}
}

// addKey adds v to minute of the series k; a sketch's register goes into
// the point (see registerBits). The minute must be in range.
func (t *seriesTable) addKey(k SeriesKey, isMax bool, minute, v int64) {
	if isMax {
		v = packRegister(k.Sub, v)
		k.Sub = 0
	}
	t.add(t.lookup(k, k.hash(), isMax, false), minute, v)
}

// insert adds the series k at the empty slot i.
func (t *seriesTable) insert(i uint64, k SeriesKey, h uint64, isMax, spread bool) int32 {
	idx := int32(len(t.series))
	t.series = appendMapped(t.series, series{key: k, head: -1, tail: -1, isMax: isMax, spread: spread})
	t.slots[i] = slotOf(idx, h)
	t.listByMetric(k.Metric, idx)
	if t.indexed++; t.indexed*2 > len(t.slots) {
		t.grow()
	}
	return idx
}

// listByMetric lists series idx under its metric, in a table that keeps
// such lists.
func (t *seriesTable) listByMetric(metric uint32, idx int32) {
	if t.indexMetrics {
		if t.byMetric == nil {
			t.byMetric = map[uint32][]int32{}
		}
		t.byMetric[metric] = append(t.byMetric[metric], idx)
	}
}

// listSecond lists the second values of series idx under their metric,
// as the bitwise complement of idx, in a table that keeps such lists.
func (t *seriesTable) listSecond(metric uint32, idx int32) {
	t.listByMetric(metric, ^idx)
	t.seconds++
}

// appendUnindexed adds a series of sums with key k outside the index,
// whether or not the table has one of that key already, and returns it.
// Every reader of a table but lookup takes two series of one key as one
// whose points are both's (a memtable and a WAL record add a batch's
// series one after another to series they look up).
func (t *seriesTable) appendUnindexed(k SeriesKey) int32 {
	idx := int32(len(t.series))
	if ahead := int(idx) + 8; idx%4 == 0 && ahead+3 < cap(t.series) {
		// A batch of a feed naming a sensor a line appends a series a
		// line, each a cache line of its own, where the batch before
		// left them long ago: the lines of the series 8 to 11 ahead are
		// asked for every fourth series, so that writing one does not
		// wait to read its line first. BucketCountsNDJSON 155 -> 131
		// cpu-ns an event, BucketCountsCSV 132 -> 117 (medians of five
		// alternated pairs).
		full := t.series[:cap(t.series)]
		addrs := [4]uintptr{prefetch.Addr(&full[ahead]), prefetch.Addr(&full[ahead+1]), prefetch.Addr(&full[ahead+2]), prefetch.Addr(&full[ahead+3])}
		prefetch.Lines(addrs[:])
	}
	t.series = appendMapped(t.series, series{key: k, head: -1, tail: -1, unindexed: true})
	t.listByMetric(k.Metric, idx)
	return idx
}

func (t *seriesTable) grow() {
	slots := make([]uint64, len(t.slots)*2)
	prefault(slots)
	mask := uint64(len(slots) - 1)
	for idx := range t.series {
		if t.series[idx].unindexed {
			continue
		}
		h := t.series[idx].key.hash()
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = slotOf(int32(idx), h)
	}
	t.slots = slots
}

// add adds v to minute of series s: into its last point when that holds
// the same minute (and, in a sketch, the same register), as a new point
// otherwise. The minute must be in range (MinuteInRange).
func (t *seriesTable) add(s int32, minute int64, v int64) {
	se := &t.series[s]
	m := int32(minute)
	size := int32(1)
	if se.tail >= 0 {
		page := t.pages[se.tailStart>>pageBits]
		off := se.tailStart&(pageSize-1) + int32(se.tailN)
		if se.lastMinute == m {
			last := &page[off-1]
			switch {
			case se.spread:
				if last.val()&(1<<spreadLenBits-1) == v&(1<<spreadLenBits-1) {
					last.setVal(addSpread(last.val(), v))
					return
				}
			case !se.isMax || last.val()>>registerBits == v>>registerBits:
				last.setVal(combine(se.isMax, last.val(), v))
				return
			}
		}
		se.unordered = se.unordered || m < se.lastMinute
		se.lastMinute = m
		if se.tailN < se.tailCap {
			page[off] = mkPoint(m, v)
			se.tailN++
			se.points++
			t.npts++
			return
		}
		size = min(int32(se.tailCap)*2, maxChunk)
	}
	se.lastMinute = m
	if len(t.pages) == 0 || t.used+int(size) > pageSize {
		if len(t.pages) >= math.MaxInt32>>pageBits || len(t.chunks) >= math.MaxInt32 {
			panic("BUG: a series table of 2^31 points")
		}
		t.pages = append(t.pages, newPointPage())
		t.used = 0
	}
	start := int32((len(t.pages)-1)<<pageBits + t.used)
	t.used += int(size)
	ci := int32(len(t.chunks))
	t.pages[len(t.pages)-1][start&(pageSize-1)] = mkPoint(m, v)
	t.chunks = appendMapped(t.chunks, chunk{start: start, n: 1, cap: size, next: -1})
	if se.tail >= 0 {
		t.chunks[se.tail].n, t.chunks[se.tail].next = int32(se.tailN), ci
	} else {
		se.head = ci
	}
	se.tail, se.tailStart, se.tailN, se.tailCap = ci, start, 1, uint8(size)
	se.points++
	t.npts++
}

// addPair adds v to minute of series s, a series of sums, and v2 (1 to
// 2^32-1, or 0 for none) to the second value there. It reports false,
// having added neither, when v2 cannot be combined into the series' last
// point (the sum would pass 32 bits). In a spread series v is a run
// packed with its length (packSpread) and v2 the sum of the second values
// over the same minutes; a run is combined into the last point only when
// that is a run of the same minute and length.
func (t *seriesTable) addPair(s int32, minute int64, v int64, v2 uint32) bool {
	se := &t.series[s]
	m := int32(minute)
	if se.tail >= 0 && se.lastMinute == m {
		page := t.pages[se.tailStart>>pageBits]
		last := &page[se.tailStart&(pageSize-1)+int32(se.tailN)-1]
		if !se.spread || (last.val()^v)&(1<<spreadLenBits-1) == 0 {
			if uint64(last.v2)+uint64(v2) > math.MaxUint32 {
				return false
			}
			if se.spread {
				last.setVal(addSpread(last.val(), v))
			} else {
				last.setVal(SatAdd(last.val(), v))
			}
			if last.v2 == 0 && v2 != 0 {
				t.npts2++
				se.points2++
			}
			last.v2 += v2
			return true
		}
	}
	t.add(s, minute, v)
	se = &t.series[s]
	t.pages[se.tailStart>>pageBits][se.tailStart&(pageSize-1)+int32(se.tailN)-1].v2 = v2
	if v2 != 0 {
		t.npts2++
		se.points2++
	}
	return true
}

// appendSecond appends the second values of series s's points as points
// of their own, leaving out the points without one; a spread series' as
// runs, packed with their points' lengths.
func (t *seriesTable) appendSecond(dst []point, s int32) []point {
	se := &t.series[s]
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = t.chunkAt(se, c)
		for _, pt := range run {
			if pt.v2 == 0 {
				continue
			}
			v := int64(pt.v2)
			if se.spread {
				n, _ := unpackSpread(pt.val())
				v = packSpread(n, v)
			}
			dst = append(dst, mkPoint(pt.minute, v))
		}
	}
	return dst
}

// chunkAt returns the points of chunk c of series se, where they start in
// the points arena, and the series' next chunk (-1 after the last). The
// last chunk's length is kept in the series alone (add does not write it
// to the chunk, whose n is set when the next chunk starts), and its place
// too, so a series of one chunk is read without its chunk.
func (t *seriesTable) chunkAt(se *series, c int32) (run []point, start, next int32) {
	if c == se.tail {
		start = se.tailStart
		off := start & (pageSize - 1)
		return t.pages[start>>pageBits][off : off+int32(se.tailN)], start, -1
	}
	ch := &t.chunks[c]
	off := ch.start & (pageSize - 1)
	return t.pages[ch.start>>pageBits][off : off+ch.n], ch.start, ch.next
}

// at returns the point at place pos of the points arena.
func (t *seriesTable) at(pos uint32) *point {
	return &t.pages[pos>>pageBits][pos&(pageSize-1)]
}

// appendPoints appends the points of series s, in the order they were
// added, to dst.
func (t *seriesTable) appendPoints(dst []point, s int32) []point {
	se := &t.series[s]
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = t.chunkAt(se, c)
		dst = append(dst, run...)
	}
	return dst
}

// aheadGroup is how many series of a batch addList asks for at once.
const aheadGroup = 16

// addList adds the series list of src to t, as addSeries does one by one.
// A batch of a feed naming many sensors looks up series all over a large
// table: each lookup would wait for memory three times in turn (the
// index slot, the series it names, its last point). addList asks for them
// ahead instead (see package prefetch), in groups of aheadGroup: the
// index slots of the group after next, and for the next group the series
// those slots name and the group's points in src. The lines arrive while
// the group before them is added.
//
// Asking for the series' last points a third group ahead was measured
// too: slower on a warm table, and no faster through the pipeline
// (BENCH.md, "Twenty-fifth session").
func (t *seriesTable) addList(src *seriesTable, list []int32, tr Tier) {
	const g = aheadGroup
	var addrs [2 * g]uintptr
	// The hashes of the keys of the three groups under way (slots asked
	// for, series asked for, being added), by group number mod 3: each
	// key hashed once, not at every step.
	var hs [3][g]uint64
	grp := func(k int) []int32 { return list[min(k, len(list)):min(k+g, len(list))] }
	hashes := func(k int) []uint64 { return hs[k/g%3][:len(grp(k))] }
	// slotsOf hashes the keys of the group from k and asks for the index
	// slots where their lookups start.
	slotsOf := func(k int) {
		h := hashes(k)
		for i, s := range grp(k) {
			h[i] = src.series[s].key.hash()
		}
		t.askSlots(h, addrs[:0])
	}
	// seriesOf asks for the series that the slots of the group from k
	// (asked for a group before) name, and for the group's last points in
	// src.
	seriesOf := func(k int) {
		if len(t.slots) == 0 {
			return
		}
		n := 0
		for _, s := range grp(k) {
			if ss := &src.series[s]; ss.tail >= 0 {
				addrs[n] = prefetch.Addr(src.at(uint32(ss.tailStart)))
				n++
			}
		}
		t.askSeries(hashes(k), addrs[:n])
	}
	slotsOf(0)
	slotsOf(g)
	seriesOf(0)
	for j := 0; j < len(list); j += g {
		slotsOf(j + 2*g)
		seriesOf(j + g)
		h := hashes(j)
		for i, s := range grp(j) {
			t.addSeries(src, s, tr, h[i])
		}
	}
}

// askSlots asks for the index slots where the lookups of keys of hashes h
// start; addrs is room for as many addresses.
func (t *seriesTable) askSlots(h []uint64, addrs []uintptr) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	for _, x := range h {
		addrs = append(addrs, prefetch.Addr(&t.slots[x&mask]))
	}
	prefetch.Lines(addrs)
}

// askSeries asks for the series that the index slots of the keys of
// hashes h name (asked for by askSlots before), and for the lines addrs
// holds already; it has room for len(h) more. A slot of another key whose
// hash shares the low bits asks for that key's series: harmless.
func (t *seriesTable) askSeries(h []uint64, addrs []uintptr) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	for _, x := range h {
		if d := int32(t.slots[x&mask]>>32) - 1; d >= 0 && int(d) < len(t.series) {
			addrs = append(addrs, prefetch.Addr(&t.series[d]))
		}
	}
	prefetch.Lines(addrs)
}

// addRows adds the rows of rows at indexes at to t, each a series of one
// point with its second value, as addList adds series (asking for the
// index slots and series ahead the same way), their minutes truncated to
// tier tr.
func (t *seriesTable) addRows(rows []row, at []int32, tr Tier) {
	const g = aheadGroup
	var addrs [g]uintptr
	var hs [3][g]uint64
	grp := func(k int) []int32 { return at[min(k, len(at)):min(k+g, len(at))] }
	hashes := func(k int) []uint64 { return hs[k/g%3][:len(grp(k))] }
	slotsOf := func(k int) {
		h := hashes(k)
		for i, r := range grp(k) {
			h[i] = rows[r].key.hash()
		}
		t.askSlots(h, addrs[:0])
	}
	slotsOf(0)
	slotsOf(g)
	t.askSeries(hashes(0), addrs[:0])
	for j := 0; j < len(at); j += g {
		slotsOf(j + 2*g)
		t.askSeries(hashes(j+g), addrs[:0])
		h := hashes(j)
		for i, r := range grp(j) {
			t.addRow(&rows[r], h[i], tr)
		}
	}
}

// addRow adds row r, whose key's hash is h, to t, its minute truncated to
// tier tr.
func (t *seriesTable) addRow(r *row, h uint64, tr Tier) {
	d := t.lookup(r.key, h, false, r.key.Sub == spreadSub)
	m := tr.Truncate(int64(r.minute))
	if r.second == 0 {
		t.add(d, m, r.v)
		return
	}
	k2 := SeriesKey{Metric: r.second - 1, Cell: r.key.Cell, Sub: r.key.Sub}
	t.addSecondedPoint(d, t.takeSecond(d, r.second), k2, m, r.v, r.v2)
}

// addSeries adds every point of series s of src to t, with its minute
// truncated to tier tr, and returns the series of t it went to (-1 for a
// series without points, which makes no row); h is the hash of the
// series' key.
func (t *seriesTable) addSeries(src *seriesTable, s int32, tr Tier, h uint64) int32 {
	ss := &src.series[s]
	if ss.head < 0 {
		return -1 // a series without points (a count of 0) makes no row
	}
	d := t.lookup(ss.key, h, ss.isMax, ss.spread)
	t.addPoints(d, src, s, tr)
	return d
}

// addPoints adds every point of series s of src to series d of t, with
// its minute truncated to tier tr.
func (t *seriesTable) addPoints(d int32, src *seriesTable, s int32, tr Tier) {
	ss := &src.series[s]
	for c := ss.head; c >= 0; {
		var run []point
		run, _, c = src.chunkAt(ss, c)
		for _, pt := range run {
			m := int64(pt.minute)
			if tr != TierMinute {
				m = tr.Truncate(m)
			}
			t.add(d, m, pt.val())
		}
	}
}

// len is the number of points and of second values in them: an upper
// bound of the rows it holds.
func (t *seriesTable) len() int { return t.npts + t.npts2 + len(t.rows) + t.rowSeconds }

// bytes is the memory the table's contents fill (its index, series,
// chunks and points), not counting room reserved for more.
func (t *seriesTable) bytes() int {
	// A table reused after a reset keeps its grown index: counted at the
	// size its series would need (at most four slots a series), so that
	// an emptied memtable does not count as full.
	n := min(len(t.slots), 4*len(t.series))*8 + len(t.series)*int(unsafe.Sizeof(series{})) + len(t.chunks)*16 + len(t.pages)*int(unsafe.Sizeof(pointPage{})) + len(t.rows)*int(unsafe.Sizeof(row{}))
	if t.byMetric != nil {
		n += len(t.series) * 4
	}
	return n
}

// reset empties the table, keeping its memory for reuse.
func (t *seriesTable) reset() {
	clear(t.slots)
	t.series = t.series[:0]
	t.chunks = t.chunks[:0]
	for i, pg := range t.pages {
		pointPages.put(pg)
		t.pages[i] = nil
	}
	t.pages = t.pages[:0]
	t.used, t.npts, t.npts2, t.indexed, t.seconds = 0, 0, 0, 0, 0
	t.rows = t.rows[:0]
	t.rowSeconds = 0
	for m, list := range t.byMetric {
		t.byMetric[m] = list[:0] // kept grown for the next use
	}
}

// maxPooledSlots bounds the index a pooled table keeps.
const maxPooledSlots = 1 << 17

// trim drops memory a pooled table should not keep after an unusually
// large batch.
func (t *seriesTable) trim() {
	if len(t.slots) > maxPooledSlots || cap(t.rows) > maxPooledSlots {
		*t = seriesTable{indexMetrics: t.indexMetrics}
	}
}

// scan calls fn for every point of metric in ranges and [from, to), its
// minute truncated to tier tr. ranges are sorted and disjoint.
func (t *seriesTable) scan(tr Tier, metric uint32, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	for _, s := range t.byMetric[metric] {
		if s < 0 { // the second values of series ^s
			t.scanSecond(tr, &t.series[^s], ranges, from, to, fn)
			continue
		}
		se := &t.series[s]
		if !inRanges(ranges, se.key.Cell) {
			continue
		}
		if se.spread && tr == TierMinute {
			t.scanSpread(se, from, to, fn)
			continue
		}
		for c := se.head; c >= 0; {
			var run []point
			run, _, c = t.chunkAt(se, c)
			for _, pt := range run {
				m := tr.Truncate(int64(pt.minute))
				if m < from || m >= to {
					continue
				}
				sub, v := se.key.Sub, pt.val()
				switch {
				case se.isMax:
					sub, v = unpackRegister(v)
				case se.spread: // the hour or day tier: the run whole
					sub = 0
					_, v = unpackSpread(v)
				}
				fn(se.key.Cell, sub, m, v)
			}
		}
	}
}

// scanSecond is scan of the second values of series se.
func (t *seriesTable) scanSecond(tr Tier, se *series, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	if !inRanges(ranges, se.key.Cell) {
		return
	}
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = t.chunkAt(se, c)
		for _, pt := range run {
			switch m := tr.Truncate(int64(pt.minute)); {
			case pt.v2 == 0:
			case se.spread && tr == TierMinute: // a run: its minutes' shares
				n, _ := unpackSpread(pt.val())
				eachShare(int64(pt.minute), n, int64(pt.v2), from, to, func(m, v int64) { fn(se.key.Cell, 0, m, v) })
			case m < from || m >= to:
			case se.spread: // the hour or day tier: the run whole
				fn(se.key.Cell, 0, m, int64(pt.v2))
			default:
				fn(se.key.Cell, se.key.Sub, m, int64(pt.v2))
			}
		}
	}
}

// scanSpread calls fn with the minutes of [from, to) of a spread series'
// points, each with its share.
func (t *seriesTable) scanSpread(se *series, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = t.chunkAt(se, c)
		for _, pt := range run {
			n, v := unpackSpread(pt.val())
			eachShare(int64(pt.minute), n, v, from, to, func(m, v int64) { fn(se.key.Cell, 0, m, v) })
		}
	}
}

// inRanges reports whether cell lies in one of ranges (sorted, disjoint).
func inRanges(ranges []vocab.CellRange, cell uint64) bool {
	lo, hi := 0, len(ranges)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ranges[mid].Hi < cell {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo < len(ranges) && ranges[lo].Lo <= cell
}

// cellShard picks one of n (a power of two) shards by a cell.
func cellShard(cell uint64, n int) int {
	h := cell * 0x9e3779b97f4a7c15
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	return int(h >> (64 - bits.TrailingZeros(uint(n))))
}

func (k SeriesKey) String() string {
	return fmt.Sprintf("{metric %d cell %x sub %x}", k.Metric, k.Cell, k.Sub)
}
