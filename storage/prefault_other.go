//go:build !linux

package storage

// prefault does nothing where there is no MADV_POPULATE_WRITE.
func prefault[T any](s []T) {}
