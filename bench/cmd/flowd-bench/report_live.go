package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/flowd/flowd/bench"
)

// writeLive writes the live map runs: clients on one viewport of res-9
// cells while detector counts stamped now are posted as fast as flowd
// takes them, and the goals of issue 11 against them. The peer has no
// push of its own, so there is no ratio.
func (r *report) writeLive(w io.Writer) {
	if len(r.live) == 0 {
		return
	}
	fmt.Fprintf(w, "#### Live map\n\n")
	fmt.Fprintf(w, "Each run: a fresh flowd with the city's registries; N WebSocket clients subscribed to the res-9 cells around 50 of the city's sensors (`count_car`), offering permessage-deflate as browsers do (unless the run says plain), in processes of their own (`flowd-bench live-fleet`, up to 10,000 light clients each, on the same cores); %d senders posting counts for 2,000 sensors, stamped now, for %d s. \"After the tick\" is a frame's arrival after the first client got the same tick's frame, arrivals timed by the kernel's receive timestamp (SO_TIMESTAMPNS: when flowd's write delivered the frame, not when a client's reader got to it); \"event to frame\" is from an ingest request's acknowledgement to the first frame of the next tick. Memory is flowd's, per connection: Go heap (live at the last collection) plus goroutine stacks, and RSS. Idle is with the clients connected and nothing changing, 5 s after their snapshots (%v after in runs of 10,000 clients or more); loaded is at the end of the load, less what the run without clients grew by under the same load; held (runs of 10,000 or more) is after a further %v of one small batch every half second, every client getting a frame each tick.\n\n",
		r.cfg.senders, r.cfg.liveSecs, r.cfg.liveHold, r.cfg.liveHold)
	if n := len(r.liveBaselines); n > 1 {
		lo, hi := r.liveBaselines[0], r.liveBaselines[n-1]
		fmt.Fprintf(w, "The run without clients, against which the others' falls are read, is the middle one by ingest rate (of two, the faster) of %d such runs made before, between and after the runs with clients (ingest %.0f–%.0f events/s, %.0f–%.0f events per flowd CPU-s): on this shared machine one such run moved by half between full runs.\n\n",
			n, lo.IngestRate, hi.IngestRate, minEPC(r.liveBaselines), maxEPC(r.liveBaselines))
	}
	fmt.Fprintf(w, "| clients | ingest events/s | events per flowd CPU-s | CPU s: flowd / clients | frames/s | bytes a frame | after the tick p50 / p99 | event to frame p50 / p99 | snapshots after a skip | heap KB a connection: idle / loaded / held | RSS KB a connection: idle / loaded / held |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	base := r.live[0]
	for _, lr := range r.live {
		if lr.NotRun != "" {
			fmt.Fprintf(w, "| %d | not run: %s ||||||||||\n", lr.Clients, lr.NotRun)
			continue
		}
		fall, cpuFall := "", ""
		if lr.Clients > 0 && base.IngestRate > 0 && base.EventsPerCPU() > 0 {
			fall = fmt.Sprintf(" (%+.0f %%)", 100*(lr.IngestRate/base.IngestRate-1))
			cpuFall = fmt.Sprintf(" (%+.0f %%)", 100*(lr.EventsPerCPU()/base.EventsPerCPU()-1))
		}
		idle, loaded, held := lr.PerConnection(base)
		frameBytes := "–"
		if lr.Clients > 0 {
			frameBytes = fmt.Sprintf("%.0f", lr.FrameBytes)
			if lr.Deflate {
				frameBytes += " (deflate)"
			}
		}
		fmt.Fprintf(w, "| %d | %.0f%s | %.0f%s | %.1f / %.1f | %.0f | %s | %v / %v | %v / %v | %d | %s | %s |\n", lr.Clients, lr.IngestRate, fall,
			lr.EventsPerCPU(), cpuFall, lr.ServerCPU.Seconds(), lr.FleetCPU.Seconds(), lr.FramesPerSecond(), frameBytes,
			round(lr.FrameP50), round(lr.FrameP99), round(lr.EventToFrame), round(lr.EventToFrameP99), lr.Snapshots,
			kb3(lr, idle.Heap, loaded.Heap, held.Heap), kb3(lr, idle.RSS, loaded.RSS, held.RSS))
	}
	r.writeLiveGoals(w, base)
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// count writes n with thousands separated, as the goals do.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// kb3 is a run's idle, loaded and held memory a connection in KB.
func kb3(lr bench.LiveResult, idle, loaded, held float64) string {
	if lr.Clients == 0 {
		return "–"
	}
	h := "–"
	if lr.Hold > 0 {
		h = fmt.Sprintf("%.1f", held/1024)
	}
	return fmt.Sprintf("%.1f / %.1f / %s", idle/1024, loaded/1024, h)
}

// liveRun is the run made with n clients.
func (r *report) liveRun(n int) (bench.LiveResult, bool) {
	for _, lr := range r.live {
		if lr.Clients == n && lr.NotRun == "" {
			return lr, true
		}
	}
	return bench.LiveResult{}, false
}

// largestLiveRun is the run made with the most clients.
func (r *report) largestLiveRun() (bench.LiveResult, bool) {
	var best bench.LiveResult
	for _, lr := range r.live {
		if lr.NotRun == "" && lr.Clients > best.Clients {
			best = lr
		}
	}
	return best, best.Clients > 0
}

func (r *report) writeLiveGoals(w io.Writer, base bench.LiveResult) {
	fmt.Fprintf(w, "\n| goal (issue 11) | flowd | verdict |\n|---|---:|---|\n")
	if lr, ok := r.liveRun(10000); ok {
		fmt.Fprintf(w, "| 10,000 clients: p99 at most 100 ms after the tick | %v | %s |\n", round(lr.FrameP99), verdict(lr.FrameP99 <= 100*time.Millisecond))
		fmt.Fprintf(w, "| 10,000 clients: event to frame p99 at most 1 s | %v | %s |\n", round(lr.EventToFrameP99), verdict(lr.EventToFrameP99 <= time.Second))
		if base.IngestRate > 0 {
			fmt.Fprintf(w, "| 10,000 clients: ingest falls by at most 10 %% | %+.0f %% | %s |\n", 100*(lr.IngestRate/base.IngestRate-1), verdict(lr.IngestRate >= 0.9*base.IngestRate))
		}
		if base.EventsPerCPU() > 0 {
			fmt.Fprintf(w, "| the same, in events per flowd CPU-second (the fan-out's own cost, whatever else runs) | %+.0f %% | %s |\n", 100*(lr.EventsPerCPU()/base.EventsPerCPU()-1), verdict(lr.EventsPerCPU() >= 0.9*base.EventsPerCPU()))
		}
	} else {
		fmt.Fprintf(w, "| 10,000 clients | no run with 10,000 clients | – |\n")
	}
	if lr, ok := r.largestLiveRun(); ok {
		idle, loaded, held := lr.PerConnection(base)
		when := fmt.Sprintf("after %v", lr.Hold)
		if lr.Hold == 0 {
			held, when = loaded, "at the end of the load"
		}
		fmt.Fprintf(w, "| %s clients: at most 8 KB a connection idle, Go heap and RSS | %.1f KB, %.1f KB | %s |\n", count(lr.Clients), idle.Heap/1024, idle.RSS/1024, verdict(idle.Heap <= 8<<10 && idle.RSS <= 8<<10))
		fmt.Fprintf(w, "| %s clients: at most 16 KB a connection active, Go heap and RSS %s | %.1f KB, %.1f KB | %s |\n", count(lr.Clients), when, held.Heap/1024, held.RSS/1024, verdict(held.Heap <= 16<<10 && held.RSS <= 16<<10))
		fmt.Fprintf(w, "| %s clients: no diff missed without a snapshot | %d | %s |\n", count(lr.Clients), lr.Missed, verdict(lr.Missed == 0))
	}
	if lr, ok := r.liveRun(50000); ok {
		fmt.Fprintf(w, "| 50,000 clients: p99 at most 250 ms after the tick | %v | %s |\n", round(lr.FrameP99), verdict(lr.FrameP99 <= 250*time.Millisecond))
		fmt.Fprintf(w, "| 50,000 clients: at least 50,000 frames a second | %.0f | %s |\n", lr.FramesPerSecond(), verdict(lr.FramesPerSecond() >= 50000))
	} else {
		why := "no run with 50,000 clients"
		for _, lr := range r.live {
			if lr.Clients == 50000 && lr.NotRun != "" {
				why = "not run: " + lr.NotRun
			}
		}
		fmt.Fprintf(w, "| 50,000 clients | %s | – |\n", why)
	}
	fresh := time.Duration(0)
	for _, lr := range r.live {
		fresh = max(fresh, lr.Freshness)
	}
	fmt.Fprintf(w, "| freshness: an acknowledged event in queries within 1 s (worst of 5 tries a run, under load) | %v | %s |\n", round(fresh), verdict(fresh < time.Second))
	fmt.Fprintln(w)
}

// minEPC and maxEPC are the least and most events per CPU-second of runs.
func minEPC(runs []bench.LiveResult) float64 {
	m := runs[0].EventsPerCPU()
	for _, r := range runs {
		m = min(m, r.EventsPerCPU())
	}
	return m
}

func maxEPC(runs []bench.LiveResult) float64 {
	m := runs[0].EventsPerCPU()
	for _, r := range runs {
		m = max(m, r.EventsPerCPU())
	}
	return m
}
