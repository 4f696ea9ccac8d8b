//go:build unix

// Package faults counts the process's page faults, for the tests that
// check memory is mapped in ahead of use (storage's prefault, the heap's
// huge pages).
package faults

import "syscall"

// Minor returns the minor page faults the process has taken so far.
func Minor() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Minflt
}
