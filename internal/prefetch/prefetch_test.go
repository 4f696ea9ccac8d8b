package prefetch

import (
	"testing"
	"unsafe"
)

// Lines takes any address: of live data, none at all, nil, and addresses
// nothing is mapped at. A hint never faults.
func TestLinesTakesAnyAddress(t *testing.T) {
	data := make([]uint64, 1<<16)
	var addrs []uintptr
	for i := 0; i < len(data); i += 8 {
		addrs = append(addrs, Addr(&data[i]))
	}
	Lines(nil)
	Lines(addrs)
	Lines([]uintptr{0, 1, ^uintptr(0), 1 << 47, uintptr(unsafe.Pointer(&data[0])) + 1<<40})
	for i := range data {
		if data[i] != 0 {
			t.Fatalf("word %d changed: %d", i, data[i])
		}
	}
}
