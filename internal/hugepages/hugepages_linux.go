package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"
)

func mode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	// "always [madvise] never": the chosen one in brackets.
	_, after, ok := bytes.Cut(b, []byte("["))
	if !ok {
		return ""
	}
	m, _, ok := bytes.Cut(after, []byte("]"))
	if !ok {
		return ""
	}
	return string(m)
}

// reserved holds the reserve while the heap's mapping is advised, so that
// the allocation is not optimised away or collected before.
var reserved []byte

func heap(reserve int) (int, error) {
	if mode() != "madvise" || reserve <= 0 {
		return 0, nil
	}
	// A large allocation from memory the runtime maps fresh is not
	// cleared (the system gives it zeroed): it costs address space, not
	// resident memory.
	reserved = make([]byte, reserve)
	start, end, err := mappingOf(uintptr(unsafe.Pointer(&reserved[0])))
	reserved = nil
	if err != nil {
		return 0, err
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_HUGEPAGE); errno != 0 {
		return 0, fmt.Errorf("madvise(MADV_HUGEPAGE): %w", errno)
	}
	// The reserve goes back to the runtime as free heap, its pages
	// returned to the system (they were never touched): the advice stays
	// with the mapping.
	debug.FreeOSMemory()
	return int(end - start), nil
}

// mappingOf returns the bounds of the mapping holding addr, from
// /proc/self/maps: the runtime's heap mappings are contiguous and alike,
// so the system keeps them as one.
func mappingOf(addr uintptr) (start, end uintptr, err error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 18fe5b000000-18fe6b400000 rw-p 00000000 00:00 0
		span, _, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		lo, hi, ok := bytes.Cut(span, []byte("-"))
		if !ok {
			continue
		}
		s, err1 := strconv.ParseUint(string(lo), 16, 64)
		e, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if uintptr(s) <= addr && addr < uintptr(e) {
			return uintptr(s), uintptr(e), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("no mapping holds heap address %#x in /proc/self/maps", addr)
}
