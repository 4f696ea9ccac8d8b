package storage

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"
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
		raw.add(raw.lookup(SeriesKey{Metric: 4, Cell: 10, Sub: spreadSub}, false, true), int64(bad.minute), bad.val())
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

// TestSeriesPairIsTwoLookups checks that the handles SeriesPair gives are
// those of the two series looked up alone, however the two were met
// before: new, one of them added alone, in another order, the first
// paired with another metric, and after the table grew.
func TestSeriesPairIsTwoLookups(t *testing.T) {
	b := NewBatch()
	defer b.Release()
	check := func(metric, pair uint32, cell uint64) {
		t.Helper()
		s, p := b.SeriesPair(metric, pair, cell, 0)
		if ws, wp := b.Series(metric, cell, 0), b.Series(pair, cell, 0); s != ws || p != wp {
			t.Fatalf("SeriesPair(%d, %d, %d) = %d, %d; the series alone are %d, %d", metric, pair, cell, s, p, ws, wp)
		}
	}
	check(1, 2, 10)               // both new
	check(1, 2, 10)               // both met
	b.Series(3, 11, 0)            // the first met alone
	check(3, 4, 11)               //
	b.Series(6, 12, 0)            // the second met alone
	check(5, 6, 12)               //
	check(1, 7, 10)               // the first paired with another metric
	check(1, 2, 10)               // and back
	for c := range uint64(5000) { // the index grows many times
		check(8, 9, 100+c)
	}
	check(1, 2, 10)
	check(3, 4, 11)
	if n := len(b.t.series); n != 2+2+2+1+2*5000 {
		t.Errorf("%d series; want %d", n, 2+2+2+1+2*5000)
	}
}
