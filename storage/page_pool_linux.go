package storage

import (
	"syscall"
	"unsafe"
)

// mapPages maps n pages of anonymous memory for the pool, advised into
// huge pages when hugePages is set (the advice only matters where the
// system's mode is madvise), and reports whether it could.
func mapPages(n int, hugePages bool) ([]pointPage, bool) {
	b, err := syscall.Mmap(-1, 0, n*pageBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, false
	}
	if hugePages {
		syscall.Madvise(b, syscall.MADV_HUGEPAGE) // best effort
	}
	return unsafe.Slice((*pointPage)(unsafe.Pointer(&b[0])), n), true
}
