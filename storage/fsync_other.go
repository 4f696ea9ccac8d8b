//go:build !linux

package storage

import "os"

// fdatasync makes f's data durable: where there is no fdatasync, by fsync.
func fdatasync(f *os.File) error { return f.Sync() }
