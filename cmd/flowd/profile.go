package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// startProfile writes a CPU profile of the whole run to the file named by
// FLOWD_CPUPROFILE, and a heap profile every second to the file named by
// FLOWD_MEMPROFILE (the last one written stays, unless the name holds %n,
// replaced by the second's number: then every one stays, to find the
// peak), when set, with %p replaced by the process id: how the benchmarks
// see where a server's time and memory go. The returned function ends
// them.
func startProfile() (stop func(), err error) {
	stopCPU, err := startCPUProfile(os.Getenv("FLOWD_CPUPROFILE"))
	if err != nil {
		return nil, err
	}
	path := os.Getenv("FLOWD_MEMPROFILE")
	if path == "" {
		return stopCPU, nil
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
				writeHeapProfile(strings.ReplaceAll(path, "%n", strconv.Itoa(n)))
			}
		}
	}()
	return func() { close(done); stopCPU() }, nil
}

// writeHeapProfile replaces the heap profile at path, through a temporary
// file so that a reader never sees half of one.
func writeHeapProfile(path string) {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return
	}
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil && cerr == nil {
		os.Rename(path+".tmp", path)
	}
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("FLOWD_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("FLOWD_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
