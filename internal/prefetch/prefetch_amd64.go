package prefetch

// Lines prefetches the cache line of each address into every cache level
// (PREFETCHT0). An address is only a hint: it is never read, and one that
// is not mapped is ignored.
//
//go:noescape
func Lines(addrs []uintptr)
