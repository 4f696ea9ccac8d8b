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

func heap(reserve int, outside func() uint64, logf func(string, ...any)) (int, error) {
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
	var spans []*mapping
	for i := 0; err == nil && i < len(reserved); i++ {
		addr := uintptr(unsafe.Pointer(&reserved[i][0]))
		m, ok := containing(maps, addr)
		switch {
		case !ok:
			err = fmt.Errorf("no mapping holds heap address %#x in /proc/self/maps", addr)
		case !m.advised:
			m.advised = true
			spans = append(spans, m)
		}
	}
	reserved = nil
	if err == nil {
		err = advise(spans, syscall.MADV_HUGEPAGE)
	}
	if err != nil {
		advise(spans, syscall.MADV_NOHUGEPAGE) // ordinary pages, as the caller says
		return 0, err
	}
	// The reserve goes back to the runtime as free heap, its pages
	// returned to the system (they were never touched): the advice stays
	// with the mapping.
	debug.FreeOSMemory()
	go withdraw(spans, watchEvery, outside, logf)
	advised := 0
	for _, m := range spans {
		advised += int(m.end - m.start)
	}
	return advised, nil
}

// advise gives spans the advice (MADV_HUGEPAGE or MADV_NOHUGEPAGE), all
// of them even when one fails, and returns the first failure.
func advise(spans []*mapping, advice int) error {
	var first error
	for _, m := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, uintptr(advice)); errno != 0 && first == nil {
			first = fmt.Errorf("madvise(%d): %w", advice, errno)
		}
	}
	return first
}

// watchEvery is how often the process's resident memory is set against
// the runtime's (a read of /proc/self/statm: microseconds). khugepaged
// wakes every 10 s by default and scans 16 MiB a wake.
var watchEvery = time.Second

// slack is how much more anonymous memory the process may hold resident
// than the runtime keeps mapped before the advice is withdrawn: a page
// the runtime touches in an empty 2-MiB range maps the whole range (a few
// MiB over a run of the bench), and C code (H3) has memory of its own.
func slack(held uint64) uint64 { return 32<<20 + held/8 }

// withdraw removes the advice from spans once the process holds more
// resident anonymous memory than the runtime keeps mapped, by more than
// slack: the kernel has filled again memory the runtime returned.
func withdraw(spans []*mapping, every time.Duration, outside func() uint64, logf func(string, ...any)) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	for range time.Tick(every) {
		anon, ok := residentAnon()
		if !ok {
			return
		}
		metrics.Read(samples)
		if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
			return
		}
		held := samples[0].Value.Uint64() - samples[1].Value.Uint64()
		if outside != nil {
			held += outside()
		}
		if anon <= held+slack(held) {
			continue
		}
		// ENOMEM would say part of a range is not mapped: the runtime
		// never unmaps its heap, and the rest is withdrawn all the same.
		advise(spans, syscall.MADV_NOHUGEPAGE)
		if logf != nil {
			logf("%d MiB of anonymous memory resident where the runtime (and flowd's own mappings) hold %d MiB: the kernel filled again memory the runtime returned; huge pages no longer advised for the heap", anon>>20, held>>20)
		}
		return
	}
}

// residentAnon is the process's resident memory that is not a file's
// (resident less shared, from /proc/self/statm).
func residentAnon() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, false
	}
	resident, err1 := strconv.ParseUint(string(f[1]), 10, 64)
	shared, err2 := strconv.ParseUint(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil || shared > resident {
		return 0, false
	}
	return (resident - shared) * uint64(os.Getpagesize()), true
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
