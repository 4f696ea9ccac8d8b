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

// mode is the system's transparent huge page setting: "always",
// "madvise", "never", or "" where there is none.
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
	overcommit, _ := os.ReadFile("/proc/sys/vm/overcommit_memory")
	reserve, err := limitReserve(reserve, memTotal(), string(bytes.TrimSpace(overcommit)))
	if err != nil || reserve == 0 {
		return 0, err
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

// limitReserve bounds the reserve so that mapping it cannot fail: the
// runtime treats a refused mapping of its heap as fatal. Under strict
// overcommit (mode 2) address space is charged as memory, so nothing is
// reserved; otherwise at most a quarter of the machine's memory (the
// kernel's heuristic refuses a mapping larger than memory and swap).
func limitReserve(reserve int, memTotal int64, overcommit string) (int, error) {
	if overcommit == "2" {
		return 0, fmt.Errorf("strict overcommit (vm.overcommit_memory=2): no heap reserved ahead")
	}
	if memTotal > 0 {
		reserve = int(min(int64(reserve), memTotal/4))
	}
	return reserve, nil
}

// memTotal is the machine's memory in bytes (MemTotal of /proc/meminfo),
// 0 when unknown.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0
			}
			kib, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
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
