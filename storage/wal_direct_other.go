//go:build !linux

package storage

import "os"

// setDirect is O_DIRECT's switch on Linux; elsewhere writes go through
// the page cache.
func setDirect(f *os.File, on bool) bool { return false }
