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
// drawing 20,000 hexagons), which fail beside other heavy work on two
// cores. It keeps them from each other only: `make test` also runs one
// package at a time, since they failed beside other packages' tests too.
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
