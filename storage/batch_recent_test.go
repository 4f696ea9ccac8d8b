package storage

import (
	"maps"
	"math/rand/v2"
	"testing"
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
