package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/flowd/flowd/internal/faults"
)

// smapsField returns a field of /proc/self/smaps for the mapping holding
// addr: "VmFlags" as written, sizes ("Rss", "AnonHugePages") in KiB.
func smapsField(t *testing.T, addr uintptr, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if span, _, _ := strings.Cut(line, " "); strings.Contains(span, "-") && !strings.HasSuffix(span, ":") {
			lo, hi, _ := strings.Cut(span, "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(s) <= addr && addr < uintptr(e)
			continue
		}
		if in && strings.HasPrefix(line, field+":") {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, field+":"), "kB"))
		}
	}
	t.Fatalf("no %s for the mapping of %#x", field, addr)
	return ""
}

func rssKiB(t *testing.T) int {
	t.Helper()
	return statusKiB(t, "VmRSS")
}

// statusKiB returns a size field of /proc/self/status in KiB.
func statusKiB(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestHeapIsBackedByHugePages reserves 256 MiB of heap and advises it: the
// reserve costs no resident memory, and a 32-MiB table allocated and
// written afterwards lands in the advised mapping and is mapped a 2-MiB
// page at a time: tens to hundreds of faults where 4-KiB pages take 8,192.
func TestHeapIsBackedByHugePages(t *testing.T) {
	m := mode()
	rss0 := rssKiB(t)
	advised, err := Heap(256<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m != "madvise" {
		if advised != 0 {
			t.Fatalf("mode %q: advised %d bytes, want none", m, advised)
		}
		t.Skipf("transparent huge pages %q here: nothing to advise", m)
	}
	if advised < 256<<20 {
		t.Fatalf("advised %d bytes, want the 256-MiB reserve at least", advised)
	}
	if grew := rssKiB(t) - rss0; grew > 32<<10 {
		t.Fatalf("reserving grew the resident set by %d KiB", grew)
	}
	const size = 32 << 20
	f0 := faults.Minor()
	table := make([]byte, size)
	for i := 0; i < size; i += 4096 {
		table[i] = 1
	}
	taken := faults.Minor() - f0
	addr := uintptr(unsafe.Pointer(&table[0]))
	if flags := smapsField(t, addr, "VmFlags"); !strings.Contains(" "+flags+" ", " hg ") {
		t.Fatalf("the table's mapping is not advised: VmFlags %q", flags)
	}
	huge, _ := strconv.Atoi(smapsField(t, addr, "AnonHugePages"))
	t.Logf("advised %d MiB; writing a 32-MiB table: %d faults, %d KiB of huge pages in its mapping", advised>>20, taken, huge)
	// The count is the process's: the collector's own first touches
	// (mark bits, metadata outside the heap) add a few hundred.
	if taken > size/4096/8 {
		t.Fatalf("writing 32 MiB faulted %d times: not in huge pages", taken)
	}
	if huge < size>>10/2 {
		t.Fatalf("the mapping holds %d KiB of huge pages, want most of the table's %d", huge, size>>10)
	}
}

// TestReserveOverUsedHeap reserves where the heap has a free run of used
// memory at its top, as garbage leaves it: the runtime clears an
// allocation whole when it starts in used memory, and a reserve taken in
// one allocation was then written through, 512 MiB resident at once. It
// runs in a fresh process, whose heap it can arrange.
func TestReserveOverUsedHeap(t *testing.T) {
	if mode() != "madvise" {
		t.Skipf("transparent huge pages %q here: nothing is reserved", mode())
	}
	if !inFreshProcess(t) {
		return
	}
	garbage := make([]byte, 16<<20)
	for i := 0; i < len(garbage); i += 4096 {
		garbage[i] = 1
	}
	garbage = nil
	runtime.GC()
	hwm0 := statusKiB(t, "VmHWM")
	if _, err := Heap(512<<20, nil, nil); err != nil {
		t.Fatal(err)
	}
	grew := statusKiB(t, "VmHWM") - hwm0
	t.Logf("reserving 512 MiB over 16 MiB of garbage: the peak resident set grew %d KiB", grew)
	if grew > 32<<10 {
		t.Fatalf("reserving grew the peak resident set by %d KiB: the reserve was written", grew)
	}
}

// inFreshProcess runs the test again in a process of its own and reports
// false; in that process it reports true, and the test goes on there.
func inFreshProcess(t *testing.T) bool {
	t.Helper()
	if os.Getenv("HUGEPAGES_CHILD") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "HUGEPAGES_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the fresh process: %v", err)
	}
	return false
}

// TestAdviceWithdrawnWhenMemoryComesBack grows the heap into the reserve
// and lets the runtime return it, which must leave the advice alone (huge
// pages are worth having again); then the process holds resident memory
// the runtime does not count, as when khugepaged fills again ranges the
// runtime returned (here a mapping of its own, written), and the advice
// must go.
func TestAdviceWithdrawnWhenMemoryComesBack(t *testing.T) {
	if mode() != "madvise" {
		t.Skipf("transparent huge pages %q here: nothing is advised", mode())
	}
	if !inFreshProcess(t) {
		return
	}
	watchEvery = 20 * time.Millisecond
	said := make(chan string, 1)
	// Memory of the process's own that it says it holds (flowd's page
	// pool) is held as the runtime's is.
	var own atomic.Uint64
	if _, err := Heap(256<<20, func() uint64 { return own.Load() }, func(f string, a ...any) { said <- fmt.Sprintf(f, a...) }); err != nil {
		t.Fatal(err)
	}
	table := make([]byte, 128<<20)
	for i := 0; i < len(table); i += 4096 {
		table[i] = 1
	}
	addr := uintptr(unsafe.Pointer(&table[0]))
	if flags := smapsField(t, addr, "VmFlags"); !strings.Contains(" "+flags+" ", " hg ") {
		t.Fatalf("the table's mapping is not advised: VmFlags %q", flags)
	}
	table = nil
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(300 * time.Millisecond)
	select {
	case m := <-said:
		t.Fatalf("withdrawn when the heap shrank and its memory went back: %s", m)
	default:
	}
	pool, err := syscall.Mmap(-1, 0, 128<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(pool)
	own.Store(uint64(len(pool)))
	for i := 0; i < len(pool); i += 4096 {
		pool[i] = 1
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case m := <-said:
		t.Fatalf("withdrawn for memory the process said it holds: %s", m)
	default:
	}
	outside, err := syscall.Mmap(-1, 0, 128<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(outside)
	for i := 0; i < len(outside); i += 4096 {
		outside[i] = 1
	}
	select {
	case m := <-said:
		t.Log(m)
	case <-time.After(5 * time.Second):
		t.Fatal("128 MiB resident beyond the runtime's, and the advice not withdrawn")
	}
	flags := " " + smapsField(t, addr, "VmFlags") + " "
	if strings.Contains(flags, " hg ") || !strings.Contains(flags, " nh ") {
		t.Fatalf("after the withdrawal the heap mapping's VmFlags are %q: want nh, not hg", flags)
	}
}

// TestLimitReserve never reserves under strict overcommit (the runtime
// dies of a refused heap mapping) and at most a quarter of memory.
func TestLimitReserve(t *testing.T) {
	if n, err := limitReserve(900<<20, 24<<30, "2"); err == nil || n != 0 {
		t.Fatalf("strict overcommit: reserve %d, error %v", n, err)
	}
	if n, err := limitReserve(900<<20, 1<<30, "0"); err != nil || n != 256<<20 {
		t.Fatalf("1 GiB machine: reserve %d, error %v; want 256 MiB", n, err)
	}
	if n, err := limitReserve(900<<20, 24<<30, "1"); err != nil || n != 900<<20 {
		t.Fatalf("24 GiB machine: reserve %d, error %v; want all 900 MiB", n, err)
	}
	if n, _ := limitReserve(900<<20, 0, "0"); n != 900<<20 {
		t.Fatalf("memory unknown: reserve %d, want 900 MiB", n)
	}
	if m := memTotal(); m <= 0 {
		t.Fatalf("MemTotal not read: %d", m)
	}
}
