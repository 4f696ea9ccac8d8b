//go:build !amd64

package prefetch

// Lines does nothing on this architecture: the lookups that would have
// used it wait for memory as they would without it.
func Lines(addrs []uintptr) {}
