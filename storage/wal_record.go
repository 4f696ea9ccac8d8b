package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// WAL record types; the first byte of every record payload.
const (
	// recordBatch holds the deltas and trip operations of one or more
	// ingest batches, one key per delta: the records of flowd before
	// recordSeries, still replayed.
	recordBatch byte = 1
	// recordCheckpoint holds every open trip at the start of a segment.
	recordCheckpoint byte = 2
	// recordSeries holds the additions and trip operations of one or more
	// ingest batches grouped by series: each series' key once, then its
	// points with minutes as differences from the previous point. The
	// records of flowd before recordSeries2, still replayed.
	recordSeries byte = 3
	// recordSeries2 is recordSeries with each series' cell written as its
	// difference from the cell before (see appendCellXOR).
	recordSeries2 byte = 4
	// recordRows is recordSeries2 followed by a batch's rows (see row),
	// each its key, minute, value and second value once: what a request
	// of readings writes, about 10 bytes a reading against 16 as two
	// series of one point.
	recordRows byte = 5
	// recordRows2 is recordRows with each row's sub-key rotated left by a
	// bit, so that a spread run's (spreadSub) takes a byte, and rows of
	// spread runs (Batch.AddRunPairRecent) among its rows: what flowd
	// writes for a batch with rows.
	recordRows2 byte = 6
)

// cellEscape is the encoding of a cell difference that the 8 bytes of
// the cell itself follow (see appendCellXOR).
const cellEscape = 63

// appendCellXOR appends the cell difference x, a cell XOR the cell of the
// series before in the record (0 for the first), as a uvarint: 0 when x is
// 0 (a detector's speed series after its count series), otherwise x
// shifted right by its tz trailing zeros (odd) above 6 bits of tz —
// (x>>tz)<<6 | tz. Res-9 cells of one city differ only in a few digits in
// the middle of the id, so such a difference takes mostly 3 bytes. When
// x>>tz has more than 57 bits (the uvarint would take 10 bytes) it
// appends cellEscape, which no difference gives (its shifted part is 0,
// never odd), then cell as 8 bytes little-endian.
func appendCellXOR(dst []byte, x, cell uint64) []byte {
	if v, ok := cellXORCode(x); ok {
		return binary.AppendUvarint(dst, v)
	}
	dst = append(dst, cellEscape)
	return binary.LittleEndian.AppendUint64(dst, cell)
}

// cellXORCode is the uvarint appendCellXOR writes for the difference x,
// or !ok where it writes the escape and the cell.
func cellXORCode(x uint64) (v uint64, ok bool) {
	// TrailingZeros64(0) is 64: masked to 0, x = 0 encodes as 0 with no
	// branch of its own.
	tz := uint(bits.TrailingZeros64(x)) & 63
	m := x >> tz
	return m<<6 | uint64(tz), m < 1<<57
}

// readCellXOR reads a cell that appendCellXOR wrote after the cell prev
// and returns it and the bytes it took: 0 when p is truncated, -1 when
// the encoding is not one appendCellXOR gives (an even shifted part, or
// a uvarint or a shifted part past 64 bits).
func readCellXOR(p []byte, prev uint64) (uint64, int) {
	v, k := binary.Uvarint(p)
	switch {
	case k <= 0:
		return 0, k
	case v == 0:
		return prev, k
	case v == cellEscape:
		if len(p) < k+8 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(p[k:]), k + 8
	}
	tz, m := uint(v&63), v>>6
	if m&1 == 0 || bits.Len64(m)+int(tz) > 64 {
		return 0, -1
	}
	return prev ^ m<<tz, k
}

// appendSeriesRecord encodes a batch's series table and trip operations as
// a WAL record payload (recordSeries2): the number of series and a base
// minute, then per series its metric, its cell as the difference from the
// series before (appendCellXOR: a batch's series come in the order they
// were met, a detector's count and speed of one cell side by side, and
// the cells of one city share all but a few digits), its sub-key and its
// number of points, and each point's minute as the difference from the
// point before (the first from the base) and value; and, when the batch
// has rows, as recordRows2, its rows after the series.
func appendSeriesRecord(dst []byte, t *seriesTable, ops []TripOp) []byte {
	typ := recordSeries2
	if len(t.rows) > 0 {
		typ = recordRows2
	}
	dst = append(dst, typ)
	// A series' second values are written as a series of their own after
	// it.
	dst = binary.AppendUvarint(dst, uint64(len(t.series)+t.seconds))
	base := recordBase(t)
	dst = binary.AppendVarint(dst, base)
	prevCell := uint64(0)
	for i := range t.series {
		se := &t.series[i]
		dst = binary.AppendUvarint(dst, uint64(se.key.Metric))
		dst = appendCellXOR(dst, se.key.Cell^prevCell, se.key.Cell)
		prevCell = se.key.Cell
		dst = binary.AppendUvarint(dst, se.key.Sub)
		dst = binary.AppendUvarint(dst, uint64(se.points))
		// A series of one point has the point read where it is, without
		// walking its chunks.
		var one *point
		if se.points == 1 && se.head == se.tail {
			one = t.at(uint32(se.tailStart))
		}
		if one != nil {
			dst = binary.AppendVarint(dst, int64(one.minute)-base)
			dst = binary.AppendVarint(dst, one.val())
		} else {
			dst = appendRecordPoints(dst, t, se, base, false)
		}
		if se.second == 0 {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(se.second-1))
		dst = appendCellXOR(dst, 0, se.key.Cell) // the same cell
		dst = binary.AppendUvarint(dst, se.key.Sub)
		dst = binary.AppendUvarint(dst, uint64(se.points2))
		switch {
		case one == nil:
			dst = appendRecordPoints(dst, t, se, base, true)
		case one.v2 != 0: // points2 is 1
			dst = binary.AppendVarint(dst, int64(one.minute)-base)
			dst = binary.AppendVarint(dst, int64(one.v2))
		}
	}
	if typ == recordRows2 {
		// The rows: their number, then each row's metric, cell (as the
		// difference from the row before's, the first's from 0), sub-key
		// (rotated left a bit), minute (less base), value, second value's
		// metric + 1 (0 for none) and, with one, the second value.
		dst = binary.AppendUvarint(dst, uint64(len(t.rows)))
		dst = appendRows(dst, t.rows, base)
	}
	return appendTripOps(dst, ops)
}

// maxRowBytes bounds the bytes appendRows writes for a row: a metric and
// a second metric (5 each), a cell (9), a sub-key, a minute and a value
// (10 each) and a second value (5).
const maxRowBytes = 5 + 9 + 10 + 10 + 10 + 5 + 5

// appendRows appends rows as a recordRows2 payload holds them (see
// appendSeriesRecord), each cell as the difference from the row before's
// (the first's from 0). It writes into room made once for all of them,
// its uvarints a byte at a time by index: a request of 10,000 readings
// is 70,000 numbers, and binary.AppendUvarint appends each byte, its
// capacity checked and the slice's length kept in memory.
func appendRows(dst []byte, rows []row, base int64) []byte {
	at := len(dst)
	dst = slices.Grow(dst, len(rows)*maxRowBytes)
	b := dst[:cap(dst)]
	prevCell := uint64(0)
	for i := range rows {
		r := &rows[i]
		at = putUvarint(b, at, uint64(r.key.Metric))
		v, ok := cellXORCode(r.key.Cell ^ prevCell)
		prevCell = r.key.Cell
		if ok {
			at = putUvarint(b, at, v)
		} else {
			b[at] = cellEscape
			binary.LittleEndian.PutUint64(b[at+1:], r.key.Cell)
			at += 9
		}
		at = putUvarint(b, at, bits.RotateLeft64(r.key.Sub, 1))
		at = putUvarint(b, at, zigzag(int64(r.minute)-base))
		at = putUvarint(b, at, zigzag(r.v))
		at = putUvarint(b, at, uint64(r.second))
		if r.second != 0 {
			at = putUvarint(b, at, uint64(r.v2))
		}
	}
	return dst[:at]
}

// putUvarint writes v as a uvarint at b[at:], which has room for it, and
// returns the index after it. A value under 2^7 — most of a row's — is
// one store and no loop.
func putUvarint(b []byte, at int, v uint64) int {
	if v < 0x80 {
		b[at] = byte(v)
		return at + 1
	}
	return at + binary.PutUvarint(b[at:], v)
}

// zigzag maps a signed value to an unsigned one as binary.AppendVarint
// does: small magnitudes to small values.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// recordBase is the base minute of a series record of t: the minute of
// the last chunk's first point of its first series with points.
func recordBase(t *seriesTable) int64 {
	for i := range t.series {
		if se := &t.series[i]; se.tail >= 0 {
			run, _, _ := t.chunkAt(se, se.tail)
			return int64(run[0].minute)
		}
	}
	if len(t.rows) > 0 {
		return int64(t.rows[0].minute)
	}
	return 0
}

// appendRecordPoints appends the points of series se of t as a series
// record holds them: each minute as the difference from the point before
// (the first from base), then the value; or, if second, the second values
// of the points that hold one, as the points of a series of their own.
func appendRecordPoints(dst []byte, t *seriesTable, se *series, base int64, second bool) []byte {
	prev := base
	for c := se.head; c >= 0; {
		var run []point
		run, _, c = t.chunkAt(se, c)
		for _, pt := range run {
			v := pt.val()
			if second {
				if pt.v2 == 0 {
					continue
				}
				v = int64(pt.v2)
			}
			dst = binary.AppendVarint(dst, int64(pt.minute)-prev)
			dst = binary.AppendVarint(dst, v)
			prev = int64(pt.minute)
		}
	}
	return dst
}

// decodeRows adds the rows of a recordRows payload, or of a recordRows2
// payload if rotated, after its series (base is their base minute), to
// t's rows and returns the rest of the payload. A row is a plain sum or,
// in recordRows2, a run of a spreading metric and its pair's: one of a
// sketch's metric, a run of another metric or of a length or minutes
// AddRun refuses, a spreading metric's row with a sub-key of a part's
// runs (2 to 60), or a second value outside 1 to 2^32-1, fails the
// record, as no batch makes such a row.
func decodeRows(p []byte, base int64, t *seriesTable, isMax, isSpread func(uint32) bool, rotated bool) ([]byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return nil, fmt.Errorf("bad row count")
	}
	p = p[k:]
	cell := uint64(0)
	var sub uint64
	fits := func(metric uint64) bool {
		if isMax(uint32(metric)) {
			return false
		}
		if sub == spreadSub {
			return rotated && isSpread(uint32(metric))
		}
		return !isSpread(uint32(metric)) || sub < 2 || sub > maxSpread
	}
	for i := uint64(0); i < n; i++ {
		var r row
		metric, k := binary.Uvarint(p)
		if k > 0 {
			p = p[k:]
			cell, k = readCellXOR(p, cell)
		}
		var second uint64
		var minute int64
		if k > 0 {
			p = p[k:]
			sub, k = binary.Uvarint(p)
			if rotated {
				sub = bits.RotateLeft64(sub, -1)
			}
		}
		if k > 0 {
			p = p[k:]
			minute, k = binary.Varint(p)
		}
		if k > 0 {
			p = p[k:]
			r.v, k = binary.Varint(p)
		}
		if k > 0 {
			p = p[k:]
			second, k = binary.Uvarint(p)
		}
		if k > 0 {
			p = p[k:]
			if second != 0 {
				var v2 uint64
				v2, k = binary.Uvarint(p)
				if k > 0 {
					p = p[k:]
					if v2 == 0 || v2 > math.MaxUint32 {
						return nil, fmt.Errorf("row %d of %d: second value %d out of range", i, n, v2)
					}
					r.v2 = uint32(v2)
				}
			}
		}
		switch {
		case k == 0:
			return nil, fmt.Errorf("row %d of %d is truncated", i, n)
		case k < 0:
			return nil, fmt.Errorf("row %d of %d: bad encoding", i, n)
		case metric > math.MaxUint32 || second > math.MaxUint32:
			return nil, fmt.Errorf("row %d of %d: metric id %d or %d out of range", i, n, metric, second)
		case !fits(metric) || second != 0 && !fits(second-1):
			return nil, fmt.Errorf("row %d of %d: metric %d sub-key %d is not a plain sum or a spread run", i, n, metric, sub)
		case !MinuteInRange(base + minute):
			return nil, fmt.Errorf("row %d of %d: minute out of range", i, n)
		}
		if sub == spreadSub {
			m := base + minute
			if rn, rv := unpackSpread(r.v); rn < 2 || rn > maxSpread || rv < 0 || TierHour.Truncate(m) != TierHour.Truncate(m+rn-1) || !MinuteInRange(m+rn-1) {
				return nil, fmt.Errorf("row %d of %d: a run of %d minutes from minute %d summing %d", i, n, rn, m, rv)
			}
		}
		r.key = SeriesKey{Metric: uint32(metric), Cell: cell, Sub: sub}
		r.minute, r.second = int32(base+minute), uint32(second)
		t.rows = append(t.rows, r)
		if r.second != 0 {
			t.rowSeconds++
		}
	}
	return p, nil
}

// decodeSeries adds the series of a recordSeries payload, or of a
// recordSeries2 payload if xorCells, (after its type byte) to t and
// returns the rest of the payload.
func decodeSeries(p []byte, xorCells bool, t *seriesTable, isMax, isSpread func(uint32) bool) ([]byte, int64, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return nil, 0, fmt.Errorf("bad series count")
	}
	p = p[k:]
	base, k := binary.Varint(p)
	if k <= 0 {
		return nil, 0, fmt.Errorf("bad base minute")
	}
	p = p[k:]
	cell := uint64(0)
	for i := uint64(0); i < n; i++ {
		metric, k1 := binary.Uvarint(p)
		if k1 <= 0 {
			return nil, 0, fmt.Errorf("series %d of %d is truncated", i, n)
		}
		p = p[k1:]
		if xorCells {
			cell, k1 = readCellXOR(p, cell)
			if k1 < 0 {
				return nil, 0, fmt.Errorf("series %d of %d: bad cell encoding", i, n)
			}
		} else if len(p) >= 8 {
			cell, k1 = binary.LittleEndian.Uint64(p), 8
		} else {
			k1 = 0
		}
		if k1 == 0 {
			return nil, 0, fmt.Errorf("series %d of %d is truncated", i, n)
		}
		p = p[k1:]
		sub, k2 := binary.Uvarint(p)
		if k2 <= 0 {
			return nil, 0, fmt.Errorf("series %d of %d is truncated", i, n)
		}
		points, k3 := binary.Uvarint(p[k2:])
		if k3 <= 0 {
			return nil, 0, fmt.Errorf("series %d of %d is truncated", i, n)
		}
		p = p[k2+k3:]
		if metric > 1<<32-1 {
			return nil, 0, fmt.Errorf("series %d of %d: metric id %d out of range", i, n, metric)
		}
		// A sketch series of flowd before registerBits has a series per
		// register: its points are packed here.
		m := isMax(uint32(metric))
		k := SeriesKey{Metric: uint32(metric), Cell: cell, Sub: sub}
		if m {
			k.Sub = 0
		}
		spread := !m && isSpread(uint32(metric)) && (sub == spreadSub || sub >= 2 && sub <= maxSpread)
		if spread {
			k.Sub = spreadSub // a run keyed by its length, before packed runs, is packed below
		}
		s := t.lookup(k, k.hash(), m, spread)
		minute := base
		for j := uint64(0); j < points; j++ {
			d, k1 := binary.Varint(p)
			if k1 <= 0 {
				return nil, 0, fmt.Errorf("series %d of %d: point %d is truncated", i, n, j)
			}
			v, k2 := binary.Varint(p[k1:])
			if k2 <= 0 {
				return nil, 0, fmt.Errorf("series %d of %d: point %d is truncated", i, n, j)
			}
			p = p[k1+k2:]
			minute += d
			if !MinuteInRange(minute) {
				return nil, 0, fmt.Errorf("series %d of %d: minute %d out of range", i, n, minute)
			}
			if m {
				if v < 0 || (sub != 0 && v >= 1<<registerBits) || sub >= maxRegister || uint64(v)>>registerBits >= maxRegister {
					return nil, 0, fmt.Errorf("series %d of %d: point %d: sketch value %d out of range", i, n, j, v)
				}
				v = packRegister(sub, v)
			}
			if spread && sub != spreadSub {
				if v < 0 || v > maxSpreadSum {
					return nil, 0, fmt.Errorf("series %d of %d: point %d: run sum %d out of range", i, n, j, v)
				}
				v = packSpread(int64(sub), v)
			}
			if spread {
				if rn, rv := unpackSpread(v); rn < 2 || rn > maxSpread || rv < 0 || TierHour.Truncate(minute) != TierHour.Truncate(minute+rn-1) {
					return nil, 0, fmt.Errorf("series %d of %d: point %d: a run of %d minutes from minute %d summing %d", i, n, j, rn, minute, rv)
				}
			}
			t.add(s, minute, v)
		}
	}
	return p, base, nil
}

// decodeRecord adds the additions of a WAL record payload to t and calls
// op for every trip operation; a checkpoint first calls reset.
func decodeRecord(p []byte, t *seriesTable, isMax, isSpread func(uint32) bool, op func(TripOp), reset func()) error {
	if len(p) == 0 {
		return fmt.Errorf("empty WAL record")
	}
	switch p[0] {
	case recordSeries, recordSeries2, recordRows, recordRows2:
		rest, base, err := decodeSeries(p[1:], p[0] != recordSeries, t, isMax, isSpread)
		if err == nil && p[0] >= recordRows {
			rest, err = decodeRows(rest, base, t, isMax, isSpread, p[0] == recordRows2)
		}
		if err != nil {
			return err
		}
		return decodeTrailingTripOps(rest, op)
	case recordBatch:
	case recordCheckpoint:
		reset()
		rest, err := decodeTripOps(p[1:], op)
		if err == nil && len(rest) != 0 {
			err = fmt.Errorf("%d bytes after the checkpoint", len(rest))
		}
		return err
	default:
		return fmt.Errorf("unknown WAL record type %d", p[0])
	}
	p = p[1:]
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return fmt.Errorf("bad delta count")
	}
	p = p[k:]
	for i := uint64(0); i < n; i++ {
		var d Delta
		var vals [5]uint64
		for j := range vals {
			var v uint64
			var k int
			if j < 3 {
				v, k = binary.Uvarint(p)
			} else {
				var sv int64
				sv, k = binary.Varint(p)
				v = uint64(sv)
			}
			if k <= 0 {
				return fmt.Errorf("delta %d of %d is truncated", i, n)
			}
			vals[j] = v
			p = p[k:]
		}
		d.Metric, d.Cell, d.Sub, d.Minute, d.Value = uint32(vals[0]), vals[1], vals[2], int64(vals[3]), int64(vals[4])
		if !MinuteInRange(d.Minute) {
			return fmt.Errorf("delta %d of %d: minute %d out of range", i, n, d.Minute)
		}
		t.addKey(SeriesKey{d.Metric, d.Cell, d.Sub}, isMax(d.Metric), d.Minute, d.Value)
	}
	return decodeTrailingTripOps(p, op)
}

// decodeTrailingTripOps decodes the trip operations that end a record.
func decodeTrailingTripOps(p []byte, op func(TripOp)) error {
	p, err := decodeTripOps(p, op)
	if err != nil {
		return err
	}
	if len(p) != 0 {
		return fmt.Errorf("%d bytes after the last trip operation", len(p))
	}
	return nil
}
