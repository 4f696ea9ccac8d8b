package storage

import (
	"testing"
	"unsafe"
)

// TestPagePoolReusesItsPagesAndKeepsThemAll checks the pool's promises:
// its mapped pages are handed out first fresh, then again once given back
// (the same pages, their points as left), and none of them is ever
// dropped however many come back at once; heap pages beyond its mappings
// are kept up to heapPagesKept, no more.
func TestPagePoolReusesItsPagesAndKeepsThemAll(t *testing.T) {
	var p pagePool
	p.reserve(10*pageBytes+pageBytes/2, false) // rounded down to whole pages
	if len(p.fresh) != 10 || len(p.regions) != 1 {
		t.Fatalf("reserved %d fresh pages in %d regions; want 10 in 1", len(p.fresh), len(p.regions))
	}
	p.reserve(4*pageBytes, false) // less than held: nothing new
	if len(p.fresh) != 10 || len(p.regions) != 1 {
		t.Fatalf("a smaller reserve mapped more: %d pages, %d regions", len(p.fresh), len(p.regions))
	}
	var out []*pointPage
	for i := range 12 {
		pg := p.get()
		if in := p.inRegion(pg); in != (i < 10) {
			t.Fatalf("page %d in the pool's mapping: %v; want %v", i, in, i < 10)
		}
		pg[0].minute, pg[pageSize-1].minute = int32(i), int32(i) // writable, whole
		out = append(out, pg)
	}
	if len(p.fresh) != 0 {
		t.Fatalf("%d fresh pages left after taking all", len(p.fresh))
	}
	// The mapping's pages in order from its start, so that huge pages
	// fill in turn.
	for i := 1; i < 10; i++ {
		if d := uintptr(unsafe.Pointer(out[i])) - uintptr(unsafe.Pointer(out[i-1])); d != uintptr(pageBytes) {
			t.Fatalf("page %d lies %d bytes after page %d; want %d", i, d, i-1, pageBytes)
		}
	}
	for _, pg := range out {
		p.put(pg)
	}
	if len(p.mapped) != 10 || len(p.heap) != 2 {
		t.Fatalf("given back: %d mapped, %d heap pages kept; want 10 and 2", len(p.mapped), len(p.heap))
	}
	seen := map[*pointPage]bool{}
	for range 12 {
		pg := p.get()
		if seen[pg] {
			t.Fatal("a page handed out twice")
		}
		seen[pg] = true
	}
	for _, pg := range out {
		if !seen[pg] {
			t.Fatalf("page %p given back was not handed out again", pg)
		}
	}
	if got := out[3][pageSize-1].minute; got != 3 {
		t.Fatalf("a reused page's last point reads minute %d; want 3 as written", got)
	}

	// Heap pages: kept up to heapPagesKept.
	var q pagePool
	for range heapPagesKept + 5 {
		q.put(new(pointPage))
	}
	if len(q.heap) != heapPagesKept {
		t.Fatalf("%d heap pages kept; want %d", len(q.heap), heapPagesKept)
	}
}

// TestMemtableGivesBackEveryPage fills the store's pool from a memtable,
// releases it, and checks that every page of the pool's mappings came
// back: a page lost off the heap is never collected.
func TestMemtableGivesBackEveryPage(t *testing.T) {
	// Stores of earlier tests that crashed on purpose keep pages of the
	// pool for good: map 4 MiB more, so that this test has some.
	pointPages.mu.Lock()
	have := pointPages.regionBytes()
	pointPages.mu.Unlock()
	pointPages.reserve(have+4<<20, false)
	count := func() (region, all int) {
		pointPages.mu.Lock()
		defer pointPages.mu.Unlock()
		region = len(pointPages.mapped) + len(pointPages.fresh)
		return region, region + len(pointPages.heap)
	}
	region0, _ := count()
	if region0 < 64 {
		t.Fatalf("the pool holds %d of its pages after mapping 64 more", region0)
	}
	m := newMemtable()
	var scratch shardScratch
	bs := memtableBatches(30)
	for _, b := range bs {
		m.addTable(&b.t, numTiers, &scratch)
	}
	// Batches of series too (as swipes make), whose points take pages.
	b := NewBatch()
	for s := range 20000 {
		b.AddTo(b.Series(1, 0x89309a000000000+uint64(s)<<12, 0), 27000000, 1)
	}
	m.addTable(&b.t, numTiers, &scratch)
	if region, _ := count(); region >= region0 {
		t.Fatalf("filling a memtable took none of the pool's %d pages", region0)
	}
	b.Release()
	m.release()
	if region, _ := count(); region != region0 {
		t.Fatalf("after release the pool holds %d of its pages; want all %d back", region, region0)
	}
}
