//go:build !linux

package storage

// mapPages is the heap where flowd does not map memory of its own: the
// pool then only saves the pages' allocation, not the collector's cycles.
func mapPages(n int, _ bool) ([]pointPage, bool) { return make([]pointPage, n), true }
