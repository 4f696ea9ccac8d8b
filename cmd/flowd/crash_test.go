package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/storage"
)

// crashModes are the ways a run ends: killed by the process itself at a
// failpoint between two durable steps, or by the test at a random moment.
var crashModes = []string{storage.FailpointMergeRenamed, storage.FailpointFlushPartInstalled, storage.FailpointWALSynced, "random"}

// TestCrashLoop kills a real flowd with SIGKILL again and again while it
// ingests with a tiny flush interval (so flushes and merges run all the
// time), restarts it on the same data, and checks after every restart that
// each acknowledged batch is there exactly, and each batch in flight at the
// crash is there entirely or not at all. Every other batch is a detector's
// counts with their speeds (a count and speed sum the memtable keeps as one
// point with a second value), checked the same way, both together.
// FLOWD_CRASH_RUNS sets the number of runs (3 by default; `make bench`
// runs 50).
func TestCrashLoop(t *testing.T) {
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("FLOWD_CRASH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	// Each batch lands in a minute of its own, so a query tells batches
	// apart: minutes from t0 on, all of them in the past (a batch stamped
	// ahead of the clock is refused) and one query's worth of steps (at
	// most 100,000), however many runs. So a run posts at most
	// maxPerRun batches, and the minute tier keeps them all.
	const maxPerRun = 1000
	if runs*maxPerRun > 95000 {
		t.Fatalf("FLOWD_CRASH_RUNS=%d: at most %d runs fit one query's minutes", runs, 95000/maxPerRun)
	}
	span := time.Duration(runs*maxPerRun/60+2) * time.Hour // whole hours: the hour tier's query starts at t0
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-span)
	data := t.TempDir()
	flags := append(registryFlags(t), "-flush-interval", "100ms", "-retention-minute", (span + 48*time.Hour).String())
	acked := map[int]int64{}    // batch -> swipes, acknowledged
	inFlight := map[int]int64{} // batch -> swipes, sent without an answer
	// Every other batch is a detector's counts with their speeds: a
	// class's count and speed sum, which the memtable keeps as one point
	// with a second value, through the same crashes.
	type counts struct{ count, speed int64 }
	ackedC := map[int]counts{}
	inFlightC := map[int]counts{}
	sensorCell := cellOf(t, 30.2700, 120.1500, 9).String()
	next := 0
	client := &http.Client{Timeout: 10 * time.Second}
	// The two stations' cells: a query of two cells stays far under the
	// query cost limit however many minutes the runs fill.
	stationCells := cellOf(t, 30.2590, 120.1640, 9).String() + "," + cellOf(t, 30.2810, 120.1650, 9).String()

	verify := func(c *child, when string) {
		t.Helper()
		s := c.series(t, fmt.Sprintf("metric=swipes_in&cells=%s&from=%d&to=%d&step=1m", stationCells, t0.Unix(), t0.Add(time.Duration(next+1)*time.Minute).Unix()))
		var want int64
		for i := 0; i < next; i++ {
			got := s.Points[i][1]
			if k, ok := acked[i]; ok {
				want += k
				if got != k {
					t.Fatalf("%s: acknowledged batch %d has %d swipes, want %d", when, i, got, k)
				}
			} else if k, ok := inFlight[i]; ok {
				if got != 0 && got != k {
					t.Fatalf("%s: batch %d in flight at a crash has %d of its %d swipes: half a batch", when, i, got, k)
				}
				// Settle it: from now on it is known.
				delete(inFlight, i)
				if got == k {
					acked[i] = k
					want += k
				}
			}
		}
		if s.Total != want {
			t.Fatalf("%s: total %d swipes, want %d", when, s.Total, want)
		}
		// The hourly rollup must agree with the minutes.
		h := c.series(t, fmt.Sprintf("metric=swipes_in&cells=%s&from=%d&to=%d&step=1h", stationCells, t0.Unix(), t0.Add(time.Duration(next/60+1)*time.Hour).Unix()))
		if h.Tier != "hour" || h.Total != want {
			t.Fatalf("%s: hour tier (%s) holds %d swipes, minutes %d", when, h.Tier, h.Total, want)
		}
		// The counts and their speed sums: a batch whole or not at all,
		// its count and its speed sum together.
		minutes := fmt.Sprintf("cells=%s&from=%d&to=%d&step=1m", sensorCell, t0.Unix(), t0.Add(time.Duration(next+1)*time.Minute).Unix())
		if r := c.get(t, "/api/v1/series?metric=speed_car&"+minutes); r.status == 400 && strings.Contains(string(r.body), "unknown metric") {
			// No count has reached the store yet.
			if len(ackedC) > 0 {
				t.Fatalf("%s: %d batches of counts acknowledged, and flowd knows no speed_car: %s", when, len(ackedC), r.body)
			}
			clear(inFlightC)
			return
		}
		cnt := c.series(t, "metric=count_car&"+minutes)
		spd := c.series(t, "metric=speed_car&"+minutes)
		var wantC counts
		for i := 0; i < next; i++ {
			got := counts{cnt.Points[i][1], spd.Points[i][1]}
			if k, ok := ackedC[i]; ok {
				if got != k {
					t.Fatalf("%s: acknowledged batch %d holds count %d and speed sum %d, want %d and %d", when, i, got.count, got.speed, k.count, k.speed)
				}
			} else if k, ok := inFlightC[i]; ok {
				if got != (counts{}) && got != k {
					t.Fatalf("%s: batch %d in flight at a crash holds count %d and speed sum %d of its %d and %d: half a batch", when, i, got.count, got.speed, k.count, k.speed)
				}
				delete(inFlightC, i)
				if got == k {
					ackedC[i] = k
				}
			} else if got != (counts{}) {
				t.Fatalf("%s: minute %d, a batch of swipes, holds count %d and speed sum %d", when, i, got.count, got.speed)
			}
			if k, ok := ackedC[i]; ok {
				wantC.count += k.count
				wantC.speed += k.speed
			}
		}
		for _, q := range []struct {
			metric string
			want   int64
		}{{"count_car", wantC.count}, {"speed_car", wantC.speed}} {
			h := c.series(t, fmt.Sprintf("metric=%s&cells=%s&from=%d&to=%d&step=1h", q.metric, sensorCell, t0.Unix(), t0.Add(time.Duration(next/60+1)*time.Hour).Unix()))
			if h.Tier != "hour" || h.Total != q.want {
				t.Fatalf("%s: hour tier (%s) holds %s %d, the minutes %d", when, h.Tier, q.metric, h.Total, q.want)
			}
		}
	}

	for run := range runs {
		rng := rand.New(rand.NewPCG(uint64(run), 42))
		mode := crashModes[run%len(crashModes)]
		var env []string
		if mode != "random" {
			env = []string{fmt.Sprintf("FLOWD_FAILPOINT=%s:%d", mode, 1+rng.IntN(4))}
		}
		c, err := startFlowdEnv(t, data, env, flags...)
		if err != nil {
			// The failpoint fired while starting (a flush of replayed data).
			t.Logf("run %d (%s): died while starting", run, mode)
			continue
		}
		// The replayed data is flushed in the background once flowd
		// listens (every 100 ms): the failpoint may fire there too.
		select {
		case <-c.done:
			t.Logf("run %d (%s): died flushing what it replayed", run, mode)
			continue
		case <-time.After(time.Second):
		}
		verify(c, fmt.Sprintf("run %d (%s) after restart", run, mode))
		// send posts a batch of kind and reports whether flowd
		// acknowledged it, and whether it answered at all.
		send := func(kind string, body *bytes.Buffer) (ok, answered bool) {
			resp, err := client.Post(c.url+"/api/v1/ingest/"+kind, "application/x-ndjson", body)
			if err != nil {
				return false, false
			}
			resp.Body.Close()
			return resp.StatusCode == 200, true
		}
		killAt := time.Now().Add(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		for posted := 0; ; posted++ {
			if mode == "random" && time.Now().After(killAt) {
				c.kill()
				break
			}
			if time.Now().After(killAt.Add(5 * time.Second)) {
				c.kill() // the failpoint was not reached in time
				break
			}
			if posted >= maxPerRun {
				// The run's batches are in; flushes and merges go on
				// until the failpoint or the kill.
				time.Sleep(10 * time.Millisecond)
				select {
				case <-c.done:
				default:
					continue
				}
				break
			}
			if next%2 == 1 {
				var b bytes.Buffer
				var sum counts
				for range 1 + rng.IntN(20) {
					n, kmh := int64(1+rng.IntN(30)), int64(20+rng.IntN(80))
					fmt.Fprintf(&b, `{"time":%d,"sensor":"D1","class":"car","count":%d,"interval":60,"speed":%d}`+"\n", t0.Add(time.Duration(next)*time.Minute).Unix(), n, kmh)
					sum.count += n
					sum.speed += n * kmh
				}
				i := next
				next++
				inFlightC[i] = sum
				ok, answered := send("counts", &b)
				if !answered {
					break // the process died
				}
				if ok {
					delete(inFlightC, i)
					ackedC[i] = sum
				}
				continue
			}
			k := int64(1 + rng.IntN(40))
			var b bytes.Buffer
			for j := range k {
				fmt.Fprintf(&b, `{"time":%d,"card":"c%d","dir":"in","station":"S%d"}`+"\n", t0.Add(time.Duration(next)*time.Minute).Unix(), j, 1+j%2)
			}
			i := next
			next++
			inFlight[i] = k
			ok, answered := send("swipes", &b)
			if !answered {
				break // the process died
			}
			if ok {
				delete(inFlight, i)
				acked[i] = k
			}
		}
		<-c.done
		if !strings.Contains(c.Logs(), "failpoint") && mode != "random" {
			t.Logf("run %d: failpoint %s not reached; killed at a random moment", run, mode)
		}
	}
	c := startFlowd(t, data, flags...)
	verify(c, "final restart")
	c.stop()
	t.Logf("%d runs, %d batches, %d acknowledged", runs, next, len(acked))
}
