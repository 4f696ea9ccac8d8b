package main

import (
	"cmp"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/bench"
	"github.com/flowd/flowd/demo/city"
)

// liveFleetCommand makes flowd-bench a fleet of live map clients for the
// live runs (bench.ServeLiveFleet): the clients run in processes of their
// own, so the figures measure flowd.
const liveFleetCommand = "live-fleet"

// liveRuns makes the live map runs of -live-clients, each on a fresh
// flowd with the city's registries. Runs of 10,000 clients or more, the
// sizes the goals speak of, also wait -live-hold idle and hold a light
// load for as long before their memory is read again.
func (b *benchRun) liveRuns() error {
	c := b.c
	if b.cty == nil { // -only-live: no day was generated
		b.cty = city.New(city.Config{Seed: 1, Scale: c.scale, Cameras: c.cameras})
	}
	var counts []int
	for _, f := range strings.Split(c.live, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-live-clients %q: %v", c.live, err)
		}
		counts = append(counts, n)
	}
	if len(counts) == 0 || counts[0] != 0 {
		counts = append([]int{0}, counts...) // the baseline: ingest alone
	}
	// The baseline's rate moved by half between runs on a shared machine
	// (0.79–1.17 M events a second): it is run before the runs with
	// clients, between them and after them, and the median is the one.
	var runs []int
	for i, n := range counts {
		runs = append(runs, n)
		if i > 0 && (i == 1 || i == len(counts)-1) {
			runs = append(runs, 0)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var baselines []bench.LiveResult
	for i, n := range runs {
		o := bench.LiveOptions{
			Clients: n, Senders: c.senders, Load: time.Duration(c.liveSecs) * time.Second, Plain: c.livePlain,
			Fleet: func() *exec.Cmd { return exec.Command(self, liveFleetCommand) },
		}
		if n >= 10000 {
			o.Hold = c.liveHold
		}
		dir := filepath.Join(c.work, fmt.Sprintf("live-%d", i))
		p, err := b.startFlowd(dir, "-live-max-clients", strconv.Itoa(n+100))
		if err != nil {
			return err
		}
		lr, err := bench.Live(b.ctx, p, b.cty, o)
		p.Stop(30 * time.Second)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("live map with %d clients: %w", n, err)
		}
		if n == 0 {
			baselines = append(baselines, lr)
			log.Printf("live map, 0 clients (baseline %d): ingest %.0f events/s, CPU flowd %v", len(baselines), lr.IngestRate, lr.ServerCPU)
			if i == 0 {
				b.r.live = append(b.r.live, lr) // until the others are in
			}
			continue
		}
		b.r.live = append(b.r.live, lr)
		if lr.NotRun != "" {
			log.Printf("live map, %d clients: not run: %s", n, lr.NotRun)
			continue
		}
		idle, loaded, held := lr.PerConnection(baselines[0])
		if lr.UserClock > 0 {
			log.Printf("live map, %d clients: %d reads had no kernel receive timestamp and were timed by the clients' clock", n, lr.UserClock)
		}
		log.Printf("live map, %d clients: ingest %.0f events/s, CPU flowd %v clients %v, %.0f frames/s of %.0f bytes, frame p50 %v p99 %v after the tick (each tick's p99: %v), event to frame p50 %v p99 %v, %.1f / %.1f / %.1f KB heap and %.1f / %.1f / %.1f KB RSS a connection (idle / loaded / held %v)",
			n, lr.IngestRate, lr.ServerCPU, lr.FleetCPU, lr.FramesPerSecond(), lr.FrameBytes, lr.FrameP50, lr.FrameP99, lr.TickP99, lr.EventToFrame, lr.EventToFrameP99,
			idle.Heap/1024, loaded.Heap/1024, held.Heap/1024, idle.RSS/1024, loaded.RSS/1024, held.RSS/1024, lr.Hold)
	}
	if len(baselines) > 0 {
		slices.SortFunc(baselines, func(x, y bench.LiveResult) int { return cmp.Compare(x.IngestRate, y.IngestRate) })
		b.r.live[0] = baselines[len(baselines)/2]
		b.r.liveBaselines = baselines
	}
	return nil
}
