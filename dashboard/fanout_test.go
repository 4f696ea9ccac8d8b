package dashboard

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/bench"
	"github.com/flowd/flowd/internal/testlock"
)

// fleetEnv makes the test binary a fleet of live clients instead of the
// tests: TestLiveFanout starts it as its second process.
const fleetEnv = "FLOWD_TEST_LIVE_FLEET"

func TestMain(m *testing.M) {
	if os.Getenv(fleetEnv) != "" {
		if err := bench.ServeLiveFleet(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serverMemory is the Go heap after a collection plus the goroutine
// stacks, and the process's resident set.
func serverMemory(t *testing.T) (goBytes, rss int64) {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &rss)
		}
	}
	return int64(ms.HeapAlloc + ms.StackInuse), rss << 10
}

// TestLiveFanout holds thousands of live connections from a second
// process against a real server: each costs at most 8 KB of Go heap and
// stacks while idle and 16 KB while it gets a frame every tick, and every
// client gets every tick's frame, or the snapshot that follows a skip.
func TestLiveFanout(t *testing.T) {
	testlock.Alone(t)
	const clients = 4000
	tick := 200 * time.Millisecond
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: tick, MaxClients: clients + 10}})
	heap0, rss0 := serverMemory(t)

	sub := fmt.Sprintf(`{"type":"subscribe","bbox":[%g,%g,%g,%g],"res":9,"metric":"swipes_in"}`, testBBox[0], testBBox[1], testBBox[2], testBBox[3])
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetEnv+"=1")
	f, err := bench.StartFleetProcess(cmd, bench.LiveFleetConfig{Addr: strings.TrimPrefix(s.URL, "http://"), Clients: clients, Sub: sub, Deflate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Kill()
	if err := f.Ready(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients connected and had their snapshots in %v", clients, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * tick)
	heapIdle, rssIdle := serverMemory(t)

	r := rand.New(rand.NewPCG(5, 6))
	ticks := 15
	for range ticks {
		s.post(t, "swipes", swipes(r, 300, testBBox, "in"))
		time.Sleep(tick)
	}
	heapActive, rssActive := serverMemory(t)
	time.Sleep(3 * tick)
	st := s.Dash.Hub.Stats()
	s.Dash.Hub.mu.Lock()
	var final int64
	for _, sh := range s.Dash.Hub.shapes {
		final = sh.seq
	}
	s.Dash.Hub.mu.Unlock()
	rep, err := f.Report()
	if err != nil {
		t.Fatal(err)
	}
	perConn := func(a, b int64) float64 { return float64(b-a) / clients / 1024 }
	t.Logf("per connection: Go heap and stacks %.1f KB idle, %.1f KB active; RSS %.1f KB idle, %.1f KB active",
		perConn(heap0, heapIdle), perConn(heap0, heapActive), perConn(rss0, rssIdle), perConn(rss0, rssActive))
	t.Logf("fleet: %d frames, %d snapshots after a skip, last seq %d to %d (shape at %d); after the tick p50 %v p99 %v; hub %+v",
		rep.Frames, rep.Snapshots, rep.MinLast, rep.MaxLast, final, rep.LatePercentile(0.5, 2, final), rep.LatePercentile(0.99, 2, final), st)

	if rep.Failed > 0 || st.Clients != clients {
		t.Errorf("%d fleet connections ended early; the hub holds %d of %d", rep.Failed, st.Clients, clients)
	}
	if rep.Missed > 0 {
		t.Errorf("%d frames skipped a seq without a snapshot", rep.Missed)
	}
	if rep.UserClock > 0 {
		// flowd-bench's figures after the tick are the server's only if the
		// kernel, not the fleet's sleepy readers, timed the arrivals.
		t.Errorf("%d of the fleet's reads had no kernel receive timestamp", rep.UserClock)
	}
	if final < int64(ticks)/2 || rep.MinLast != final || rep.MaxLast != final {
		t.Errorf("clients' last frames have seq %d to %d; the shape is at %d after %d ticks of data", rep.MinLast, rep.MaxLast, final, ticks)
	}
	if raceEnabled {
		return // the race detector's shadow memory is not the server's
	}
	if kb := perConn(heap0, heapIdle); kb > 8 {
		t.Errorf("an idle connection costs %.1f KB of Go heap and stacks; want at most 8", kb)
	}
	if kb := perConn(heap0, heapActive); kb > 16 {
		t.Errorf("an active connection costs %.1f KB of Go heap and stacks; want at most 16", kb)
	}
}

// raceEnabled is set under the race detector (race_test.go).
var raceEnabled bool
