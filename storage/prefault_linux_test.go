package storage

import (
	"syscall"
	"testing"
	"unsafe"

	"github.com/flowd/flowd/internal/faults"
)

// TestPrefaultMapsPages writes 2,048 pages of memory fresh from the system
// (as a large allocation of a growing heap is) after prefault: the writes
// fault almost none of them in, where without it each would fault; what
// was there stays.
func TestPrefaultMapsPages(t *testing.T) {
	const pages = 2048
	mem, err := syscall.Mmap(-1, 0, pages*4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("cannot map memory: %v", err)
	}
	defer syscall.Munmap(mem)
	s := unsafe.Slice((*int64)(unsafe.Pointer(&mem[0])), len(mem)/8)
	s[0] = 42       // one page faulted in before, with a value in it
	prefault(s[1:]) // not page-aligned: the whole pages inside
	before := faults.Minor()
	for i := 0; i < len(s); i += 512 {
		s[i+1]++
	}
	taken := faults.Minor() - before
	if s[0] != 42 || s[1] != 1 {
		t.Fatalf("prefault changed the memory: %d, %d", s[0], s[1])
	}
	if taken > pages/10 {
		t.Fatalf("writing %d prefaulted pages faulted %d times", pages, taken)
	}
	t.Logf("%d faults writing %d prefaulted pages", taken, pages)
}
