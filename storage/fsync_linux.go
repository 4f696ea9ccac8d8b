package storage

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, with the metadata needed to read it
// back (its length), but not its times.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
