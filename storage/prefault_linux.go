package storage

import (
	"syscall"
	"unsafe"
)

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault the range's
// pages in, writable, in one system call.
const madvPopulateWrite = 23

// prefault maps the pages under s's capacity in one system call before
// they are written, where touching them one by one would fault each: on
// the virtual machines flowd was measured on a fault costs about 15 µs a
// 4-KiB page (64 MiB: 240 ms touched, 10–15 ms populated). Only whole
// pages inside s are populated; their contents do not change. Best
// effort: an older kernel refuses, and the pages fault as before. Pages
// already mapped cost a walk of their table entries.
func prefault[T any](s []T) {
	if cap(s) == 0 {
		return
	}
	const page = 4096
	s = s[:cap(s)]
	start := uintptr(unsafe.Pointer(&s[0]))
	end := start + uintptr(len(s))*unsafe.Sizeof(s[0])
	start = (start + page - 1) &^ (page - 1)
	end &^= page - 1
	if end <= start {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvPopulateWrite)
}
