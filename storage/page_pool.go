package storage

import (
	"sync"
	"unsafe"
)

// pageBytes is the size of a pointPage.
const pageBytes = int(unsafe.Sizeof(pointPage{}))

// pagePool gives the point tables (memtables' and batches') their pages
// and takes them back when a table is reset.
//
// Most of a memtable's memory is its point pages, and it grows by them
// through every fill. Allocated on Go's heap, each fill grows the heap
// by the memtable's size, and the collector, paced by the heap's growth
// (-gogc 30), runs a cycle for every 30 % of it: about thirteen cycles
// in a two-second run of the bench's detector feed, 80 ms of its 0.9
// CPU-seconds, to find garbage in tables that hold no pointers and stay
// until their flush. So the pool keeps the pages of two memtables
// (one filling while the other is flushed: 2 × Options.MemtableBytes)
// outside the heap, in memory mapped for them at Open (untouched until
// used) and never unmapped: the collector neither counts nor scans them,
// and a page can only ever be read as points, however long a stale
// reference to it lives. Pages beyond that (large batches, a flush that
// falls behind) come from the heap as before, and up to heapPagesKept of
// them are kept for reuse. The pool's pages, once written, stay resident
// for the next memtable: flowd_memtable_pool_bytes shows them.
type pagePool struct {
	mu sync.Mutex
	// regions are the mappings reserved, never unmapped.
	regions []pageRegion
	// mapped holds the region pages given back: written before, so
	// reusing one costs no fault.
	mapped []*pointPage
	// fresh holds the region pages never given out, untouched: the
	// system maps them at their first use.
	fresh []*pointPage
	// heap holds heap pages given back, up to heapPagesKept.
	heap []*pointPage
}

type pageRegion struct{ start, end uintptr }

// heapPagesKept bounds the heap pages the pool keeps: 16 MiB, about what
// a flush gives back while the next memtable fills.
const heapPagesKept = 16 << 20 / pageBytes

// maxReservedBytes bounds the pool's mappings, whatever memtable budget
// the stores of a process ask for.
const maxReservedBytes = 1 << 30

var pointPages pagePool

// reserve makes the pool hold at least bytes of pages in its mappings,
// mapping the difference (untouched, so costing address space only until
// used), in huge pages if hugePages is set. Stores opened in turn in one
// process share the pool: it grows to the largest budget asked for.
func (p *pagePool) reserve(bytes int, hugePages bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	have := p.regionBytes()
	want := min(bytes, maxReservedBytes) / pageBytes * pageBytes
	if want <= have {
		return
	}
	pages, ok := mapPages((want-have)/pageBytes, hugePages)
	if !ok {
		return // pages come from the heap, as without a pool
	}
	start := uintptr(unsafe.Pointer(&pages[0]))
	p.regions = append(p.regions, pageRegion{start, start + uintptr(len(pages)*pageBytes)})
	// Handed out from the region's start up, so that the huge pages the
	// system maps fill in order.
	for i := len(pages) - 1; i >= 0; i-- {
		p.fresh = append(p.fresh, &pages[i])
	}
}

// regionBytes is the size of the pool's mappings; p.mu is held.
func (p *pagePool) regionBytes() int {
	n := 0
	for _, r := range p.regions {
		n += int(r.end - r.start)
	}
	return n
}

// inRegion reports whether pg lies in one of the pool's mappings.
func (p *pagePool) inRegion(pg *pointPage) bool {
	a := uintptr(unsafe.Pointer(pg))
	for _, r := range p.regions {
		if a >= r.start && a < r.end {
			return true
		}
	}
	return false
}

// get returns a page to fill, its contents left from any earlier use.
func (p *pagePool) get() *pointPage {
	p.mu.Lock()
	var pg *pointPage
	fresh := false
	switch {
	case len(p.mapped) > 0:
		pg = pop(&p.mapped)
	case len(p.heap) > 0:
		pg = pop(&p.heap)
	case len(p.fresh) > 0:
		pg, fresh = pop(&p.fresh), true
	}
	p.mu.Unlock()
	if pg == nil {
		pg, fresh = new(pointPage), true
	}
	if fresh {
		// A page fresh from the system is mapped in one call rather
		// than faulted in 16 times by the points written to it.
		prefault(pg[:])
	}
	return pg
}

// put takes back a page of a table being reset.
func (p *pagePool) put(pg *pointPage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.inRegion(pg):
		p.mapped = append(p.mapped, pg)
	case len(p.heap) < heapPagesKept:
		p.heap = append(p.heap, pg)
	}
}

func pop(s *[]*pointPage) *pointPage {
	n := len(*s) - 1
	pg := (*s)[n]
	(*s)[n] = nil
	*s = (*s)[:n]
	return pg
}

// PoolBytes is the bytes of the page pool's mappings that tables have
// written (resident, whether in use or given back): memory the process
// holds outside Go's heap, which a watch of its resident memory against
// the runtime's (internal/hugepages) must count as held.
func PoolBytes() uint64 {
	p := &pointPages
	p.mu.Lock()
	defer p.mu.Unlock()
	return uint64(p.regionBytes() - len(p.fresh)*pageBytes)
}
