package storage

import (
	"os"
	"syscall"
)

// setDirect turns O_DIRECT on or off for f's writes and reports whether
// they now bypass the page cache. A file system that does not take
// O_DIRECT (tmpfs before Linux 6.6, some network file systems) refuses
// it here, and f stays as it was.
func setDirect(f *os.File, on bool) bool {
	fd := f.Fd()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	if errno != 0 {
		return false
	}
	if on {
		flags |= syscall.O_DIRECT
	} else {
		flags &^= syscall.O_DIRECT
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, flags); errno != 0 {
		return false
	}
	return on
}
