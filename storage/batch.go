package storage

import (
	"fmt"
	"math"

	"github.com/flowd/flowd/internal/freelist"
)

// Batch collects the bucket additions of one ingest request, grouped by
// series (or, for readings, as rows: see AddPairRecent), for one durable
// write (Store.Submit). Additions to the same bucket are combined as they
// come when they are consecutive in their series, which is how a
// request's events usually arrive. A Batch is not safe for concurrent
// use.
type Batch struct {
	t       seriesTable
	err     error
	scratch shardScratch // for applying to the memtable
	// first and last are the earliest and latest minute the batch adds
	// to, when spanned: a batch of history tells the live map at once
	// that it has nothing for it (AppendDeltasIn).
	first, last int64
	spanned     bool
	// recent holds the index + 1 of series SeriesRecent made or found
	// lately, and the low half of their keys' hash, by its top bits.
	recent [recentSlots]uint64
	// recentRows is recent for the rows AddPairRecent made.
	recentRows [recentSlots]uint64
}

// recentSlots is the size of Batch.recent: more than the keys a request
// interleaves (the classes of the sensors of a cell).
const (
	recentBits  = 8
	recentSlots = 1 << recentBits
)

// freeBatches keeps a few released batches, about as many as requests in
// flight, with their grown index and lists: a batch of 10,000 events
// regrown from nothing costs more than decoding it.
var freeBatches = freelist.New[Batch](8)

// NewBatch returns an empty batch, reused when one is free; Release
// returns it.
func NewBatch() *Batch {
	if b := freeBatches.Get(); b != nil {
		return b
	}
	return &Batch{}
}

// Release empties b and keeps it for reuse. b must not be used after.
func (b *Batch) Release() {
	b.t.reset()
	b.t.trim()
	b.err = nil
	b.spanned = false
	b.recent = [recentSlots]uint64{}
	b.recentRows = [recentSlots]uint64{}
	freeBatches.Put(b)
}

// Series returns a handle of the series (metric, cell, sub) of a metric
// of sums, for adding several buckets to it with AddTo. A sketch's
// registers go through Add.
func (b *Batch) Series(metric uint32, cell, sub uint64) int32 {
	k := SeriesKey{Metric: metric, Cell: cell, Sub: sub}
	return b.t.lookup(k, k.hash(), false, false)
}

// SeriesRecent is Series for additions whose keys mostly differ from one
// another, a request of readings where each sensor comes once or twice:
// it finds the series of (metric, cell, sub) among those it gave lately,
// in a small table of them by hash, and otherwise makes a new one outside
// the batch's index, even if the batch has one of that key. A batch may
// then hold several series of one key, which is as good as one: the
// memtable, a WAL record's replay and the deltas' readers add them up.
// It saves, for every new key, the probe of an index a request's keys
// spread over: a cache miss where the server has the request's body, its
// series and the memtable in the caches too.
func (b *Batch) SeriesRecent(metric uint32, cell, sub uint64) int32 {
	k := SeriesKey{Metric: metric, Cell: cell, Sub: sub}
	h := k.hash()
	r := &b.recent[h>>(64-recentBits)]
	// The hash's low half beside the index: a slot of another key is
	// told without reading its series, a line the request left long ago.
	if s := int32(*r>>32) - 1; s >= 0 && uint32(*r) == uint32(h) && b.t.series[s].key == k {
		return s
	}
	s := b.t.appendUnindexed(k)
	*r = uint64(s+1)<<32 | uint64(uint32(h))
	return s
}

// AddPairRecent adds v to the bucket of minute of the series (metric,
// cell, sub) and v2 to the same bucket of (pair, cell, sub): a detector
// class's count and its speed sum. It is made for a request of readings
// where each sensor comes once or twice: the pair is a row of the batch
// (see row), added to the last row of the same key and minute made
// lately, if any, and otherwise new. v2 is kept in the row, as its second
// value, when it is from 1 to 2^32-1 and the sum there stays so; a v2
// outside that goes to the pair's series. A request of readings then
// makes a row, one key to look up in the memtable and one point there a
// reading, not two of each.
func (b *Batch) AddPairRecent(metric, pair uint32, cell, sub uint64, minute, v, v2 int64) {
	if !MinuteInRange(minute) {
		if b.err == nil {
			b.err = fmt.Errorf("minute %d is out of range", minute)
		}
		return
	}
	if v2 < 0 || v2 > math.MaxUint32 {
		b.AddTo(b.SeriesRecent(metric, cell, sub), minute, v)
		b.AddTo(b.SeriesRecent(pair, cell, sub), minute, v2)
		return
	}
	second := uint32(0)
	if v2 != 0 {
		second = pair + 1
	}
	b.addRow(SeriesKey{Metric: metric, Cell: cell, Sub: sub}, int32(minute), second, v, uint32(v2))
}

// AddRecent adds v to the bucket of minute of the series (metric, cell,
// sub) as AddPairRecent does, without a second value.
func (b *Batch) AddRecent(metric uint32, cell, sub uint64, minute, v int64) {
	if !MinuteInRange(minute) {
		if b.err == nil {
			b.err = fmt.Errorf("minute %d is out of range", minute)
		}
		return
	}
	b.addRow(SeriesKey{Metric: metric, Cell: cell, Sub: sub}, int32(minute), 0, v, 0)
}

// AddRunPairRecent adds a run of spread readings (see SpreadPiece) as
// AddPairRecent adds a reading: n minutes from minute (2 to 60 within one
// hour) whose minutes each count v/n of metric and v2/n of pair, v and v2
// being the run's sums, multiples of n. It is a row with the spread
// sub-key (see spreadSub), its value packed with its length (packSpread)
// and its second value the pair's sum as it is; it is added to a recent
// row of the same key, minute and length. v2 past 32 bits goes to the
// pair's spread series. An hourly reading then costs a row, as a reading
// of one minute does, not two series found in the batch's index.
func (b *Batch) AddRunPairRecent(metric, pair uint32, cell uint64, minute, n, v, v2 int64) {
	if !b.validRun(minute, n, v) || !b.validRun(minute, n, v2) {
		return
	}
	if v2 > math.MaxUint32 {
		b.AddRun(b.SeriesSpread(pair, cell), minute, n, v2)
		v2 = 0
	}
	second := uint32(0)
	if v2 != 0 {
		second = pair + 1
	}
	b.addRow(SeriesKey{Metric: metric, Cell: cell, Sub: spreadSub}, int32(minute), second, packSpread(n, v), uint32(v2))
	b.span(minute + n - 1)
}

// validRun reports whether a run of n minutes from minute summing v is
// one AddRun takes, and fails the batch otherwise.
func (b *Batch) validRun(minute, n, v int64) bool {
	var err error
	switch {
	case !MinuteInRange(minute) || !MinuteInRange(minute+n-1):
		err = fmt.Errorf("minute %d is out of range", minute)
	case n < 2 || n > maxSpread || TierHour.Truncate(minute) != TierHour.Truncate(minute+n-1):
		err = fmt.Errorf("a run of %d minutes from minute %d; want 2 to %d within an hour", n, minute, maxSpread)
	case v < 0 || v > maxSpreadSum || v%n != 0:
		err = fmt.Errorf("a run of %d minutes summing %d; want a multiple of %d up to %d", n, v, n, int64(maxSpreadSum))
	default:
		return true
	}
	if b.err == nil {
		b.err = err
	}
	return false
}

// addRow adds a reading to the row of its key and minute that recentRows
// names, when that row can take it (its second value is of the same
// metric, or either has none, and the sum stays within 32 bits), or as a
// new row.
func (b *Batch) addRow(k SeriesKey, minute int32, second uint32, v int64, v2 uint32) {
	t := &b.t
	h := k.hash()
	r := &b.recentRows[h>>(64-recentBits)]
	// The hash's low half beside the row's index + 1, as in
	// SeriesRecent.
	if at := int32(*r>>32) - 1; at >= 0 && uint32(*r) == uint32(h) {
		if rw := &t.rows[at]; rw.key == k && rw.minute == minute && (second == 0 || rw.second == 0 || rw.second == second) && uint64(rw.v2)+uint64(v2) <= math.MaxUint32 && (k.Sub != spreadSub || (rw.v^v)&(1<<spreadLenBits-1) == 0) {
			if k.Sub == spreadSub { // a run of the same length
				rw.v = addSpread(rw.v, v)
			} else {
				rw.v += v
			}
			if second != 0 {
				if rw.second == 0 {
					rw.second = second
					t.rowSeconds++
				}
				rw.v2 += v2
			}
			return
		}
	}
	b.span(int64(minute))
	if i := len(t.rows); i < math.MaxInt32 {
		*r = uint64(i+1)<<32 | uint64(uint32(h))
	}
	t.rows = append(t.rows, row{key: k, minute: minute, second: second, v: v, v2: v2})
	if second != 0 {
		t.rowSeconds++
	}
}

// SeriesSpread returns a handle of the series of runs of spread readings
// of a spreading metric (see vocab.Spreads) in a cell, for AddRun.
func (b *Batch) SeriesSpread(metric uint32, cell uint64) int32 {
	k := SeriesKey{Metric: metric, Cell: cell, Sub: spreadSub}
	return b.t.lookup(k, k.hash(), false, true)
}

// AddRun adds to series s, a handle from SeriesSpread, a run of n minutes
// from minute (2 to 60 within one hour, see SpreadPiece) whose minutes
// each count v/n: v is the run's sum, a multiple of n.
func (b *Batch) AddRun(s int32, minute, n, v int64) {
	if b.validRun(minute, n, v) {
		b.AddTo(s, minute, packSpread(n, v))
		b.span(minute + n - 1)
	}
}

// AddTo adds v to the bucket of minute in series s, a handle from Series.
// A minute out of range (see MinuteInRange) fails the batch at Submit.
func (b *Batch) AddTo(s int32, minute, v int64) {
	if !MinuteInRange(minute) {
		if b.err == nil {
			b.err = fmt.Errorf("minute %d is out of range", minute)
		}
		return
	}
	b.span(minute)
	b.t.add(s, minute, v)
}

// span widens the batch's span of minutes to minute.
func (b *Batch) span(minute int64) {
	if !b.spanned {
		b.first, b.last, b.spanned = minute, minute, true
		return
	}
	b.first, b.last = min(b.first, minute), max(b.last, minute)
}

// Add adds v to one bucket. isMax says the metric keeps maxima (a
// sketch, whose registers are the sub-keys and whose values fit 8 bits),
// not sums.
func (b *Batch) Add(metric uint32, isMax bool, cell, sub uint64, minute, v int64) {
	if !isMax {
		b.AddTo(b.Series(metric, cell, sub), minute, v)
		return
	}
	var err error
	switch {
	case !MinuteInRange(minute):
		err = fmt.Errorf("minute %d is out of range", minute)
	case v < 0 || v >= 1<<registerBits || sub >= maxRegister:
		err = fmt.Errorf("sketch register %d value %d is out of range", sub, v)
	default:
		b.span(minute)
		b.t.addKey(SeriesKey{Metric: metric, Cell: cell, Sub: sub}, true, minute, v)
		return
	}
	if b.err == nil {
		b.err = err
	}
}

// Len is the number of values the batch holds, in points and rows, each
// second value counted: at most one a bucket for the additions that came
// in order.
func (b *Batch) Len() int { return b.t.len() }

// AppendDeltas appends the batch's additions to dst as deltas.
func (b *Batch) AppendDeltas(dst []Delta) []Delta {
	return b.AppendDeltasIn(dst, math.MinInt64, math.MaxInt64)
}

// AppendDeltasIn appends the batch's additions to minutes in [lo, hi] to
// dst as deltas: what a reader of recent minutes only (the live map) needs
// of a batch, without a copy of an imported history.
func (b *Batch) AppendDeltasIn(dst []Delta, lo, hi int64) []Delta {
	if b.spanned && (b.last < lo || b.first > hi) {
		return dst // nothing in [lo, hi]: no need to read the points
	}
	for i := range b.t.series {
		se := &b.t.series[i]
		k := se.key
		for c := se.head; c >= 0; {
			var run []point
			run, _, c = b.t.chunkAt(se, c)
			for _, pt := range run {
				m := int64(pt.minute)
				if se.spread {
					n, v := unpackSpread(pt.val())
					eachShare(m, n, v, lo, min(hi, math.MaxInt64-1)+1, func(m, v int64) {
						dst = append(dst, Delta{Key: Key{Metric: k.Metric, Cell: k.Cell, Minute: m}, Value: v})
					})
					continue
				}
				if m < lo || m > hi {
					continue
				}
				sub, v := k.Sub, pt.val()
				if se.isMax {
					sub, v = unpackRegister(v)
				}
				dst = append(dst, Delta{Key: Key{Metric: k.Metric, Cell: k.Cell, Sub: sub, Minute: m}, Value: v})
				if pt.v2 != 0 {
					dst = append(dst, Delta{Key: Key{Metric: se.second - 1, Cell: k.Cell, Sub: k.Sub, Minute: m}, Value: int64(pt.v2)})
				}
			}
		}
	}
	for i := range b.t.rows {
		r := &b.t.rows[i]
		if r.key.Sub == spreadSub {
			dst = r.appendSpreadDeltas(dst, lo, hi)
			continue
		}
		if m := int64(r.minute); m >= lo && m <= hi {
			dst = append(dst, Delta{Key: Key{Metric: r.key.Metric, Cell: r.key.Cell, Sub: r.key.Sub, Minute: m}, Value: r.v})
			if r.second != 0 {
				dst = append(dst, Delta{Key: Key{Metric: r.second - 1, Cell: r.key.Cell, Sub: r.key.Sub, Minute: m}, Value: int64(r.v2)})
			}
		}
	}
	return dst
}

// appendSpreadDeltas appends the deltas of r, a run of spread readings
// (Batch.AddRunPairRecent), to minutes in [lo, hi]: each minute's share
// of its value and of its second value.
func (r *row) appendSpreadDeltas(dst []Delta, lo, hi int64) []Delta {
	m, to := int64(r.minute), min(hi, math.MaxInt64-1)+1
	n, v := unpackSpread(r.v)
	eachShare(m, n, v, lo, to, func(m, v int64) {
		dst = append(dst, Delta{Key: Key{Metric: r.key.Metric, Cell: r.key.Cell, Minute: m}, Value: v})
	})
	if r.second != 0 {
		eachShare(m, n, int64(r.v2), lo, to, func(m, v int64) {
			dst = append(dst, Delta{Key: Key{Metric: r.second - 1, Cell: r.key.Cell, Minute: m}, Value: v})
		})
	}
	return dst
}
