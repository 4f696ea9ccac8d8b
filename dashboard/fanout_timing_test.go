package dashboard

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/bench"
)

// BenchmarkLiveFanout is the fan-out alone: 10,000 clients of one
// subscription in a second process (bench's fleet, which times arrivals
// by the kernel's receive timestamps and reads only once a burst is
// over), a real server, and a batch of swipes each tick, without the
// ingest load of flowd-bench's runs. It reports how long after the first
// client the tick reaches half of them and 99 % (the goal is
// 100 ms at p99), the server process's CPU per frame written, and a
// frame's bytes. The clients offer permessage-deflate, as browsers do,
// unless FLOWD_LIVE_PLAIN is set. A tick's batch is 300 swipes, which
// change about 200 cells (frames of 5 KB uncompressed), or
// FLOWD_FANOUT_SWIPES of them: 3000 change most of the view's (24 KB, as
// in flowd-bench's live runs).
//
//	go test -run '^$' -bench LiveFanout -benchtime 20x ./dashboard
func BenchmarkLiveFanout(b *testing.B) {
	const clients = 10000
	batch := 300
	if v := os.Getenv("FLOWD_FANOUT_SWIPES"); v != "" {
		var err error
		if batch, err = strconv.Atoi(v); err != nil || batch <= 0 {
			b.Fatalf("FLOWD_FANOUT_SWIPES=%q: want a number of swipes", v)
		}
	}
	s := startServer(b, b.TempDir(), Options{Hub: HubOptions{Tick: 250 * time.Millisecond, MaxClients: clients + 10}})
	sub := fmt.Sprintf(`{"type":"subscribe","bbox":[%g,%g,%g,%g],"res":9,"metric":"swipes_in"}`, testBBox[0], testBBox[1], testBBox[2], testBBox[3])
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetEnv+"=1")
	f, err := bench.StartFleetProcess(cmd, bench.LiveFleetConfig{Addr: strings.TrimPrefix(s.URL, "http://"), Clients: clients, Sub: sub, Sources: 8, Deflate: os.Getenv("FLOWD_LIVE_PLAIN") == ""})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Kill()
	if err := f.Ready(); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	frames := func() int64 { return s.Dash.Hub.Stats().Frames }
	// waitFrames waits until the writers have written n frames in all.
	waitFrames := func(n int64) {
		for deadline := time.Now().Add(30 * time.Second); frames() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%d frames written in 30 s; want %d", frames(), n)
			}
		}
	}
	s.post(b, "swipes", swipes(r, 300, testBBox, "in"))
	waitFrames(frames() + clients)
	var seq0 int64 // the shape's state before the timed ticks
	s.Dash.Hub.mu.Lock()
	for _, sh := range s.Dash.Hub.shapes {
		seq0 = sh.seq
	}
	s.Dash.Hub.mu.Unlock()
	cpu0, st0 := processCPU(b), s.Dash.Hub.Stats()
	frames0 := st0.Frames
	b.ResetTimer()
	for i := range b.N {
		s.post(b, "swipes", swipes(r, batch, testBBox, "in"))
		waitFrames(frames0 + int64(i+1)*clients)
	}
	b.StopTimer()
	cpu, st := processCPU(b)-cpu0, s.Dash.Hub.Stats()
	written := st.Frames - frames0
	time.Sleep(100 * time.Millisecond) // the fleet reads once the burst is over
	rep, err := f.Report()
	if err != nil {
		b.Fatal(err)
	}
	if rep.Missed > 0 || rep.Failed > 0 || rep.UserClock > 0 {
		b.Fatalf("fleet: %d diffs missed, %d connections failed, %d reads timed by the fleet's clock", rep.Missed, rep.Failed, rep.UserClock)
	}
	b.ReportMetric(float64(rep.LatePercentile(0.5, seq0+1, rep.MaxLast))/1e6, "ms-p50-after-first")
	b.ReportMetric(float64(rep.LatePercentile(0.99, seq0+1, rep.MaxLast))/1e6, "ms-p99-after-first")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(written)/1e3, "server-cpu-µs/frame")
	b.ReportMetric(float64(st.Bytes-st0.Bytes)/float64(written), "bytes/frame")
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
