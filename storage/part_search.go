package storage

import (
	"errors"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
	"runtime"
	"sort"
	"sync"

	"github.com/flowd/flowd/vocab"
)

const allColumns = 1<<numColumns - 1

// rowSink receives the rows of a scan: each row through fn, or, when sums
// is set, only each row's value added into sums[(minute-from)/step].
type rowSink struct {
	fn   func(cell, sub uint64, minute, value int64)
	sums []int64
	step int64
	// spread says the rows are of a spreading metric in the minute tier:
	// a row with a sub-key of 2 or more stands for that many minutes
	// (spread.go), and a scan from a minute reads the rows from its hour.
	spread bool
}

// row hands one row (of a minute in [from, to)) to the sink.
func (out *rowSink) row(cell, sub uint64, minute, value, from int64) {
	if out.sums == nil {
		out.fn(cell, sub, minute, value)
		return
	}
	i := (minute - from) / out.step
	out.sums[i] = SatAdd(out.sums[i], value)
}

// subsAllZero reports whether a block's sub-keys are all 0, from its
// header: a constant column of zeros.
func subsAllZero(h *blockHeader) bool {
	c := &h.Columns[colSub]
	return c.MarshalType == encoding.MarshalTypeConst && c.FirstValue == 0
}

// hasRuns reports whether any of a spreading metric's rows is a run of
// several minutes; most blocks hold none and take the plain paths.
func hasRuns(subs []int64) bool {
	for _, v := range subs {
		if v != 0 {
			return true
		}
	}
	return false
}

// spreadRows hands rows of a spreading metric to the sink, each spread row
// as the shares of its minutes in [from, to): the rows of cells, or all of
// cell when cells is nil (a run of a compact cached block, whose sub-keys,
// minutes and values may be narrower).
func spreadRows[S uint16 | int64, M uint16 | int32 | int64, V uint16 | int32 | int64](out *rowSink, from, to int64, cells []int64, cell uint64, base int64, subs []S, minutes []M, values []V) {
	for k, mm := range minutes {
		m, n, v := base+int64(mm), int64(subs[k]), int64(values[k])
		if cells != nil {
			cell = uint64(cells[k])
		}
		if n < 2 || n > maxSpread {
			if m >= from && m < to {
				out.row(cell, 0, m, v, from)
			}
			continue
		}
		eachShare(m, n, v, from, to, func(x, v int64) { out.row(cell, 0, x, v, from) })
	}
}

// sumRows adds each value whose minute is in [from, to) into
// sums[(minute-from)/step], dividing only when a row leaves the step of the
// one before: rows of a series come in time order.
// The minutes (each base + minutes[k]) and values may be narrower (a
// compact cached block's).
func sumRows[M uint16 | int32 | int64, V uint16 | int32 | int64](sums []int64, step, from, to, base int64, minutes []M, values []V) {
	if step == 1 {
		for k, mm := range minutes {
			if m := base + int64(mm); m >= from && m < to {
				sums[m-from] = SatAdd(sums[m-from], int64(values[k]))
			}
		}
		return
	}
	lo, hi, idx := int64(1), int64(0), int64(0) // the current step is [lo, hi)
	for k, mm := range minutes {
		m := base + int64(mm)
		if m < from || m >= to {
			continue
		}
		switch {
		case m >= lo && m < hi:
		case m >= hi && m < hi+step: // the next step: a series' next hour
			idx++
			lo, hi = hi, hi+step
		default:
			idx = (m - from) / step
			lo = from + idx*step
			hi = lo + step
		}
		sums[idx] = SatAdd(sums[idx], int64(values[k]))
	}
}

// scanStep is one block of a part to read for one cell range.
type scanStep struct {
	block int
	r     vocab.CellRange
}

// plan lists the blocks of p that may hold rows of metric in ranges and
// [from, to), in order; a block serving several ranges comes once per range,
// consecutively.
func (p *part) plan(metric uint32, ranges []vocab.CellRange, from, to int64) []scanStep {
	var steps []scanStep
	p.eachStep(metric, ranges, from, to, func(st scanStep) { steps = append(steps, st) })
	return steps
}

// eachStep calls fn for each step of plan, in order, without gathering
// them: a count of the rows to read needs no list of the blocks (a
// year's minute tier names thousands for each of a city's cell ranges).
func (p *part) eachStep(metric uint32, ranges []vocab.CellRange, from, to int64, fn func(scanStep)) {
	if p.meta.MaxMinute < from || p.meta.MinMinute >= to {
		return
	}
	for _, r := range ranges {
		lo := Key{Metric: metric, Cell: r.Lo, Minute: -1 << 63}
		// The first block whose last key is not below lo.
		i := sort.Search(len(p.headers), func(i int) bool { return !p.headers[i].Last.Less(lo) })
		for ; i < len(p.headers); i++ {
			h := &p.headers[i]
			if h.First.Metric > metric || (h.First.Metric == metric && h.First.Cell > r.Hi) {
				break
			}
			if h.MaxMinute < from || h.MinMinute >= to {
				continue
			}
			fn(scanStep{i, r})
		}
	}
}

// columnsFor are the columns a scan needs of block i: the metric column
// only when the block holds more than one metric.
func (p *part) columnsFor(i int) uint8 {
	cols := uint8(1<<colCell | 1<<colSub | 1<<colMinute | 1<<colValue)
	if h := &p.headers[i]; h.First.Metric != h.Last.Metric {
		cols |= 1 << colMetric
	}
	return cols
}

var blockReaderPool = sync.Pool{New: func() any { return new(blockReader) }}

// spanReaderPool keeps a scan's decoders' span buffers for the next scan.
var spanReaderPool = sync.Pool{New: func() any { return new(spanReader) }}

// scanDecoders is how many goroutines decode the blocks of one part scan.
var scanDecoders = max(1, min(runtime.GOMAXPROCS(0), 4))

// decodedBlock is a block ready to walk: read into br (handed back after
// the walk), or found in the cache (br nil), decoded or compact (cb).
type decodedBlock struct {
	blk *block
	cb  *compactBlock
	br  *blockReader
	err error
}

// decode returns block i of p for a scan, from the cache or read with a
// reader from take (and then, from its second read on, kept in the cache:
// a compact copy, or the reader's decoded columns themselves). A span,
// when not nil, reads the block's columns with those of the blocks after
// it up to block last (see spanReader).
func (p *part) decode(cache *blockCache, i int, take func() *blockReader, sp *spanReader, last int) decodedBlock {
	k := blockKey{p, i}
	blk, cb, keep := cache.get(k)
	if blk != nil || cb != nil {
		return decodedBlock{blk: blk, cb: cb}
	}
	br := take()
	if br == nil {
		return decodedBlock{err: errScanStopped}
	}
	if err := br.read(p, i, p.columnsFor(i), sp, last); err != nil {
		return decodedBlock{br: br, err: err}
	}
	if !keep {
		return decodedBlock{blk: &br.blk, br: br}
	}
	if cb := compactOf(&br.blk, &p.headers[i]); cb != nil {
		// A copy, compact, to the cache; this walk reads the reader's.
		cache.putCompact(k, cb)
		return decodedBlock{blk: &br.blk, br: br}
	}
	// The cache keeps the decoded columns; the reader starts afresh.
	kept := br.blk
	br.blk = block{}
	cache.put(k, &kept)
	return decodedBlock{blk: &kept, br: br}
}

var errScanStopped = errors.New("scan stopped")

// scan calls fn for each row of p whose metric is metric, whose cell lies in
// one of ranges (sorted, disjoint) and whose minute is in [from, to). When
// it reads more than one block, other goroutines decode the next blocks
// while this one walks the rows of the current one.
func (p *part) scan(cache *blockCache, metric uint32, ranges []vocab.CellRange, from, to int64, out rowSink) error {
	planFrom := from
	if out.spread {
		planFrom = TierHour.Truncate(from) // a spread row of from's hour may cover it
	}
	steps := p.plan(metric, ranges, planFrom, to)
	if len(steps) == 0 {
		return nil
	}
	var blocks []int
	for i, st := range steps {
		if i == 0 || st.block != steps[i-1].block {
			blocks = append(blocks, st.block)
		}
	}
	next := func() decodedBlock {
		return p.decode(cache, blocks[0], func() *blockReader { return blockReaderPool.Get().(*blockReader) }, nil, blocks[0])
	}
	if len(blocks) > 1 {
		// The blocks in groups of consecutive ones (at most groupBlocks),
		// whose columns lie side by side in their files: a decoder reads
		// a group's column at once (spanReader), not a block at a time.
		// Decoders take groups in turn (decoder w the groups w, w+n, …);
		// the walk takes their blocks back in the same turn, so in order.
		var groups []int // the index in blocks where each group starts
		for k, b := range blocks {
			if k == 0 || b != blocks[k-1]+1 || k-groups[len(groups)-1] == groupBlocks {
				groups = append(groups, k)
			}
		}
		groups = append(groups, len(blocks))
		const depth = 2
		n := min(scanDecoders, len(groups)-1)
		stop := make(chan struct{})
		free := make(chan *blockReader, n*depth+1)
		for range cap(free) {
			free <- blockReaderPool.Get().(*blockReader)
		}
		var wg sync.WaitGroup
		defer func() {
			// The decoders stop before scan returns: a walk that failed
			// returns early, and its caller may then set the part aside
			// and close its files while a decoder still read them.
			close(stop)
			wg.Wait()
			// Every reader is back in free once all blocks were consumed.
			for len(free) > 0 {
				blockReaderPool.Put(<-free)
			}
		}()
		decoded := make([]chan decodedBlock, n)
		for w := range n {
			decoded[w] = make(chan decodedBlock, depth)
			wg.Add(1)
			go func(out chan<- decodedBlock) {
				defer wg.Done()
				take := func() *blockReader {
					select {
					case br := <-free:
						return br
					case <-stop:
						return nil
					}
				}
				sp := spanReaderPool.Get().(*spanReader)
				defer func() {
					sp.forget()
					spanReaderPool.Put(sp)
				}()
				for g := w; g < len(groups)-1; g += n {
					last := blocks[groups[g+1]-1]
					for k := groups[g]; k < groups[g+1]; k++ {
						d := p.decode(cache, blocks[k], take, sp, last)
						select {
						case out <- d:
						case <-stop:
							return
						}
						if d.err != nil {
							return
						}
					}
				}
			}(decoded[w])
		}
		k, g := 0, 0
		next = func() decodedBlock {
			if k == groups[g+1] {
				g++
			}
			d := <-decoded[g%n]
			k++
			return d
		}
		release := func(br *blockReader) { free <- br }
		return p.walk(steps, next, release, metric, from, to, out)
	}
	return p.walk(steps, next, func(br *blockReader) { blockReaderPool.Put(br) }, metric, from, to, out)
}

// rowsOf returns the rows [j, end) of block b holding metric in cell
// range r; first is the metric of every row when the block has no metric
// column.
func rowsOf(b *block, first, metric uint32, r vocab.CellRange) (j, end int) {
	// below reports whether row i sorts before (metric, cell c).
	below := func(i int, c uint64) bool {
		if len(b.metrics) > 0 {
			if m := uint32(b.metrics[i]); m != metric {
				return m < metric
			}
		}
		return uint64(b.cells[i]) < c
	}
	if len(b.metrics) == 0 && first != metric {
		return 0, 0
	}
	lo, hi := 0, len(b.cells)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if below(mid, r.Lo) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	j = lo
	hi = len(b.cells)
	for lo < hi { // the first row after (metric, r.Hi)
		mid := int(uint(lo+hi) >> 1)
		if r.Hi == ^uint64(0) && (len(b.metrics) == 0 || uint32(b.metrics[mid]) == metric) || below(mid, r.Hi+1) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return j, lo
}

// walk calls fn for the matching rows of each step, taking decoded blocks
// from next in order and handing each back to release when done with it.
func (p *part) walk(steps []scanStep, next func() decodedBlock, release func(*blockReader), metric uint32, from, to int64, out rowSink) error {
	var br *blockReader
	var b *block
	var cb *compactBlock
	cur := -1
	for _, st := range steps {
		if st.block != cur {
			if br != nil {
				release(br)
			}
			d := next()
			if d.err != nil {
				return d.err
			}
			br, b, cb, cur = d.br, d.blk, d.cb, st.block
		}
		h := &p.headers[st.block]
		r := st.r
		if cb != nil {
			cb.walk(metric, r, from, to, &out)
			continue
		}
		// The rows of this metric and range: [j, end), found by binary
		// search on (metric, cell), the order of the rows.
		j, end := rowsOf(b, h.First.Metric, metric, r)
		cells, subs, minutes, values := b.cells, b.subs, b.minutes, b.values
		if out.spread && !subsAllZero(h) && hasRuns(subs[j:end]) {
			spreadRows(&out, from, to, cells[j:end], 0, 0, subs[j:end], minutes[j:end], values[j:end])
			continue
		}
		if out.sums != nil {
			sumRows(out.sums, out.step, from, to, 0, minutes[j:end], values[j:end])
			continue
		}
		for k := j; k < end; k++ {
			if m := minutes[k]; m >= from && m < to {
				out.fn(uint64(cells[k]), uint64(subs[k]), m, values[k])
			}
		}
	}
	if br != nil {
		release(br)
	}
	return nil
}
