package storage

import (
	"maps"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowd/flowd/vocab"
)

// TestSeriesRecentKeysAddUp fills batches through SeriesRecent and
// AddPairRecent, which may give one key several series, mixed with
// Series and Add on the same keys (few enough cells that keys repeat far
// apart, after their slot of recent series went to another), and checks
// that every reader of a batch adds them up: the deltas, a WAL record read
// back, and a memtable's minute and hour rows. It also checks that the
// index never gives a series made outside it, however often it grew.
func TestSeriesRecentKeysAddUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	want := map[Key]int64{}
	m := newMemtable()
	var scratch shardScratch
	var recs [][]byte
	dups := 0 // series of a key a batch has another of
	for round := range 20 {
		b := NewBatch()
		batchWant := map[Key]int64{}
		add := func(metric uint32, cell uint64, minute, v int64) {
			batchWant[Key{Metric: metric, Cell: cell, Minute: minute}] += v
		}
		for range 3000 {
			cell := 0x89309a000000000 + uint64(rng.IntN(700))<<12
			minute := int64(27000000 + round*3 + rng.IntN(3))
			v := int64(1 + rng.IntN(9))
			switch rng.IntN(4) {
			case 0:
				b.AddTo(b.SeriesRecent(1, cell, 0), minute, v)
				add(1, cell, minute, v)
			case 1:
				b.Add(1, false, cell, 0, minute, v) // the same key, indexed
				add(1, cell, minute, v)
			case 2:
				s := b.Series(2, cell, 0)
				if b.t.series[s].unindexed {
					t.Fatalf("Series gave a series made outside the index")
				}
				b.AddTo(s, minute, v)
				add(2, cell, minute, v)
			default:
				// Mostly a second value its count's point holds; now and
				// then one it cannot (out of 32 bits, or a sum passing
				// them), which goes to a series of its own.
				v2 := 10 * v
				switch rng.IntN(8) {
				case 0:
					v2 = 1<<32 + v
				case 1:
					v2 = 1<<32 - 1 - int64(rng.IntN(2))
				case 2:
					v2 = -v
				}
				b.AddPairRecent(1, 2, cell, 0, minute, v, v2)
				add(1, cell, minute, v)
				add(2, cell, minute, v2)
			}
		}
		if b.err != nil {
			t.Fatal(b.err)
		}
		keys := map[SeriesKey]bool{}
		for i := range b.t.series {
			if keys[b.t.series[i].key] {
				dups++
			}
			keys[b.t.series[i].key] = true
		}
		if got := sumDeltas(b.AppendDeltas(nil)); !maps.Equal(got, batchWant) {
			t.Fatalf("round %d: deltas sum to %d buckets, want %d", round, len(got), len(batchWant))
		}
		recs = append(recs, appendSeriesRecord(nil, &b.t, nil))
		m.addTable(&b.t, numTiers, &scratch)
		b.Release()
		for k, v := range batchWant {
			want[k] += v
		}
	}

	if dups < 1000 {
		t.Fatalf("%d series of a key their batch had already; the test wants many", dups)
	}
	t.Logf("%d series of a key their batch had already", dups)

	var back seriesTable
	for _, rec := range recs {
		if err := decodeRecord(rec, &back, noSpread, noSpread, func(TripOp) {}, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if got := sumDeltas((&Batch{t: back}).AppendDeltas(nil)); !maps.Equal(got, want) {
		t.Fatalf("WAL records read back sum to %d buckets, want %d", len(got), len(want))
	}

	wantHour := map[Key]int64{}
	for k, v := range want {
		k.Minute = TierHour.Truncate(k.Minute)
		wantHour[k] += v
	}
	var got [numTiers]map[Key]int64
	var fns [numTiers]func(Key, int64) error
	for tr := range numTiers {
		got[tr] = map[Key]int64{}
		fns[tr] = func(k Key, v int64) error {
			if _, dup := got[tr][k]; dup {
				t.Errorf("tier %d: %+v written twice", tr, k)
			}
			got[tr][k] = v
			return nil
		}
	}
	if err := m.eachTiers(byRow(fns)); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got[TierMinute], want) {
		t.Fatalf("minute rows: %d buckets, want %d", len(got[TierMinute]), len(want))
	}
	if !maps.Equal(got[TierHour], wantHour) {
		t.Fatalf("hour rows: %d buckets, want %d", len(got[TierHour]), len(wantHour))
	}
}

func sumDeltas(ds []Delta) map[Key]int64 {
	s := map[Key]int64{}
	for _, d := range ds {
		s[d.Key] += d.Value
	}
	return s
}

// TestSpreadRowsAddUp fills batches with runs of spread readings as rows
// (AddRunPairRecent: runs of one key, minute and length that combine,
// runs of other lengths at the same minute, second values of 0 and past
// 32 bits) and the same runs through the batch's spread series (AddRun),
// and checks that every reader takes both the same: the deltas, the WAL
// record read back, the memtable's scans of the minute and hour tiers
// (rows' runs hold their second values in their points, see
// addPair) and the rows a flush writes in every tier.
func TestSpreadRowsAddUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	isSpread := func(m uint32) bool { return m == 1 || m == 2 }
	var mems [2]*memtable
	var backs [2]seriesTable
	for i := range mems {
		mems[i] = newMemtable()
	}
	var scratch shardScratch
	want := map[Key]int64{}
	for round := range 10 {
		var bs [2]*Batch
		bs[0], bs[1] = NewBatch(), NewBatch()
		var count, speed [1000]int32 // bs[1]'s spread series by cell
		for i := range count {
			count[i], speed[i] = -1, -1
		}
		for range 2000 {
			c := rng.IntN(len(count))
			hour := int64(27000000/60+round) * 60
			minute := hour + int64(rng.IntN(50))
			n := int64(2 + rng.IntN(int(hour+60-minute-1)))
			if rng.IntN(3) == 0 {
				c, minute, n = rng.IntN(5), hour+3, 20 // many of one key, minute and length
			}
			cell := 0x89309a000000000 + uint64(c)<<12
			v := n * int64(1+rng.IntN(9))
			v2 := n * int64(rng.IntN(3)) * 7
			switch rng.IntN(50) {
			case 0:
				v2 = n * (1<<32/n + 1) // past 32 bits: the pair's series
			case 1:
				// Fits a row, but two in one point of the memtable do
				// not: the pair's spread series there.
				v2 = n * ((1<<32 - 1) / n)
			}
			bs[0].AddRunPairRecent(1, 2, cell, minute, n, v, v2)
			if count[c] < 0 {
				count[c], speed[c] = bs[1].SeriesSpread(1, cell), bs[1].SeriesSpread(2, cell)
			}
			bs[1].AddRun(count[c], minute, n, v)
			if v2 != 0 {
				bs[1].AddRun(speed[c], minute, n, v2)
			}
			for j := range n {
				want[Key{Metric: 1, Cell: cell, Minute: minute + j}] += v / n
				want[Key{Metric: 2, Cell: cell, Minute: minute + j}] += v2 / n
			}
		}
		for i, b := range bs {
			if b.err != nil {
				t.Fatal(b.err)
			}
			if got, want := sumDeltas(b.AppendDeltas(nil)), sumDeltas(bs[1].AppendDeltas(nil)); !maps.Equal(got, want) {
				t.Fatalf("round %d, batch %d: deltas sum to %d buckets, want %d", round, i, len(got), len(want))
			}
			rec := appendSeriesRecord(nil, &b.t, nil)
			if err := decodeRecord(rec, &backs[i], noSpread, isSpread, func(TripOp) {}, func() {}); err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			mems[i].addTable(&b.t, numTiers, &scratch)
		}
		if len(bs[0].t.rows) == 0 || len(bs[1].t.series) == 0 {
			t.Fatalf("round %d: %d rows, %d series", round, len(bs[0].t.rows), len(bs[1].t.series))
		}
		if len(bs[0].t.rows)+len(bs[0].t.series) >= 2000 {
			t.Fatalf("round %d: runs of a key, minute and length did not combine", round)
		}
		bs[0].Release()
		bs[1].Release()
	}
	for k, v := range want {
		if v == 0 {
			delete(want, k)
		}
	}
	for i := range backs {
		if got := sumDeltas((&Batch{t: backs[i]}).AppendDeltas(nil)); !maps.Equal(got, want) {
			t.Fatalf("batch %d's WAL records read back sum to %d buckets, want %d", i, len(got), len(want))
		}
	}
	wantHour := map[Key]int64{}
	for k, v := range want {
		k.Minute = TierHour.Truncate(k.Minute)
		wantHour[k] += v
	}
	var scans, hourScans [2]map[Key]int64
	var rows [2][numTiers]map[Key]int64
	for i, m := range mems {
		scans[i], hourScans[i] = map[Key]int64{}, map[Key]int64{}
		for _, metric := range []uint32{1, 2} {
			m.scan(TierMinute, metric, []vocab.CellRange{{Lo: 0, Hi: math.MaxUint64}}, 0, math.MaxInt64, func(cell, sub uint64, minute, v int64) {
				scans[i][Key{Metric: metric, Cell: cell, Sub: sub, Minute: minute}] += v
			})
			m.scan(TierHour, metric, []vocab.CellRange{{Lo: 0, Hi: math.MaxUint64}}, 0, math.MaxInt64, func(cell, sub uint64, minute, v int64) {
				hourScans[i][Key{Metric: metric, Cell: cell, Sub: sub, Minute: minute}] += v
			})
		}
		var fns [numTiers]func(Key, int64) error
		for tr := range numTiers {
			rows[i][tr] = map[Key]int64{}
			fns[tr] = func(k Key, v int64) error {
				if _, dup := rows[i][tr][k]; dup {
					t.Errorf("memtable %d, tier %d: %+v written twice", i, tr, k)
				}
				rows[i][tr][k] = v
				return nil
			}
		}
		if err := m.eachTiers(byRow(fns)); err != nil {
			t.Fatal(err)
		}
	}
	if !maps.Equal(scans[0], want) || !maps.Equal(scans[1], want) {
		t.Fatalf("scans of the minute tier: %d and %d buckets, want %d", len(scans[0]), len(scans[1]), len(want))
	}
	if !maps.Equal(hourScans[0], wantHour) || !maps.Equal(hourScans[1], wantHour) {
		t.Fatalf("scans of the hour tier: %d and %d buckets, want %d", len(hourScans[0]), len(hourScans[1]), len(wantHour))
	}
	for tr := range numTiers {
		if !maps.Equal(rows[0][tr], rows[1][tr]) || len(rows[0][tr]) == 0 {
			t.Fatalf("tier %d: rows' memtable writes %d rows, series' %d", tr, len(rows[0][tr]), len(rows[1][tr]))
		}
	}
	t.Logf("minute tier: %d rows", len(rows[0][TierMinute]))
}
