package storage

import (
	"math/bits"
	"slices"
	"sync"

	"github.com/flowd/flowd/internal/prefetch"
	"github.com/flowd/flowd/vocab"
)

// memShards is the number of independently locked shards of a memtable
// (a power of two): batches are applied by the goroutines that submitted
// them, in parallel, each taking a shard's lock once.
const memShards = 16

// memtable is the in-memory table of buckets not yet in a part: series
// tables, spread over shards by series, from which both tiers are written
// at a flush (the hour tier by summing each series' minutes into hours).
// Rows that only one tier still needs — after a crash between the two
// tiers' parts of a flush, replay gives the WAL's records to one tier only
// — are kept apart.
type memtable struct {
	shards [memShards]memShard
	sorted []seriesRef // the series of both tiers in key order, once frozen
}

type memShard struct {
	mu   sync.Mutex
	both seriesTable
	// only holds rows for one tier, stored truncated to the tier's width.
	only [numTiers]seriesTable
}

// newMemtable returns an empty memtable. Its points fill pages that never
// move; only its series and chunk lists grow.
func newMemtable() *memtable {
	m := &memtable{}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.both.indexMetrics = true
		for t := range sh.only {
			sh.only[t].indexMetrics = true
		}
	}
	return m
}

// newMemtableLike returns an empty memtable whose shards' index, series
// and chunk lists have the room prev's have: a memtable rotated in while
// its predecessor is still being flushed (there is no emptied one to
// reuse yet) then fills without growing them step by step, copying each
// list at every doubling. prev is read, not changed; the caller holds the
// store's lock, so its lists do not move meanwhile.
func newMemtableLike(prev *memtable) *memtable {
	m := newMemtable()
	for i := range m.shards {
		src, dst := &prev.shards[i].both, &m.shards[i].both
		prev.shards[i].mu.Lock()
		nslots, nseries, nchunks := len(src.slots), len(src.series), len(src.chunks)
		prev.shards[i].mu.Unlock()
		if nslots > 0 {
			dst.slots = make([]uint64, nslots)
			prefault(dst.slots)
		}
		// Filled about as full as prev's: mapped in one call each.
		dst.series = make([]series, 0, nseries)
		dst.chunks = make([]chunk, 0, nchunks)
		prefault(dst.series)
		prefault(dst.chunks)
	}
	return m
}

// shardScratch groups a table's series and rows by memtable shard;
// callers keep one to reuse.
type shardScratch struct {
	lists, rows [memShards][]int32
}

// addTable adds every point of src to both tiers, or to tier only when
// only is not numTiers (replay after a partial flush).
//
// A memtable is sharded by cell, so that the series of a cell's second
// values (a class's speed sums, see addSecondedPoint) that its count's points
// could not hold is found in the count's shard.
func (m *memtable) addTable(src *seriesTable, only Tier, scratch *shardScratch) {
	for i := range scratch.lists {
		scratch.lists[i] = scratch.lists[i][:0]
		scratch.rows[i] = scratch.rows[i][:0]
	}
	for s := range src.series {
		i := cellShard(src.series[s].key.Cell, memShards)
		scratch.lists[i] = append(scratch.lists[i], int32(s))
	}
	for r := range src.rows {
		i := cellShard(src.rows[r].key.Cell, memShards)
		scratch.rows[i] = append(scratch.rows[i], int32(r))
	}
	tr := TierMinute
	if only != numTiers {
		tr = only
	}
	for i, list := range scratch.lists {
		rows := scratch.rows[i]
		if len(list) == 0 && len(rows) == 0 {
			continue
		}
		sh := &m.shards[i]
		sh.mu.Lock()
		dst := &sh.both
		if only != numTiers {
			dst = &sh.only[only]
		}
		if len(list) > 0 {
			dst.addList(src, list, tr)
		}
		if len(rows) > 0 {
			dst.addRows(src.rows, rows, tr)
		}
		sh.mu.Unlock()
	}
}

// takeSecond has series d of t hold the second values of metric
// second-1 (second is a metric + 1) in its points, when it holds none yet
// and can, and reports whether it holds them. A spread series' points
// hold the sums of their runs' second values (see addPair).
func (t *seriesTable) takeSecond(d int32, second uint32) bool {
	if se := &t.series[d]; se.second == 0 && !se.isMax {
		se.second = second
		t.listSecond(second-1, d)
	}
	return t.series[d].second == second
}

// addSecondedPoint adds v and its second value v2 (0 for none) at minute m
// to series d of t: v2 in d's point when paired (see takeSecond) and the
// point can hold it, otherwise in the series k2 of its own (of a spread
// series, as a run of v's length there).
func (t *seriesTable) addSecondedPoint(d int32, paired bool, k2 SeriesKey, m, v int64, v2 uint32) {
	if paired && t.addPair(d, m, v, v2) {
		return
	}
	t.add(d, m, v)
	if v2 == 0 {
		return
	}
	w := int64(v2)
	if t.series[d].spread {
		n, _ := unpackSpread(v)
		w = packSpread(n, w)
	}
	t.add(t.ownSecond(d, k2), m, w)
}

// ownSecond returns the series of t with key k, the second values of
// series d that d's points could not hold: the one d names (its pair), or
// found and named so (a spread series when d is one).
func (t *seriesTable) ownSecond(d int32, k SeriesKey) int32 {
	d2 := t.series[d].pair - 1
	if d2 < 0 || t.series[d2].key != k {
		d2 = t.lookup(k, k.hash(), false, t.series[d].spread)
		t.series[d].pair = d2 + 1
	}
	return d2
}

// release returns the memtable's pages to their pool. The memtable must be
// out of every reader's reach.
func (m *memtable) release() {
	m.sorted = nil
	for i := range m.shards {
		sh := &m.shards[i]
		sh.both.reset()
		for t := range sh.only {
			sh.only[t].reset()
		}
	}
}

// rowCount is the number of rows tier t would get at most.
func (m *memtable) rowCount(t Tier) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.both.len() + sh.only[t].len()
		sh.mu.Unlock()
	}
	return n
}

// bytes is the memory the memtable holds.
func (m *memtable) bytes() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.both.bytes()
		for t := range sh.only {
			n += sh.only[t].bytes()
		}
		sh.mu.Unlock()
	}
	return n
}

func (m *memtable) empty() bool {
	for t := range numTiers {
		if m.rowCount(t) != 0 {
			return false
		}
	}
	return true
}

// scan calls fn for the rows of tier t matching metric, ranges and [from,
// to). In the hour tier a minute row is reported at its hour; callers
// combine rows with the same key.
func (m *memtable) scan(t Tier, metric uint32, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		sh.both.scan(t, metric, ranges, from, to, fn)
		sh.only[t].scan(t, metric, ranges, from, to, fn)
		sh.mu.Unlock()
	}
}

// seriesRef names one series of one table of a frozen memtable, or with
// second the second values of one (key being theirs).
type seriesRef struct {
	key    SeriesKey
	t      *seriesTable
	s      int32
	second bool
}

// eachTiers calls fns[t], for every tier t whose fns[t] is not nil, with
// the rows of tier t in key order, a key's rows at a time: each series'
// points in minute order, combined per bucket of the tier (summed, or the
// maximum for sketches).
// It makes one pass over the series: a series' points are read from
// memory once and emitted to every tier while they are in the cache. The
// memtable must no longer change (it is frozen).
func (m *memtable) eachTiers(fns [numTiers]runFn) error {
	split := false
	for t, fn := range fns {
		for i := range m.shards {
			split = split || fn != nil && len(m.shards[i].only[t].series) > 0
		}
	}
	if split { // rare: after a replay that found one tier's part
		for t, fn := range fns {
			if fn != nil {
				if err := m.eachOne(Tier(t), fn); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return m.emit(m.sortedBoth(), fns)
}

// eachOne is eachTiers for tier t alone, over the series of both tiers
// and of tier t alone.
func (m *memtable) eachOne(t Tier, fn runFn) error {
	refs := m.sortedBoth()
	var only []seriesRef
	for i := range m.shards {
		only = appendRefs(only, &m.shards[i].only[t])
	}
	if len(only) > 0 {
		refs = append(slices.Clip(refs), only...)
		slices.SortFunc(refs, func(a, b seriesRef) int { return a.key.compare(b.key) })
	}
	var fns [numTiers]runFn
	fns[t] = fn
	return m.emit(refs, fns)
}

// appendRefs appends refs to the series of tab and to their second values.
func appendRefs(refs []seriesRef, tab *seriesTable) []seriesRef {
	for s := range tab.series {
		se := &tab.series[s]
		refs = append(refs, seriesRef{key: se.key, t: tab, s: int32(s)})
		if se.second != 0 {
			k := se.key
			k.Metric = se.second - 1
			refs = append(refs, seriesRef{key: k, t: tab, s: int32(s), second: true})
		}
	}
	return refs
}

// emitAhead is how many series ahead of the one it writes emit reads a
// series' chunks (see chainWarmer).
const emitAhead = 8

// A chainWarmer reads the chunks of the next emitAhead series a flush
// will write, a chunk of each at every step, and asks for the lines of
// that chunk's points (see package prefetch). A flush reads series in key
// order, which is not the order of their chunks in memory, long after
// they were written: every chunk is a cache miss or two, and a series'
// next chunk is known only once its last is read. Walking the chains of
// several series in step, one chunk of each at a time, makes the reads of
// a step independent of one another, so that their misses overlap with
// one another; the points, asked for rather than read, arrive while the
// series before them are written. Asking instead of reading took
// BenchmarkMemtableEach from 23.8 to 20.3 ns a point.
type chainWarmer struct {
	at [emitAhead]struct {
		t *seriesTable
		s int32
		c int32 // the next chunk to read + 1, 0 when done (or unused)
	}
}

// start puts series j (ref) in its place among the series ahead.
func (w *chainWarmer) start(j int, ref seriesRef) {
	a := &w.at[j%emitAhead]
	a.t, a.s, a.c = ref.t, ref.s, ref.t.series[ref.s].head+1
}

// step reads the next chunk of each series ahead, and asks for its
// points' lines (see package prefetch).
func (w *chainWarmer) step() {
	var addrs [emitAhead * (maxChunk/4 + 1)]uintptr
	n := 0
	for i := range w.at {
		a := &w.at[i]
		if a.c <= 0 {
			continue
		}
		run, _, next := a.t.chunkAt(&a.t.series[a.s], a.c-1)
		a.c = next + 1
		for j := 0; j < len(run); j += 4 { // 16-byte points: one in four a 64-byte line
			addrs[n] = prefetch.Addr(&run[j])
			n++
		}
		if len(run) > 0 {
			addrs[n] = prefetch.Addr(&run[len(run)-1])
			n++
		}
	}
	prefetch.Lines(addrs[:n])
}

// A runFn takes the rows of one key (a metric, a cell, a sub-key) of a
// tier, in minute order: minutes[i] holds values[i]. The slices are
// reused once it returns.
type runFn func(k SeriesKey, minutes, values []int64) error

// runOut gathers the rows of one key for a runFn, so that a flush writes
// a series' rows at once, not a call and a key comparison a row.
type runOut struct {
	minutes, values []int64
}

func (o *runOut) add(minute, v int64) {
	o.minutes = append(o.minutes, minute)
	o.values = append(o.values, v)
}

// send calls fn with the rows gathered for k, if any, and empties them.
func (o *runOut) send(k SeriesKey, fn runFn) error {
	if len(o.minutes) == 0 {
		return nil
	}
	err := fn(k, o.minutes, o.values)
	o.minutes, o.values = o.minutes[:0], o.values[:0]
	return err
}

// emit calls fns[t] for the rows of tier t of the series refs, sorted by
// key, for every tier whose fn is set.
func (m *memtable) emit(refs []seriesRef, fns [numTiers]runFn) error {
	var out runOut
	var outs [numTiers]runOut // for the emitters of every tier at once
	var pts, byLen []point
	var words, spare []uint64
	var ahead chainWarmer
	for j := range min(emitAhead, len(refs)) {
		ahead.start(j, refs[j])
	}
	for i := 0; i < len(refs); {
		if j := i + emitAhead; j < len(refs) {
			ahead.start(j, refs[j])
		}
		if j := i + 2*emitAhead; j < len(refs) {
			// The series start will read next.
			one := [1]uintptr{prefetch.Addr(&refs[j].t.series[refs[j].s])}
			prefetch.Lines(one[:])
		}
		ahead.step()
		k := refs[i].key
		if refs[i].t.series[refs[i].s].spread {
			// Runs of spread readings, and the runs of second values
			// their points hold (see addPair).
			pts, i = gatherKey(pts[:0], refs, i)
			// pts in minute order for the hour and day tiers, byLen by
			// length and minute for the minute tier.
			byLen = sortSpread(byLen, pts)
			for t, fn := range fns {
				if fn == nil {
					continue
				}
				var err error
				if Tier(t) == TierMinute {
					err = emitSpread(Tier(t), k, byLen, &out, fn)
				} else {
					err = emitSpreadWhole(Tier(t), k, pts, &out, fn)
				}
				if err != nil {
					return err
				}
			}
			continue
		}
		if refs[i].second && (i+1 == len(refs) || refs[i+1].key != k) {
			// The second values of one series: words of minute and
			// value, in minute order.
			words = secondWords(words, refs[i].t, &refs[i].t.series[refs[i].s])
			if err := emitValuesTiers(k, words, &outs, fns); err != nil {
				return err
			}
			i++
			continue
		}
		if secondIn(refs[i:], k) {
			// Second values with a series of their own (see addSecondedPoint):
			// gathered, sorted and summed.
			pts, i = gatherKey(pts[:0], refs, i)
			if !slices.IsSortedFunc(pts, byMinute) {
				slices.SortFunc(pts, byMinute)
			}
			for t, fn := range fns {
				if fn != nil {
					if err := emitSeries(Tier(t), k, pts, &out, fn); err != nil {
						return err
					}
				}
			}
			continue
		}
		isMax := refs[i].t.series[refs[i].s].isMax
		var run []point
		single := i+1 == len(refs) || refs[i+1].key != k
		if se := &refs[i].t.series[refs[i].s]; single && se.head < 0 {
			i++ // no points: a zero count replayed from the WAL of flowd before addSeries skipped them
			continue
		} else if single && !isMax {
			// Most series: their chunks read in place, in minute order;
			// the others through their points' minutes and places,
			// sorted as words.
			var err error
			byValue := false
			if se.unordered {
				if words, byValue = sortedValues(words, refs[i].t, se); !byValue {
					words = sortedPlaces(words, refs[i].t, se)
				}
			}
			switch {
			case byValue:
				err = emitValuesTiers(k, words, &outs, fns)
			case se.unordered:
				for t, fn := range fns {
					if fn != nil && err == nil {
						err = emitPlaces(Tier(t), k, refs[i].t, words, &out, fn)
					}
				}
			default:
				err = emitChainTiers(k, refs[i].t, se, &outs, fns)
			}
			if err != nil {
				return err
			}
			i++
			continue
		}
		if single && refs[i].t.series[refs[i].s].head == refs[i].t.series[refs[i].s].tail {
			se := &refs[i].t.series[refs[i].s]
			run, _, _ = refs[i].t.chunkAt(se, se.head) // one chunk: read in place
			i++
		} else {
			pts = pts[:0]
			for ; i < len(refs) && refs[i].key == k; i++ {
				pts = refs[i].t.appendPoints(pts, refs[i].s)
			}
			run = pts
		}
		if isMax {
			var err error
			if words, spare, err = emitSketch(k, run, words, spare, &out, fns); err != nil {
				return err
			}
			continue
		}
		// A key in several tables (rows of one tier alone, after a
		// replay): its points gathered into pts, a copy, sorted in place
		// (the frozen memtable itself is not reordered: queries may read
		// it meanwhile).
		if !slices.IsSortedFunc(pts, byMinute) {
			slices.SortFunc(pts, byMinute) // equal minutes combine in any order
		}
		for t, fn := range fns {
			if fn != nil {
				if err := emitSeries(Tier(t), k, pts, &out, fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// gatherKey appends to pts the points of refs from i on whose key is
// refs[i]'s, a ref of second values as their own points (appendSecond),
// and returns them and the index of the first ref of another key.
func gatherKey(pts []point, refs []seriesRef, i int) ([]point, int) {
	k := refs[i].key
	for ; i < len(refs) && refs[i].key == k; i++ {
		if refs[i].second {
			pts = refs[i].t.appendSecond(pts, refs[i].s)
		} else {
			pts = refs[i].t.appendPoints(pts, refs[i].s)
		}
	}
	return pts, i
}

// secondWords returns, in words, the second values of series se of tab
// as words of their minute (high half) and value (low half), in minute
// order, leaving out the points without one.
func secondWords(words []uint64, tab *seriesTable, se *series) []uint64 {
	words = words[:0]
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = tab.chunkAt(se, c)
		for _, pt := range run {
			if pt.v2 != 0 {
				words = append(words, uint64(uint32(pt.minute))<<32|uint64(pt.v2))
			}
		}
	}
	if se.unordered {
		sortNearly(words)
	}
	return words
}

// secondIn reports whether refs, from their first, hold second values of
// key k among those of that key.
func secondIn(refs []seriesRef, k SeriesKey) bool {
	for _, r := range refs {
		if r.key != k {
			return false
		}
		if r.second {
			return true
		}
	}
	return false
}

// sortSpread puts run, a spread series' points, in minute order (they
// nearly always come so), and returns them in dst (reused) ordered by run
// length, then minute: a stable counting sort by length over the points
// in minute order, two passes where a comparison sort took a dozen.
func sortSpread(dst, run []point) []point {
	if !slices.IsSortedFunc(run, byMinute) {
		slices.SortFunc(run, byMinute)
	}
	const lens = 1 << spreadLenBits
	var at [lens]int
	for i := range run {
		at[run[i].val()&(lens-1)]++
	}
	n := 0
	for l, c := range at {
		at[l] = n
		n += c
	}
	dst = slices.Grow(dst[:0], len(run))[:len(run)]
	for i := range run {
		l := run[i].val() & (lens - 1)
		dst[at[l]] = run[i]
		at[l]++
	}
	return dst
}

// emitSpreadWhole is emitSpread for the hour and day tiers. A run never
// crosses an hour, so these tiers take it whole, whatever its length: a
// bucket's runs make one row, their sum, keyed as one run of the whole
// hour (sub maxSpread; not 0, the key of the cell's one-minute readings,
// written apart and before). Keyed by their lengths, as parts written
// before December 2026 hold them, an hourly feed's day tier took a row for
// nearly every reading. Readers of these tiers sum rows whatever their
// sub. run is sorted by minute.
func emitSpreadWhole(t Tier, k SeriesKey, run []point, out *runOut, fn runFn) error {
	k.Sub = maxSpread
	for j := 0; j < len(run); {
		m := t.Truncate(int64(run[j].minute))
		_, v := unpackSpread(run[j].val())
		l := j + 1
		for ; l < len(run) && t.Truncate(int64(run[l].minute)) == m; l++ {
			_, w := unpackSpread(run[l].val())
			v = SatAdd(v, w)
		}
		out.add(m, v)
		j = l
	}
	return out.send(k, fn)
}

// emitSpread calls fn with the rows of a cell's spread series in tier t
// (the minute tier: see emitSpreadWhole for the others): a row per run
// length and minute, the sum of its runs, keyed by the length; run is
// sorted by sortSpread.
func emitSpread(t Tier, k SeriesKey, run []point, out *runOut, fn runFn) error {
	k.Sub = 0
	for j := 0; j < len(run); {
		n, v := unpackSpread(run[j].val())
		m := t.Truncate(int64(run[j].minute))
		l := j + 1
		for ; l < len(run) && run[l].val()&(1<<spreadLenBits-1) == n && t.Truncate(int64(run[l].minute)) == m; l++ {
			_, w := unpackSpread(run[l].val())
			v = SatAdd(v, w)
		}
		if uint64(n) != k.Sub { // the rows of the length before, then this one's
			if err := out.send(k, fn); err != nil {
				return err
			}
			k.Sub = uint64(n)
		}
		out.add(m, v)
		j = l
	}
	return out.send(k, fn)
}

// sortedValues returns, in words, the points of series se of tab as words
// of their minute (high half) and their value (low half), sorted: the
// points in minute order, their values with them, so that emitValues
// reads nothing but the words. It reports false, the words in any state,
// when a value does not fit 32 bits unsigned (then sortedPlaces serves).
func sortedValues(words []uint64, tab *seriesTable, se *series) ([]uint64, bool) {
	words = words[:0]
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = tab.chunkAt(se, c)
		for _, pt := range run {
			if pt.hi != 0 {
				return words, false
			}
			words = append(words, uint64(uint32(pt.minute))<<32|uint64(pt.lo))
		}
	}
	sortNearly(words)
	return words, true
}

// tierSums sums a series' points, in minute order, into the buckets of
// every tier at once: a flush reads each series' points once rather than
// once a tier (emitChainTiers, emitValuesTiers). The sums are those the
// emitters of one tier make: each tier's buckets add the same points in
// the same order.
type tierSums struct {
	have bool
	m, v [numTiers]int64
}

// add adds v at minute; sat saturates the sums (SatAdd, values of any
// size), where values under 2^32 are simply added. A bucket that minute
// closes goes to its tier's outs.
func (a *tierSums) add(minute, v int64, outs *[numTiers]runOut, sat bool) {
	plus := func(s int64) int64 {
		if sat {
			return SatAdd(s, v)
		}
		return s + v
	}
	switch {
	case !a.have:
		a.have = true
		a.m = [numTiers]int64{minute, TierHour.Truncate(minute), TierDay.Truncate(minute)}
		a.v = [numTiers]int64{v, v, v}
		return
	case minute == a.m[TierMinute]: // the same hour and day too
		a.v[TierMinute], a.v[TierHour], a.v[TierDay] = plus(a.v[TierMinute]), plus(a.v[TierHour]), plus(a.v[TierDay])
		return
	}
	outs[TierMinute].add(a.m[TierMinute], a.v[TierMinute])
	a.m[TierMinute], a.v[TierMinute] = minute, v
	// A minute within the bucket is in it: two compares, where
	// truncating takes a multiplication and its fix-ups a point.
	if d := minute - a.m[TierHour]; d >= 0 && d < hourWidth {
		a.v[TierHour] = plus(a.v[TierHour])
	} else {
		outs[TierHour].add(a.m[TierHour], a.v[TierHour])
		a.m[TierHour], a.v[TierHour] = TierHour.Truncate(minute), v
	}
	if d := minute - a.m[TierDay]; d >= 0 && d < dayWidth {
		a.v[TierDay] = plus(a.v[TierDay])
	} else {
		outs[TierDay].add(a.m[TierDay], a.v[TierDay])
		a.m[TierDay], a.v[TierDay] = TierDay.Truncate(minute), v
	}
}

// send hands every tier whose fn is set its buckets of k, in tier order,
// and empties outs.
func (a *tierSums) send(k SeriesKey, outs *[numTiers]runOut, fns [numTiers]runFn) error {
	var err error
	for t := range numTiers {
		if a.have {
			outs[t].add(a.m[t], a.v[t])
		}
		if fns[t] != nil && err == nil {
			err = outs[t].send(k, fns[t])
		}
		outs[t].minutes, outs[t].values = outs[t].minutes[:0], outs[t].values[:0]
	}
	return err
}

// emitChainTiers is emitChain for every tier at once: the series' chunks
// walked once.
func emitChainTiers(k SeriesKey, tab *seriesTable, se *series, outs *[numTiers]runOut, fns [numTiers]runFn) error {
	var sums tierSums
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = tab.chunkAt(se, c)
		for _, pt := range run {
			sums.add(int64(pt.minute), pt.val(), outs, true)
		}
	}
	return sums.send(k, outs, fns)
}

// emitValuesTiers is emitValues for every tier at once.
func emitValuesTiers(k SeriesKey, words []uint64, outs *[numTiers]runOut, fns [numTiers]runFn) error {
	var sums tierSums
	for _, w := range words {
		sums.add(int64(w>>32), int64(uint32(w)), outs, false)
	}
	return sums.send(k, outs, fns)
}

// sortedPlaces returns, in words, the points of series se of tab as words
// of their minute (high half) and their place in tab's points arena (low
// half), sorted: the points in minute order, without copying them (a
// frozen memtable is not reordered: queries may read it meanwhile).
// Minutes are never negative (MinuteInRange), so they sort as unsigned.
func sortedPlaces(words []uint64, tab *seriesTable, se *series) []uint64 {
	words = words[:0]
	for c := se.head; c >= 0; {
		run, start, next := tab.chunkAt(se, c)
		c = next
		for j, pt := range run {
			words = append(words, uint64(uint32(pt.minute))<<32|uint64(uint32(start)+uint32(j)))
		}
	}
	sortNearly(words)
	return words
}

// sortNearly sorts words that are mostly in order already: a series'
// points arrive in about minute order, those of requests committed out of
// order a few places back (a third of the points of the bench's day, from
// four senders). An insertion sort costs the words and how far each moves;
// when they move far it gives the rest to slices.Sort.
func sortNearly(w []uint64) {
	moves := 0
	for i := 1; i < len(w); i++ {
		x := w[i]
		j := i
		for j > 0 && w[j-1] > x {
			w[j] = w[j-1]
			j--
		}
		w[j] = x
		if moves += i - j; moves > 4*len(w) {
			slices.Sort(w)
			return
		}
	}
}

// emitPlaces is emitSeries over the points of tab named by words, from
// sortedPlaces.
func emitPlaces(t Tier, k SeriesKey, tab *seriesTable, words []uint64, out *runOut, fn runFn) error {
	for j := 0; j < len(words); {
		m := t.Truncate(int64(words[j] >> 32))
		v := tab.at(uint32(words[j])).val()
		n := j + 1
		for ; n < len(words) && t.Truncate(int64(words[n]>>32)) == m; n++ {
			v = SatAdd(v, tab.at(uint32(words[n])).val())
		}
		out.add(m, v)
		j = n
	}
	return out.send(k, fn)
}

// emitSeries calls fn with one series' buckets of tier t, in minute order,
// each the sum of its points; run is sorted by minute. (Sketches go
// through emitSketch, spread runs through emitSpread.)
func emitSeries(t Tier, k SeriesKey, run []point, out *runOut, fn runFn) error {
	for j := 0; j < len(run); {
		m := t.Truncate(int64(run[j].minute))
		v := run[j].val()
		n := j + 1
		for ; n < len(run) && t.Truncate(int64(run[n].minute)) == m; n++ {
			v = SatAdd(v, run[n].val())
		}
		out.add(m, v)
		j = n
	}
	return out.send(k, fn)
}

// emitSketch calls fns[t], for every tier whose fn is set, with one sketch
// series' buckets of tier t: a bucket per register and minute (hour), the
// maximum of its points. Each point becomes a word of register, minute and
// value (see maxRegister), so that the points sort as integers, once for
// both tiers: in words, a scratch buffer, with spare another; the run
// itself is not reordered (queries may read the frozen memtable
// meanwhile). It returns the two buffers for the next call.
func emitSketch(k SeriesKey, run []point, words, spare []uint64, out *runOut, fns [numTiers]runFn) ([]uint64, []uint64, error) {
	words = words[:0]
	for _, pt := range run {
		reg, v := unpackRegister(pt.val())
		words = append(words, reg<<40|uint64(uint32(pt.minute))<<registerBits|uint64(v))
	}
	// A bucket's maximum does not depend on the order of its values.
	words, spare = sortAbove(words, spare, registerBits)
	for t, fn := range fns {
		if fn == nil {
			continue
		}
		tr := Tier(t)
		rk := k
		for j := 0; j < len(words); {
			// The words of one register and bucket are consecutive:
			// sorted by register, then minute, and truncating a minute
			// to its bucket keeps that order.
			reg := words[j] >> 40
			m := tr.Truncate(int64(words[j] >> registerBits & (1<<32 - 1)))
			v := words[j] & (1<<registerBits - 1)
			n := j + 1
			for ; n < len(words) && words[n]>>40 == reg && tr.Truncate(int64(words[n]>>registerBits&(1<<32-1))) == m; n++ {
				v = max(v, words[n]&(1<<registerBits-1))
			}
			if reg != rk.Sub { // the register before's rows, then this one's
				if err := out.send(rk, fn); err != nil {
					return words, spare, err
				}
				rk.Sub = reg
			}
			out.add(m, int64(v))
			j = n
		}
		if err := out.send(rk, fn); err != nil {
			return words, spare, err
		}
	}
	return words, spare, nil
}

// sortedBoth returns the series of both tiers in key order, sorted once
// for the flushes of the two tiers.
func (m *memtable) sortedBoth() []seriesRef {
	if m.sorted != nil {
		return m.sorted
	}
	n := 0
	for i := range m.shards {
		n += len(m.shards[i].both.series) + m.shards[i].both.seconds
	}
	refs := make([]seriesRef, 0, n) // never grown: a copy of pointers the collector would watch
	for i := range m.shards {
		refs = appendRefs(refs, &m.shards[i].both)
	}
	refs = sortRefs(refs)
	m.sorted = refs
	return refs
}

// sortRefs returns refs in key order. A flush sorts a memtable's series
// once (tens of thousands of them); by comparison, three fields a
// compare, that was a fifth of BenchmarkFlushParts. But a memtable's keys
// differ in few bits: one sub-key for all (almost always 0), metric ids
// under 2^10, and cells whose leading bits (mode, resolution, base cells
// of one region) and trailing bits (the digits finer than the finest
// resolution, all 7) are the same. Where those varying bits and the
// index of a ref fit in one word, the words are sorted by radix over the
// bytes that differ (sortAbove) and the refs put in their order;
// otherwise they are sorted by comparison.
func sortRefs(refs []seriesRef) []seriesRef {
	if sorted, ok := radixRefs(refs); ok {
		return sorted
	}
	slices.SortFunc(refs, func(a, b seriesRef) int { return a.key.compare(b.key) })
	return refs
}

// radixRefs is sortRefs by radix, for refs whose keys' varying bits fit
// in a word beside an index (ok), refs left as they were.
func radixRefs(refs []seriesRef) (sorted []seriesRef, ok bool) {
	n := len(refs)
	if n < 256 {
		return nil, false
	}
	sub := refs[0].key.Sub
	cellAnd, cellOr := ^uint64(0), uint64(0)
	var metricOr uint32
	for i := range refs {
		k := &refs[i].key
		if k.Sub != sub {
			return nil, false
		}
		cellAnd &= k.Cell
		cellOr |= k.Cell
		metricOr |= k.Metric
	}
	// The cells' bits from lo up to lo+cellBits are all that differ
	// among them: in that field they compare as the cells do.
	vary := cellAnd ^ cellOr
	lo := uint(bits.TrailingZeros64(vary)) // 64 for cells all alike: no field
	cellBits := uint(0)
	if vary != 0 {
		cellBits = uint(bits.Len64(vary)) - lo
	}
	idxBits := uint(bits.Len(uint(n - 1)))
	if uint(bits.Len32(metricOr))+cellBits+idxBits > 64 {
		return nil, false
	}
	words := make([]uint64, n)
	cellMask := uint64(1)<<cellBits - 1
	for i := range refs {
		k := &refs[i].key
		words[i] = uint64(k.Metric)<<(cellBits+idxBits) | (k.Cell>>lo&cellMask)<<idxBits | uint64(i)
	}
	words, _ = sortAbove(words, nil, idxBits)
	sorted = make([]seriesRef, n)
	idxMask := uint64(1)<<idxBits - 1
	for j, w := range words {
		sorted[j] = refs[w&idxMask]
	}
	return sorted, true
}

// sortAbove sorts words by their bits from bit shift up (the bits below
// it in any order), with spare as scratch, and returns the sorted words
// and the other buffer, either of which may be spare grown. A sketch
// series holds a point per tap (a register of a card, its minute), often
// thousands in a flush; a radix sort over the bytes that differ among
// them (a register's dozen bits, the minutes of a flush's span) takes a
// few passes where a comparison sort takes a dozen.
func sortAbove(words, spare []uint64, shift uint) ([]uint64, []uint64) {
	if len(words) < 256 {
		slices.Sort(words)
		return words, spare
	}
	and, or := ^uint64(0), uint64(0)
	for _, w := range words {
		and &= w
		or |= w
	}
	vary := (and ^ or) >> shift << shift
	spare = slices.Grow(spare[:0], len(words))[:len(words)]
	src, dst := words, spare
	for b := uint(0); b < 64; b += 8 {
		if vary>>b&0xff == 0 {
			continue
		}
		var at [256]int
		for _, w := range src {
			at[w>>b&0xff]++
		}
		n := 0
		for d, c := range at {
			at[d] = n
			n += c
		}
		for _, w := range src {
			d := w >> b & 0xff
			dst[at[d]] = w
			at[d]++
		}
		src, dst = dst, src
	}
	return src, dst
}

func byMinute(a, b point) int { return int(a.minute) - int(b.minute) }
