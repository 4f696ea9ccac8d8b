// Package hugepages has the kernel back the Go heap with transparent huge
// pages where the system gives them only to memory that asks
// (/sys/kernel/mm/transparent_hugepage/enabled set to madvise, as Debian
// and most distributions ship).
//
// flowd's heap is a few large tables written at random (the memtable's
// series, index and points, a request's body): in 4-KiB pages every first
// touch of a page is a fault, and on the virtual machines flowd was
// measured on a fault costs 10 µs of the server's CPU (about 0.2 µs a
// 4-KiB page when a 2-MiB page is mapped at once), so that a short run
// paid a tenth of its CPU in faults; a table spread over fewer, larger
// pages also misses the TLB less. The Go runtime leaves the choice to the
// system (since Go 1.21.1 it no longer advises its heap), and it maps its
// heap as it grows, each new mapping without the advice: so Heap has the
// runtime map a stretch of heap ahead, advises it, and gives it back
// untouched.
//
// The advice also lets the kernel's background collapsing (khugepaged)
// fill a 2-MiB range that holds a single page in use: memory the runtime
// returned to the system, after the heap shrank from a peak, comes back
// as resident without the runtime knowing (Go issue 64332; with a
// collapse every 0.1 s, a heap that fell from 700 to 165 MiB stayed at
// 280 MiB resident). So a goroutine sets the process's resident memory
// against the runtime's every second, and withdraws the advice once the
// process holds clearly more than the runtime (slack).
package hugepages

// Heap has the runtime map reserve bytes of heap ahead of its use, without
// touching them, and advises the kernel to back the heap's mapping (what
// the runtime mapped before, and the reserve) with huge pages. It returns
// the bytes of mapping advised: 0, without error, where there is nothing
// to do (the system's mode is "always" or "never", or not Linux). Heap
// grown past the reserve later gets ordinary pages, as without Heap. A
// goroutine withdraws the advice once the kernel holds resident memory
// the runtime returned, and says so with logf. outside, when not nil,
// gives the bytes the process has mapped and written itself, outside the
// runtime's heap (flowd's memtable pages): held as the runtime's own are,
// not taken for memory come back.
func Heap(reserve int, outside func() uint64, logf func(format string, args ...any)) (advised int, err error) {
	return heap(reserve, outside, logf)
}
