package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// memtableBatches builds n batches like a request of detector counts:
// 10,000 sensors' counts and speeds (20,000 values, a series of one point
// each, its speed its second value), at minute i of batch i.
func memtableBatches(n int) []*Batch {
	var bs []*Batch
	for i := range n {
		b := &Batch{}
		for s := range 10000 {
			// As ingest adds a class's count and its speed sum.
			cell := 0x89309a000000000 + uint64(s)<<12
			b.AddPairRecent(1, 2, cell, 0, int64(27000000+i), int64(s%40), int64(s%90))
		}
		bs = append(bs, b)
	}
	return bs
}

// BenchmarkMemtableAdd applies batches to a memtable: the store's share of
// ingest after the WAL, per point.
func BenchmarkMemtableAdd(b *testing.B) {
	bs := memtableBatches(30)
	var scratch shardScratch
	m := newMemtable()
	points := 0
	for i := 0; b.Loop(); i++ {
		if i%len(bs) == 0 {
			m.release() // and reused, as a store reuses a flushed memtable
		}
		m.addTable(&bs[i%len(bs)].t, numTiers, &scratch)
		points += bs[i%len(bs)].Len()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(points), "ns/point")
}

// BenchmarkMemtableAddCold is BenchmarkMemtableAdd as a server meets it:
// each batch's series in an order of their own (a request's lines), and
// the caches emptied before each batch (32 MiB written, untimed) as the
// decoding of the next request and everything else a server runs between
// two batches would. Its lookups miss the caches as ingest's do.
func BenchmarkMemtableAddCold(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var bs []*Batch
	for i := range 30 {
		bt := &Batch{}
		for _, s := range r.Perm(10000) {
			cell := 0x89309a000000000 + uint64(s)<<12
			bt.AddPairRecent(1, 2, cell, 0, int64(27000000+i), int64(s%40), int64(s%90))
		}
		bs = append(bs, bt)
	}
	junk := make([]uint64, 4<<20)
	var scratch shardScratch
	m := newMemtable()
	points := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if i%len(bs) == 0 {
			m.release()
		}
		for j := 0; j < len(junk); j += 8 { // a word a cache line
			junk[j]++
		}
		b.StartTimer()
		m.addTable(&bs[i%len(bs)].t, numTiers, &scratch)
		points += bs[i%len(bs)].Len()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(points), "ns/point")
}

// BenchmarkMemtableEach reads a memtable of 30 minutes of 20,000 series in
// key order for every tier, as a flush does, without writing parts.
func BenchmarkMemtableEach(b *testing.B) { benchmarkMemtableEach(b, false) }

// BenchmarkMemtableEachUnordered is BenchmarkMemtableEach with the batches
// applied as three senders of ten minutes each would interleave them
// (minutes 0, 10, 20, 1, 11, 21, …): every series out of minute order.
func BenchmarkMemtableEachUnordered(b *testing.B) { benchmarkMemtableEach(b, true) }

func benchmarkMemtableEach(b *testing.B, interleave bool) {
	bs := memtableBatches(30)
	var scratch shardScratch
	m := newMemtable()
	points := 0
	for i := range bs {
		bt := bs[i]
		if interleave {
			bt = bs[i%3*10+i/3]
		}
		m.addTable(&bt.t, numTiers, &scratch)
		points += bt.Len()
	}
	rows := 0
	for b.Loop() {
		m.sorted = nil
		count := func(_ SeriesKey, minutes, _ []int64) error { rows += len(minutes); return nil }
		if err := m.eachTiers([numTiers]runFn{count, count, count}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
}

// BenchmarkFlushParts writes a memtable of 30 minutes of 20,000 series as
// the parts of both tiers, as a flush does (on tmpfs when there is one):
// per point, the whole of a flush's CPU.
func BenchmarkFlushParts(b *testing.B) {
	bs := memtableBatches(30)
	var scratch shardScratch
	m := newMemtable()
	points := 0
	for _, bt := range bs {
		m.addTable(&bt.t, numTiers, &scratch)
		points += bt.Len()
	}
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err = os.MkdirTemp("/dev/shm", "flowd-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	for i := 0; b.Loop(); i++ {
		m.sorted = nil
		var ws [numTiers]*partWriter
		var fns [numTiers]runFn
		for t := range numTiers {
			w, err := newPartWriter(filepath.Join(dir, fmt.Sprintf("tmp-%d-%d", i, t)), t, nil)
			if err != nil {
				b.Fatal(err)
			}
			ws[t], fns[t] = w, w.addRun
		}
		if err := m.eachTiers(fns); err != nil {
			b.Fatal(err)
		}
		for t, w := range ws {
			p, err := w.finish(filepath.Join(dir, fmt.Sprintf("p-%d-%d", i, t)))
			if err != nil {
				b.Fatal(err)
			}
			p.closeFiles()
			os.RemoveAll(p.dir)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
}

// BenchmarkMergeParts merges four parts into one, as a store merges four
// flushes (on tmpfs when there is one): 20,000 series, each part holding
// the next 30 minutes of every one.
func BenchmarkMergeParts(b *testing.B) {
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err = os.MkdirTemp("/dev/shm", "flowd-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	var parts []*part
	for p := range 4 {
		w, err := newPartWriter(filepath.Join(dir, fmt.Sprintf("tmp-%d", p)), TierMinute, nil)
		if err != nil {
			b.Fatal(err)
		}
		for s := range 20000 {
			for m := range 30 {
				k := Key{Metric: uint32(1 + s/10000), Cell: 0x89309a000000000 + uint64(s%10000)<<12, Minute: int64(27000000 + p*30 + m)}
				if err := w.add(k, int64(1+(s+m)%40)); err != nil {
					b.Fatal(err)
				}
			}
		}
		pt, err := w.finish(filepath.Join(dir, fmt.Sprintf("p-%d", p)))
		if err != nil {
			b.Fatal(err)
		}
		defer pt.closeFiles()
		parts = append(parts, pt)
	}
	rows := 0
	for i := 0; b.Loop(); i++ {
		its := make([]*partIterator, len(parts))
		for i, p := range parts {
			its[i] = &partIterator{p: p}
		}
		w, err := newPartWriter(filepath.Join(dir, fmt.Sprintf("tmp-m%d", i)), TierMinute, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mergeRows(its, 0, func(uint32) bool { return false }, w.add, w.addRows); err != nil {
			b.Fatal(err)
		}
		p, err := w.finish(filepath.Join(dir, fmt.Sprintf("m%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		rows += int(p.meta.Rows)
		p.closeFiles()
		os.RemoveAll(p.dir)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

// disorderedWords returns the words (minute, place) of a series of n
// points, one a request, committed out of order by four requests in flight
// as flowd-bench's senders make them: each point a few places from where
// it sorts.
func disorderedWords(rng *rand.Rand, n int) []uint64 {
	var out, pending []uint64
	next := uint64(0)
	for len(out) < n {
		for len(pending) < 4 {
			pending = append(pending, next)
			next++
		}
		i := rng.IntN(len(pending))
		out = append(out, pending[i]<<32|uint64(len(out)))
		pending = slices.Delete(pending, i, i+1)
	}
	return out
}

// BenchmarkSortNearly sorts the 41 points of a series a flush of the
// bench's day finds out of order (its average), as sortedPlaces does,
// against slices.Sort.
func BenchmarkSortNearly(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	var inputs [][]uint64
	for range 1000 {
		inputs = append(inputs, disorderedWords(rng, 41))
	}
	w := make([]uint64, 41)
	for _, s := range []struct {
		name string
		sort func([]uint64)
	}{{"sortNearly", sortNearly}, {"slices.Sort", slices.Sort[[]uint64]}} {
		b.Run(s.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				copy(w, inputs[i%len(inputs)])
				s.sort(w)
			}
		})
	}
}

// BenchmarkSortAbove sorts a sketch series' words as a flush of the
// bench's day finds them at a station (about 1,300 taps: registers of
// 12 bits, minutes of three hours), by sortAbove and by slices.Sort.
func BenchmarkSortAbove(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	in := make([]uint64, 1300)
	for i := range in {
		in[i] = uint64(rng.IntN(1<<12))<<40 | uint64(29000000+rng.IntN(180))<<registerBits | uint64(rng.IntN(40))
	}
	w := make([]uint64, len(in))
	var spare []uint64
	b.Run("sortAbove", func(b *testing.B) {
		for b.Loop() {
			copy(w, in)
			w, spare = sortAbove(w, spare, registerBits)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/word")
	})
	b.Run("slices.Sort", func(b *testing.B) {
		for b.Loop() {
			copy(w, in)
			slices.Sort(w)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/word")
	})
}

// BenchmarkBatchAddRowCold adds a request of detector readings to a batch
// as rows (AddPairRecent), the caches emptied before each request (32 MiB
// written, untimed): the share of Batch.addRow in a request's CPU, set
// against what a server's profile shows for it (BENCH.md, thirty-second
// session).
func BenchmarkBatchAddRowCold(b *testing.B) {
	perm := rand.New(rand.NewPCG(1, 2)).Perm(20000)
	junk := make([]uint64, 4<<20)
	bt := NewBatch()
	rows := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		bt.Release()
		bt = NewBatch()
		for j := 0; j < len(junk); j += 8 {
			junk[j]++
		}
		b.StartTimer()
		for _, s := range perm[:10000] {
			cell := 0x89309a000000000 + uint64(s)<<12
			bt.AddPairRecent(1, 2, cell, 0, int64(27000000+i), int64(s%40), int64(s%90))
		}
		rows += 10000
	}
	bt.Release()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}
