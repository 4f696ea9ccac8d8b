// Package prefetch asks the processor to bring cache lines in ahead of
// their use, without waiting for them.
//
// Code that looks up many keys in tables larger than the cache (a feed
// naming another of 20,000 sensors on every line) waits for memory on
// every lookup. A load issued early to warm a line still holds the
// processor's in-order retirement until it returns, so only a few loads'
// misses overlap and no other work goes on behind them. A prefetch
// instruction retires at once: the lines of the next group of lookups
// arrive while the current group is worked on. Go has no prefetch of its
// own outside the runtime, hence these few instructions of assembly.
package prefetch

import "unsafe"

// Addr is the address of *p, for Lines.
func Addr[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }
