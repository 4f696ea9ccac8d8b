package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"
)

// appendBatchRecord encodes deltas and trip operations as earlier flowd
// did (recordBatch), for tests that such a log still replays.
func appendBatchRecord(dst []byte, deltas []Delta, ops []TripOp) []byte {
	dst = append(dst, recordBatch)
	dst = binary.AppendUvarint(dst, uint64(len(deltas)))
	for _, d := range deltas {
		dst = binary.AppendUvarint(dst, uint64(d.Metric))
		dst = binary.AppendUvarint(dst, d.Cell)
		dst = binary.AppendUvarint(dst, d.Sub)
		dst = binary.AppendVarint(dst, d.Minute)
		dst = binary.AppendVarint(dst, d.Value)
	}
	return appendTripOps(dst, ops)
}

// appendSeriesRecordV3 encodes a series table and trip operations as
// flowd did before recordSeries2 (recordSeries: each cell as 8 bytes), for
// tests that such records still replay.
func appendSeriesRecordV3(dst []byte, t *seriesTable, ops []TripOp) []byte {
	dst = append(dst, recordSeries)
	dst = binary.AppendUvarint(dst, uint64(len(t.series)+t.seconds+len(t.rows)+t.rowSeconds))
	base := recordBase(t)
	dst = binary.AppendVarint(dst, base)
	for i := range t.series {
		se := &t.series[i]
		dst = binary.AppendUvarint(dst, uint64(se.key.Metric))
		dst = binary.LittleEndian.AppendUint64(dst, se.key.Cell)
		dst = binary.AppendUvarint(dst, se.key.Sub)
		dst = binary.AppendUvarint(dst, uint64(se.points))
		dst = appendRecordPoints(dst, t, se, base, false)
		if se.second != 0 {
			dst = binary.AppendUvarint(dst, uint64(se.second-1))
			dst = binary.LittleEndian.AppendUint64(dst, se.key.Cell)
			dst = binary.AppendUvarint(dst, se.key.Sub)
			dst = binary.AppendUvarint(dst, uint64(se.points2))
			dst = appendRecordPoints(dst, t, se, base, true)
		}
	}
	// A batch's rows (which flowd of type 3 did not have) as series of
	// one point, the same buckets as appendSeriesRecord's rows (recordRows2).
	for _, r := range t.rows {
		dst = appendV3Point(dst, r.key, int64(r.minute)-base, r.v)
		if r.second != 0 {
			dst = appendV3Point(dst, SeriesKey{Metric: r.second - 1, Cell: r.key.Cell, Sub: r.key.Sub}, int64(r.minute)-base, int64(r.v2))
		}
	}
	return appendTripOps(dst, ops)
}

// appendV3Point appends a series of one point as a type-3 record holds it.
func appendV3Point(dst []byte, k SeriesKey, minute, v int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(k.Metric))
	dst = binary.LittleEndian.AppendUint64(dst, k.Cell)
	dst = binary.AppendUvarint(dst, k.Sub)
	dst = binary.AppendUvarint(dst, 1)
	dst = binary.AppendVarint(dst, minute)
	return binary.AppendVarint(dst, v)
}

// appendOldFrame frames a record payload as flowd did before WAL format 2:
// its length and checksum, no marker, no segment header.
func appendOldFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// TestSeriesRecordRoundTrip writes batches as WAL records and reads them
// back: series without points, far-apart minutes, maxima and trip
// operations come back as they went in.
func TestSeriesRecordRoundTrip(t *testing.T) {
	b := NewBatch()
	defer b.Release()
	b.Series(3, 0x89309a000000000, 0) // a series left without points
	b.Add(1, false, 0x89309a000000fff, 0, 27000000, 5)
	b.Add(1, false, 0x89309a000000fff, 0, 27000000, 2) // combined with the point before
	b.Add(1, false, 0x89309a000000fff, 0, 1, -7)
	b.Add(2, true, 0x89309a000001fff, 1<<13, 27000001, 3)
	b.Add(2, true, 0x89309a000001fff, 1<<13, 27000001, 9)
	ops := []TripOp{{Open: true, Trip: OpenTrip{Card: 42, Start: 1620000000, Cell: 7}}}
	rec := appendSeriesRecord(nil, &b.t, ops)
	var got seriesTable
	var gotOps []TripOp
	isMax := func(m uint32) bool { return m == 2 }
	if err := decodeRecord(rec, &got, isMax, noSpread, func(op TripOp) { gotOps = append(gotOps, op) }, func() {}); err != nil {
		t.Fatal(err)
	}
	want := b.AppendDeltas(nil)
	back := (&Batch{t: got}).AppendDeltas(nil)
	if !slices.Equal(back, want) || len(want) != 3 {
		t.Fatalf("read back %v, want %v", back, want)
	}
	if len(gotOps) != 1 || gotOps[0] != ops[0] {
		t.Fatalf("trip operations %v, want %v", gotOps, ops)
	}
	for cut := 1; cut < len(rec); cut++ {
		var part seriesTable
		if err := decodeRecord(rec[:cut], &part, isMax, noSpread, func(TripOp) {}, func() {}); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(rec))
		}
	}
}

// TestOldDeltaRecordsReplay writes a segment of type-1 records, as flowd
// wrote before series records, and checks that a store opened on it has
// their buckets and open trips.
func TestOldDeltaRecordsReplay(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	id, _ := s.MetricID("count_car")
	crash(s)
	payload := appendBatchRecord(nil, []Delta{
		{Key{Metric: id, Cell: 10, Minute: 27000000}, 4},
		{Key{Metric: id, Cell: 10, Minute: 27000001}, 6},
	}, []TripOp{{Open: true, Trip: OpenTrip{Card: 9, Start: 1620000000, Cell: 10}}})
	rec := appendOldFrame(nil, payload)
	s = reopenWithSegment(t, dir, rec)
	defer s.Close()
	total, _ := sumAll(t, s, TierMinute, "count_car")
	if total != 10 {
		t.Errorf("replayed old records sum to %d, want 10", total)
	}
	if trips := s.OpenTrips(); len(trips) != 1 || trips[0].Card != 9 {
		t.Errorf("open trips after the old records: %+v", trips)
	}
}

func noSpread(uint32) bool { return false }

// TestSpreadRunsReplayAndBadRunsFail: a record of a cell's spread runs
// reads back as the same runs, and one whose packed run is not a run (a
// length of 0 or 1, or one that crosses an hour) fails to decode rather
// than divide by zero in a later scan.
func TestSpreadRunsReplayAndBadRunsFail(t *testing.T) {
	isSpread := func(m uint32) bool { return m == 4 }
	b := NewBatch()
	defer b.Release()
	b.AddRun(b.SeriesSpread(4, 10), 27000000, 30, 90)
	rec := appendSeriesRecord(nil, &b.t, nil)
	var got seriesTable
	if err := decodeRecord(rec, &got, noSpread, isSpread, func(TripOp) {}, func() {}); err != nil {
		t.Fatal(err)
	}
	if back, want := (&Batch{t: got}).AppendDeltas(nil), b.AppendDeltas(nil); !slices.Equal(back, want) || len(want) != 30 {
		t.Fatalf("read back %d deltas, want the run's 30 minutes: %v", len(back), back)
	}
	for _, bad := range []point{mkPoint(27000000, packSpread(0, 90)), mkPoint(27000000, packSpread(1, 90)), mkPoint(27000050, packSpread(30, 90))} {
		var raw seriesTable
		k := SeriesKey{Metric: 4, Cell: 10, Sub: spreadSub}
		raw.add(raw.lookup(k, k.hash(), false, true), int64(bad.minute), bad.val())
		var out seriesTable
		if err := decodeRecord(appendSeriesRecord(nil, &raw, nil), &out, noSpread, isSpread, func(TripOp) {}, func() {}); err == nil {
			n, v := unpackSpread(bad.val())
			t.Errorf("a run of %d minutes summing %d from minute %d decoded", n, v, bad.minute%60)
		}
	}
}

// TestAppendDeltasInIsTheWindowOfAll: the deltas of a window are those of
// the whole batch that fall in it, at every edge of its span (a spread
// run's last minute, a sketch's), and a window beside the span gets none.
func TestAppendDeltasInIsTheWindowOfAll(t *testing.T) {
	b := NewBatch()
	defer b.Release()
	b.Add(1, false, 10, 0, 1000, 3)
	b.Add(1, false, 11, 0, 1005, 4)
	b.AddRun(b.SeriesSpread(2, 12), 1020, 10, 30) // minutes 1020–1029
	b.Add(3, true, 13, 7, 990, 5)                 // a sketch's register
	all := b.AppendDeltas(nil)
	if len(all) != 13 {
		t.Fatalf("%d deltas, want 13: %v", len(all), all)
	}
	for lo := int64(980); lo <= 1040; lo++ {
		for _, hi := range []int64{lo, lo + 1, lo + 9, lo + 100} {
			var want []Delta
			for _, d := range all {
				if d.Minute >= lo && d.Minute <= hi {
					want = append(want, d)
				}
			}
			if got := b.AppendDeltasIn(nil, lo, hi); !slices.Equal(got, want) {
				t.Fatalf("[%d, %d]: %v, want %v", lo, hi, got, want)
			}
		}
	}
}

// TestCellXOREncoding checks the cell differences of recordSeries2 at the
// edges of their encoding: the same cell in one byte, the longest
// difference without the escape, the escape, and that every encoding
// appendCellXOR does not give fails to read, as does every truncation.
func TestCellXOREncoding(t *testing.T) {
	const prev = 0x89309a3a1bfffff
	for _, c := range []struct {
		x    uint64
		size int
	}{
		{0, 1},
		{1, 1},                        // 1<<6 | 0
		{1 << 63, 1},                  // 1<<6 | 63: a shift of 63 is not the escape
		{0x7 << 18, 2},                // one res-9 digit: 7<<6 | 18
		{0x5 << 30, 2},                // a digit further up
		{0x1ab << 18, 3},              // neighbours in one res-9 parent's children
		{1<<57 - 1, 9},                // the longest difference without the escape
		{(1<<57 - 1) << 7, 9},         // the same, shifted
		{1 << 57, 1},                  // 1<<6 | 57
		{1<<57 | 1, 9},                // escape
		{math.MaxUint64, 9},           // escape
		{math.MaxUint64 >> 6 << 6, 9}, // 58 bits shifted: escape
		{0x8000_0000_0000_0001, 9},    // escape
		{0x0800_0000_0000_0000, 1},    // 1<<6 | 59
	} {
		enc := appendCellXOR(nil, c.x, prev^c.x)
		if len(enc) != c.size {
			t.Errorf("difference %#x: %d bytes (% x), want %d", c.x, len(enc), enc, c.size)
		}
		if escaped := enc[0] == cellEscape && len(enc) == 9; escaped != (c.x != 0 && bits.Len64(c.x>>bits.TrailingZeros64(c.x)) > 57) {
			t.Errorf("difference %#x: escape %v", c.x, escaped)
		}
		cell, n := readCellXOR(append(enc, 0xaa), prev)
		if cell != prev^c.x || n != len(enc) {
			t.Errorf("difference %#x: read %#x in %d bytes, want %#x in %d", c.x, cell, n, prev^c.x, len(enc))
		}
		for cut := range len(enc) {
			if _, n := readCellXOR(enc[:cut], prev); n != 0 {
				t.Errorf("difference %#x cut to %d of %d bytes: read %d bytes", c.x, cut, len(enc), n)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := r.Uint64() >> r.IntN(64) << r.IntN(64)
		cell := r.Uint64()
		enc := appendCellXOR(nil, x, cell^x)
		if got, n := readCellXOR(enc, cell); got != cell^x || n != len(enc) {
			t.Fatalf("difference %#x after %#x: read %#x in %d of %d bytes", x, cell, got, n, len(enc))
		}
	}
	for _, bad := range [][]byte{
		{1}, {2}, {62}, // a shifted part of 0 that is not the escape
		binary.AppendUvarint(nil, 2<<6), // an even shifted part
		binary.AppendUvarint(nil, 6<<6|3),
		binary.AppendUvarint(nil, 3<<6|63), // 3<<63 overflows
		binary.AppendUvarint(nil, 1<<58-1), // 52 bits shifted by 63
		binary.AppendUvarint(nil, math.MaxUint64),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, // a uvarint past 64 bits
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	} {
		if cell, n := readCellXOR(bad, prev); n >= 0 {
			t.Errorf("% x read as %#x in %d bytes", bad, cell, n)
		}
	}
}

// seriesOf is a table's series in order, each key with its points.
type seriesPoints struct {
	key SeriesKey
	pts []point
}

// seriesOf lists the series of t as a record of t holds them: each with
// its points' values, then, if it holds second values, the series of
// those.
func seriesOf(t *seriesTable) []seriesPoints {
	var out []seriesPoints
	for i := range t.series {
		se := &t.series[i]
		pts := t.appendPoints(nil, int32(i))
		for j := range pts {
			pts[j].v2 = 0
		}
		out = append(out, seriesPoints{se.key, pts})
		if se.second != 0 {
			k := se.key
			k.Metric = se.second - 1
			out = append(out, seriesPoints{k, t.appendSecond(nil, int32(i))})
		}
	}
	// A batch's rows after its series, each a series of one point, as a
	// record holds them.
	for _, r := range t.rows {
		out = append(out, seriesPoints{r.key, []point{mkPoint(r.minute, r.v)}})
		if r.second != 0 {
			out = append(out, seriesPoints{SeriesKey{Metric: r.second - 1, Cell: r.key.Cell, Sub: r.key.Sub}, []point{mkPoint(r.minute, int64(r.v2))}})
		}
	}
	return out
}

// equalSeries reports whether a and b hold the same series with the same
// points in the same order, series of one key taken as one (as a record's
// reader takes them).
func equalSeries(a, b []seriesPoints) bool {
	return slices.EqualFunc(mergeKeys(a), mergeKeys(b), func(x, y seriesPoints) bool { return x.key == y.key && slices.Equal(x.pts, y.pts) })
}

// mergeKeys joins the series of one key into the first, their points in
// the order of the list.
func mergeKeys(list []seriesPoints) []seriesPoints {
	var out []seriesPoints
	at := map[SeriesKey]int{}
	for _, sp := range list {
		if i, ok := at[sp.key]; ok {
			out[i].pts = append(slices.Clip(out[i].pts), sp.pts...)
			continue
		}
		at[sp.key] = len(out)
		out = append(out, sp)
	}
	return out
}

// mixedCellBatch is a batch whose cells try every case of recordSeries2:
// detector pairs of one cell, res-9 neighbours, cells of other base cells
// and resolutions, cell 0, all 64 bits set and differences that take the
// escape, with sub-keys up to the largest and up to five points a series.
func mixedCellBatch() *Batch {
	b := NewBatch()
	hz := h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.15}, 9)
	disk := hz.GridDisk(2)
	var cells []uint64
	for _, c := range disk {
		cells = append(cells, uint64(c))
	}
	for _, ll := range []h3.LatLng{{Lat: 51.5, Lng: -0.12}, {Lat: -33.9, Lng: 151.2}, {Lat: 30.3, Lng: 120.2}} {
		for _, res := range []int{0, 5, 9, 15} {
			cells = append(cells, uint64(h3.LatLngToCell(ll, res)))
		}
	}
	cells = append(cells, 0, math.MaxUint64, 0, 1<<57-1, 0, 1<<57|1, 1<<63, 1<<63, 0x8000_0000_0000_0001, uint64(hz), 0, uint64(hz), 1)
	metric := uint32(1)
	for i, cell := range cells {
		sub := []uint64{0, 0, 1, math.MaxUint64, 1 << 63, 59}[i%6]
		pts := i % 6     // 0 to 5 points
		pair := i%3 == 0 // a detector's count and speed: one cell twice
		s := int32(-1)
		if !pair {
			s = b.Series(metric, cell, sub)
		}
		for j := range pts {
			minute := int64(27000000 + i*7 - j*3) // out of order within a series
			if j == 4 {
				minute = 0
			}
			v := int64(j*1000-i) * int64(i+1)
			if !pair {
				b.AddTo(s, minute, v)
				continue
			}
			// A second value its count's point holds, or one it cannot
			// (negative), which goes to a series of its own.
			v2 := int64(1+j) * 977
			if j%2 == 1 {
				v2 = math.MinInt64/3 + int64(i)
			}
			b.AddPairRecent(metric, metric+1, cell, sub, minute, v, v2)
		}
		metric++
		if pair {
			metric++
		}
	}
	return b
}

func decodeTable(t *testing.T, rec []byte) (seriesTable, []TripOp) {
	t.Helper()
	var got seriesTable
	var ops []TripOp
	if err := decodeRecord(rec, &got, func(uint32) bool { return false }, noSpread, func(op TripOp) { ops = append(ops, op) }, func() {}); err != nil {
		t.Fatal(err)
	}
	return got, ops
}

// TestSeriesRecord2RoundTrip writes a batch of every kind of cell as a
// recordSeries2 and reads back the same series, in order, with the same
// points; every truncation of the record fails.
func TestSeriesRecord2RoundTrip(t *testing.T) {
	b := mixedCellBatch()
	defer b.Release()
	ops := []TripOp{{Open: true, Trip: OpenTrip{Card: 42, Start: 1620000000, Cell: 7}}, {Trip: OpenTrip{Card: 43}}}
	rec := appendSeriesRecord(nil, &b.t, ops)
	if rec[0] != recordRows2 || len(b.t.rows) == 0 {
		t.Fatalf("record type %d of a batch of %d rows, want %d", rec[0], len(b.t.rows), recordRows2)
	}
	if plain := appendSeriesRecord(nil, &seriesTable{}, nil); plain[0] != recordSeries2 {
		t.Fatalf("a table without rows: record type %d, want %d", plain[0], recordSeries2)
	}
	got, gotOps := decodeTable(t, rec)
	if want := seriesOf(&b.t); !equalSeries(seriesOf(&got), want) || len(want) < 50 {
		t.Fatalf("read back %v\nwant %v", seriesOf(&got), want)
	}
	// A point's second value comes as a delta after its value, the
	// record's series of seconds after its first: the same sums.
	if back, want := sumDeltas((&Batch{t: got}).AppendDeltas(nil)), sumDeltas(b.AppendDeltas(nil)); !maps.Equal(back, want) {
		t.Fatalf("read back %v, want %v", back, want)
	}
	if !slices.Equal(gotOps, ops) {
		t.Fatalf("trip operations %v, want %v", gotOps, ops)
	}
	for cut := range len(rec) {
		var part seriesTable
		if err := decodeRecord(rec[:cut], &part, noSpread, noSpread, func(TripOp) {}, func() {}); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(rec))
		}
	}
	if n := testing.AllocsPerRun(100, func() { rec = appendSeriesRecord(rec[:0], &b.t, ops) }); n != 0 {
		t.Errorf("appendSeriesRecord allocates %v times into a buffer large enough", n)
	}
}

// TestRowsRecordRefusesWhatNoBatchWrites: a record's row is a plain sum
// or (type 6) a run of a spreading metric, with a second value from 1 to
// 2^32-1, of minutes in range; a row of a sketch's metric, of a part's
// sub-key of runs, a run of another metric or of a length or minutes
// AddRun refuses, with a second value of 0 or past 32 bits, or out of
// range fails the record, as does every cut. Type 5, as flowd wrote it
// before type 6, still reads, without runs.
func TestRowsRecordRefusesWhatNoBatchWrites(t *testing.T) {
	isMax := func(m uint32) bool { return m == 2 }
	isSpread := func(m uint32) bool { return m == 4 || m == 8 }
	const cell = 0x89309a000000fff
	// type, no series, base 27000000 (a whole hour), 1 row: metric, cell
	// (escape + 8 bytes), sub, minute, value, second + 1, v2.
	rec := func(typ byte, metric, sub uint64, minute, v int64, second, v2 uint64) []byte {
		p := []byte{typ, 0}
		p = binary.AppendVarint(p, 27000000)
		p = append(p, 1)
		p = binary.AppendUvarint(p, metric)
		p = appendCellXOR(p, cell, cell)
		if typ == recordRows2 {
			sub = bits.RotateLeft64(sub, 1)
		}
		p = binary.AppendUvarint(p, sub)
		p = binary.AppendVarint(p, minute)
		p = binary.AppendVarint(p, v)
		p = binary.AppendUvarint(p, second)
		if second != 0 {
			p = binary.AppendUvarint(p, v2)
		}
		return appendTripOps(p, nil)
	}
	decode := func(p []byte) (seriesTable, error) {
		var tab seriesTable
		err := decodeRecord(p, &tab, isMax, isSpread, func(TripOp) {}, func() {})
		return tab, err
	}
	for _, typ := range []byte{recordRows, recordRows2} {
		good := rec(typ, 1, 0, 3, 7, 6, 40)
		tab, err := decode(good)
		if err != nil || len(tab.rows) != 1 || tab.rowSeconds != 1 {
			t.Fatalf("type %d: a good row: %v, %d rows", typ, err, len(tab.rows))
		}
		if got, want := sumDeltas((&Batch{t: tab}).AppendDeltas(nil)), map[Key]int64{
			{Metric: 1, Cell: cell, Minute: 27000003}: 7,
			{Metric: 5, Cell: cell, Minute: 27000003}: 40,
		}; !maps.Equal(got, want) {
			t.Fatalf("type %d: a good row reads %v, want %v", typ, got, want)
		}
		for cut := range len(good) {
			if _, err := decode(good[:cut]); err == nil {
				t.Errorf("type %d: the row cut at %d of %d bytes decoded", typ, cut, len(good))
			}
		}
		for name, p := range map[string][]byte{
			"a sketch's metric":         rec(typ, 2, 0, 0, 1, 0, 0),
			"a sketch's second":         rec(typ, 1, 0, 0, 1, 3, 9),
			"a part's sub-key of runs":  rec(typ, 4, 30, 0, 1, 0, 0),
			"a second value of 0":       rec(typ, 1, 0, 0, 1, 6, 0),
			"a second value of 2^32":    rec(typ, 1, 0, 0, 1, 6, 1<<32),
			"a minute before 1970":      rec(typ, 1, 0, -27000001, 1, 0, 0),
			"a metric past 32 bits":     rec(typ, 1<<32, 0, 0, 1, 0, 0),
			"a run of another metric":   rec(typ, 1, spreadSub, 0, packSpread(2, 4), 0, 0),
			"a run with another second": rec(typ, 4, spreadSub, 0, packSpread(2, 4), 6, 8),
			"a run of 1 minute":         rec(typ, 4, spreadSub, 0, packSpread(1, 4), 0, 0),
			"a run of 61 minutes":       rec(typ, 4, spreadSub, 0, packSpread(61&63, 61), 0, 0),
			"a run across an hour":      rec(typ, 4, spreadSub, 50, packSpread(20, 40), 0, 0),
			"a run summing below 0":     rec(typ, 4, spreadSub, 0, packSpread(2, -4), 0, 0),
			"more rows than bytes left": append([]byte{typ, 0, 0}, 200, 1),
		} {
			if _, err := decode(p); err == nil {
				t.Errorf("type %d: %s: decoded", typ, name)
			}
		}
	}
	// A run and its pair's: each minute's share of both.
	run := rec(recordRows2, 4, spreadSub, 58, packSpread(2, 5), 9, 3)
	tab, err := decode(run)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sumDeltas((&Batch{t: tab}).AppendDeltas(nil)), map[Key]int64{
		{Metric: 4, Cell: cell, Minute: 27000058}: 3,
		{Metric: 4, Cell: cell, Minute: 27000059}: 2,
		{Metric: 8, Cell: cell, Minute: 27000058}: 2,
		{Metric: 8, Cell: cell, Minute: 27000059}: 1,
	}; !maps.Equal(got, want) {
		t.Fatalf("a run reads %v, want %v", got, want)
	}
	for cut := range len(run) {
		if _, err := decode(run[:cut]); err == nil {
			t.Errorf("the run cut at %d of %d bytes decoded", cut, len(run))
		}
	}
	if _, err := decode(rec(recordRows, 4, spreadSub, 0, packSpread(2, 4), 0, 0)); err == nil {
		t.Error("a run in a type-5 record decoded")
	}
}

// TestSeriesRecordV3StillDecodes: a record of type 3, as flowd wrote before
// recordSeries2, reads back as the same table as the type-4 record of the
// same batch.
func TestSeriesRecordV3StillDecodes(t *testing.T) {
	b := mixedCellBatch()
	defer b.Release()
	ops := []TripOp{{Open: true, Trip: OpenTrip{Card: 9, Start: 1620000000, Cell: 10}}}
	v3, v4 := appendSeriesRecordV3(nil, &b.t, ops), appendSeriesRecord(nil, &b.t, ops)
	old, oldOps := decodeTable(t, v3)
	cur, curOps := decodeTable(t, v4)
	if !equalSeries(seriesOf(&old), seriesOf(&cur)) || !equalSeries(seriesOf(&old), seriesOf(&b.t)) {
		t.Fatalf("type 3 read back %v\ntype 4 %v", seriesOf(&old), seriesOf(&cur))
	}
	if !slices.Equal(oldOps, ops) || !slices.Equal(curOps, ops) {
		t.Fatalf("trip operations %v and %v, want %v", oldOps, curOps, ops)
	}
	t.Logf("%d series: type 3 %d bytes, type %d %d", len(b.t.series), len(v3), v4[0], len(v4))
}

// hangzhouBatch is a request of readings of sensors in a city: 5,000
// detectors in about 2,100 res-9 cells around Hangzhou, each with a count
// and its speed sum of one minute, in an order unrelated to place.
func hangzhouBatch(t testing.TB) *Batch {
	r := rand.New(rand.NewPCG(30, 120))
	seen := map[h3.Cell]bool{}
	var cells []h3.Cell
	for len(cells) < 2100 {
		c := h3.LatLngToCell(h3.LatLng{Lat: 30.25 + (r.Float64()-0.5)*0.2, Lng: 120.15 + (r.Float64()-0.5)*0.24}, 9)
		if !seen[c] {
			seen[c] = true
			cells = append(cells, c)
		}
	}
	sensors := make([]h3.Cell, 5000)
	for i := range sensors {
		if i < len(cells) {
			sensors[i] = cells[i]
		} else {
			sensors[i] = cells[r.IntN(len(cells))]
		}
	}
	r.Shuffle(len(sensors), func(i, j int) { sensors[i], sensors[j] = sensors[j], sensors[i] })
	b := NewBatch()
	const count, speed = 7, 8
	for _, c := range sensors {
		n, minute := 1+r.Int64N(40), 29000000+r.Int64N(3)
		b.AddPairRecent(count, speed, uint64(c), 0, minute, n, n*(20+r.Int64N(60)))
	}
	return b
}

// TestSeriesRecord2Size: the record of a city's request of detector
// readings is at least 30 % smaller as flowd writes it (type 6, its rows)
// than as type 3.
func TestSeriesRecord2Size(t *testing.T) {
	b := hangzhouBatch(t)
	defer b.Release()
	v3, v4 := appendSeriesRecordV3(nil, &b.t, nil), appendSeriesRecord(nil, &b.t, nil)
	pts := float64(b.Len())
	t.Logf("%d series, %d points: type 3 %d bytes (%.2f a point), type %d %d bytes (%.2f a point), %.1f %% smaller",
		len(b.t.series), b.Len(), len(v3), float64(len(v3))/pts, v4[0], len(v4), float64(len(v4))/pts, 100*(1-float64(len(v4))/float64(len(v3))))
	if float64(len(v4)) > 0.7*float64(len(v3)) {
		t.Errorf("type %d record %d bytes, type 3 %d: want at least 30 %% smaller", v4[0], len(v4), len(v3))
	}
	// AddPairRecent may give a key two series: compare sums.
	got, _ := decodeTable(t, v4)
	if !maps.Equal(sumDeltas((&Batch{t: got}).AppendDeltas(nil)), sumDeltas(b.AppendDeltas(nil))) {
		t.Fatal("the city's record reads back other sums")
	}
}

// FuzzDecodeRecord decodes arbitrary payloads: none may panic, and one
// that decodes must leave a table whose deltas can be read.
func FuzzDecodeRecord(f *testing.F) {
	b := mixedCellBatch()
	defer b.Release()
	ops := []TripOp{{Open: true, Trip: OpenTrip{Card: 42, Start: 1620000000, Cell: 7, Line: "B1", TripStart: 1619999000, TripCell: 8, DayCell: 9}}, {Trip: OpenTrip{Card: 43}}}
	f.Add(appendSeriesRecord(nil, &b.t, ops))
	f.Add(appendSeriesRecordV3(nil, &b.t, ops))
	small := NewBatch()
	defer small.Release()
	small.Add(1, false, 0x89309a000000fff, 0, 27000000, 5)
	small.Add(2, true, 0x89309a000001fff, 1<<13, 27000001, 3)
	small.AddRun(small.SeriesSpread(4, 0x89309a000001fff), 27000000, 30, 90)
	f.Add(appendSeriesRecord(nil, &small.t, nil))
	f.Add(appendSeriesRecordV3(nil, &small.t, nil))
	runs := NewBatch()
	defer runs.Release()
	runs.AddRunPairRecent(4, 4, 0x89309a000001fff, 27000015, 30, 90, 60)
	runs.AddPairRecent(1, 3, 0x89309a000002fff, 0, 27000001, 5, 7)
	f.Add(appendSeriesRecord(nil, &runs.t, nil))
	f.Add(appendBatchRecord(nil, []Delta{{Key{Metric: 1, Cell: 10, Minute: 27000000}, 4}}, ops))
	f.Add(appendTripOps([]byte{recordCheckpoint}, ops))
	f.Add([]byte{recordSeries2, 1, 0, 1, cellEscape, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 2, 0})
	isMax := func(m uint32) bool { return m == 2 }
	isSpread := func(m uint32) bool { return m == 4 }
	f.Fuzz(func(t *testing.T, p []byte) {
		var tab seriesTable
		if err := decodeRecord(p, &tab, isMax, isSpread, func(TripOp) {}, func() {}); err == nil {
			(&Batch{t: tab}).AppendDeltas(nil)
			// Replay adds what a record held to the memtable: rows of
			// any values a record can hold must not break it.
			var scratch shardScratch
			newMemtable().addTable(&tab, numTiers, &scratch)
		}
	})
}

// TestCleanStopLeavesOnlyACheckpoint: after a clean stop the WAL holds no
// record but checkpoints (type 2), which every flowd of WAL format 3
// reads, so going back to a version from before recordSeries2 loses no
// bucket once flowd has stopped cleanly (docs/storage-format.md says so,
// and what a flowd from before format 3 does with the segment).
func TestCleanStopLeavesOnlyACheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	id, err := s.MetricID("swipes_in")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		if err := s.Add(randomDeltas(rng, id, 200)); err != nil {
			t.Fatal(err)
		}
	}
	types := func() map[byte]int {
		seen := map[byte]int{}
		if err := replayWAL(filepath.Join(dir, "wal"), func(_ uint64, p []byte) error {
			seen[p[0]]++
			return nil
		}, func(uint64, string, segmentScan) {}); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if seen := types(); seen[recordSeries2] == 0 {
		t.Fatalf("record types in the WAL before the stop: %v; want type %d among them", seen, recordSeries2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for typ, n := range types() {
		if typ != recordCheckpoint {
			t.Errorf("after a clean stop the WAL holds %d records of type %d; want checkpoints only", n, typ)
		}
	}
}

// TestAppendRowsAsAppended checks appendRows, which writes into room made
// once, against the row encoding it replaced (binary.Append* a number at
// a time): the same bytes for rows of every width — metrics and second
// values up to 2^32-1, cells of one city and cells far apart (the escape),
// sub-keys, minutes before and after the base, values of either sign up
// to 64 bits — after a prefix already in the buffer.
func TestAppendRowsAsAppended(t *testing.T) {
	old := func(dst []byte, rows []row, base int64) []byte {
		prevCell := uint64(0)
		for i := range rows {
			r := &rows[i]
			dst = binary.AppendUvarint(dst, uint64(r.key.Metric))
			dst = appendCellXOR(dst, r.key.Cell^prevCell, r.key.Cell)
			prevCell = r.key.Cell
			dst = binary.AppendUvarint(dst, bits.RotateLeft64(r.key.Sub, 1))
			dst = binary.AppendVarint(dst, int64(r.minute)-base)
			dst = binary.AppendVarint(dst, r.v)
			dst = binary.AppendUvarint(dst, uint64(r.second))
			if r.second != 0 {
				dst = binary.AppendUvarint(dst, uint64(r.v2))
			}
		}
		return dst
	}
	rng := rand.New(rand.NewPCG(3, 4))
	wide := func() uint64 { return rng.Uint64() >> rng.IntN(64) }
	for round := range 500 {
		rows := make([]row, rng.IntN(300))
		for i := range rows {
			r := &rows[i]
			r.key = SeriesKey{Metric: uint32(wide()), Cell: 0x8930e1c0000ffff ^ uint64(rng.IntN(1<<20))<<16, Sub: 0}
			if round%2 == 1 {
				r.key.Cell, r.key.Sub = rng.Uint64(), wide()
			}
			r.minute = int32(27000000 + rng.IntN(4000) - 2000)
			r.v = int64(wide())
			if rng.IntN(2) == 0 {
				r.v = -r.v
			}
			if rng.IntN(3) > 0 {
				r.second, r.v2 = uint32(wide())|1, uint32(wide())
			}
		}
		prefix := []byte("prefix")
		want := old(slices.Clone(prefix), rows, 27000000)
		got := appendRows(slices.Clone(prefix), rows, 27000000)
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: %d rows: appendRows wrote %x, want %x", round, len(rows), got, want)
		}
	}
}
