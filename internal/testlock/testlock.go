// Package testlock keeps tests that measure time under a load of their own
// from running at the same time as one another, across the packages `go
// test ./...` runs in parallel.
package testlock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Alone waits until no other test holding it runs, on this machine, and
// holds it until t ends. For tests whose verdict is a time measured while
// they load the machine themselves (thousands of connections, a browser
// drawing 20,000 hexagons): two of them at once on two cores made each
// other fail (a reader's p99 of 2 s under 10,000 slow connections while
// the browser drew, in a clean run of the suite).
func Alone(t testing.TB) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "flowd-tests-alone.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("test lock: %v", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		t.Fatalf("test lock %s: %v", path, err)
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
