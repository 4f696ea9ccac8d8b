// Package gcfloor gives the Go collector's heap goal a floor: the heap
// may grow to at least a given size before a collection, and beyond it by
// the usual percentage (GOGC) of the live heap.
//
// flowd runs with a low GOGC (30) so that a large heap — a city's
// memtables, trips and bodies — stays near its live size. A small heap
// then collects very often: a fresh server's first second, its heap
// growing from 12 to 35 MB while its buffers and tables reach their
// sizes, ran ten to eleven collections at GOGC 30, about 60–80 ms of CPU
// (gctrace), where GOGC 100 ran three or four for 12–26 ms. A floor gives
// the small heap the room and leaves the large heap's percentage as it
// is: the goal is max(live × (1 + percent/100), floor).
//
// It works as TiDB's and ByteDance's gctuner do: after every collection
// (a finalizer, re-armed each cycle) it reads the live heap and sets the
// percentage that makes the goal the larger of the two.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the percentage the floor sets, for a heap nearly
// empty.
const maxPercent = 1000

var (
	mu      sync.Mutex
	percent int
	floor   uint64
	armed   bool
	sample  = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
)

// Keep sets the collector's percentage to pct, the heap's goal never
// below floor bytes (0: no floor). Later calls change both.
func Keep(pct int, floorBytes uint64) {
	mu.Lock()
	percent, floor = pct, floorBytes
	first := !armed && floorBytes > 0
	armed = armed || first
	mu.Unlock()
	adjust()
	if first {
		arm()
	}
}

// sentinel is an object made unreachable at once, whose finalizer runs
// after the next collection.
type sentinel struct{ _ *int }

func arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		adjust()
		arm()
	})
}

// percentFor returns the percentage that makes the goal of a live heap
// of live bytes max(live × (1 + pct/100), floor).
func percentFor(pct int, floor, live uint64) int {
	if floor == 0 || pct < 0 {
		return pct
	}
	if live == 0 {
		return maxPercent
	}
	if goal := live + live*uint64(pct)/100; goal >= floor {
		return pct
	}
	return int(min((floor-live)*100/live, maxPercent))
}

func adjust() {
	metrics.Read(sample)
	var live uint64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		live = sample[0].Value.Uint64()
	}
	mu.Lock()
	p := percentFor(percent, floor, live)
	mu.Unlock()
	debug.SetGCPercent(p)
}
