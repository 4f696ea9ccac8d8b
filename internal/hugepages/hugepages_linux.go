package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"
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

// chunk is the size of the allocations the reserve is made of. The
// runtime clears an allocation whole when any of it was used before (a
// free run left by earlier garbage where the allocation starts): in
// chunks only those that start in used memory are cleared, not the whole
// reserve.
const chunk = 4 << 20

// reserved holds the reserve's chunks while the heap's mapping is advised,
// so that none is collected, and reused, before the last is allocated.
var reserved [][]byte

func heap(reserve int, logf func(string, ...any)) (int, error) {
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
	reserved = make([][]byte, 0, (reserve+chunk-1)/chunk)
	for n := 0; n < reserve; n += chunk {
		reserved = append(reserved, make([]byte, chunk))
	}
	maps, err := mappings()
	var advised uintptr
	var spans []*mapping
	for i := 0; err == nil && i < len(reserved); i++ {
		addr := uintptr(unsafe.Pointer(&reserved[i][0]))
		m, ok := containing(maps, addr)
		switch {
		case !ok:
			err = fmt.Errorf("no mapping holds heap address %#x in /proc/self/maps", addr)
		case !m.advised:
			if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_HUGEPAGE); errno != 0 {
				err = fmt.Errorf("madvise(MADV_HUGEPAGE): %w", errno)
			}
			m.advised = true
			advised += m.end - m.start
			spans = append(spans, m)
		}
	}
	reserved = nil
	if err != nil {
		return 0, err
	}
	// The reserve goes back to the runtime as free heap, its pages
	// returned to the system (they were never touched): the advice stays
	// with the mapping.
	debug.FreeOSMemory()
	go withdraw(spans, watchEvery, logf)
	return int(advised), nil
}

// withdrawAfter is how much heap, returned to the system after the
// runtime used it, withdraws the advice; watchEvery how often the
// runtime's returned memory is read (a read costs about a microsecond).
// khugepaged wakes every 10 s by default and scans 16 MiB a wake: it has
// little time to fill what was returned before the advice is withdrawn.
// What it filled stays resident: the runtime counts it as returned.
var (
	withdrawAfter uint64 = 16 << 20
	watchEvery           = time.Second
)

// withdraw removes the advice from spans once the heap's memory returned
// to the system has grown withdrawAfter above its lowest: the heap grew
// into the returned reserve, then shrank.
func withdraw(spans []*mapping, every time.Duration, logf func(string, ...any)) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	released := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	low := released()
	for range time.Tick(every) {
		r := released()
		low = min(low, r)
		if r-low < withdrawAfter {
			continue
		}
		for _, m := range spans {
			// ENOMEM would say part of the range is not mapped: the runtime
			// never unmaps its heap, and the rest is withdrawn all the same.
			syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_NOHUGEPAGE)
		}
		if logf != nil {
			logf("the heap shrank (%d MiB returned to the system): huge pages no longer advised, so that the kernel does not fill again what the runtime returned", (r-low)>>20)
		}
		return
	}
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

// mapping is a range of the process's address space, as /proc/self/maps
// lists it.
type mapping struct {
	start, end uintptr
	advised    bool
}

// mappings lists the process's mappings: the runtime's heap mappings are
// contiguous and alike, so the system keeps them as one or a few.
func mappings() ([]*mapping, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []*mapping
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
		ms = append(ms, &mapping{start: uintptr(s), end: uintptr(e)})
	}
	return ms, sc.Err()
}

// containing returns the mapping holding addr.
func containing(ms []*mapping, addr uintptr) (*mapping, bool) {
	for _, m := range ms {
		if m.start <= addr && addr < m.end {
			return m, true
		}
	}
	return nil, false
}
