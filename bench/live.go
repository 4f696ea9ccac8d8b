package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
)

// LiveOptions configures a run of the live map benchmark.
type LiveOptions struct {
	Clients int           // WebSocket clients; 0 runs ingest alone, the baseline
	Senders int           // concurrent ingest requests
	Load    time.Duration // ingest as fast as flowd takes it
	// Hold is how long a light load (one small batch a tick) goes on after
	// the load before memory is read again: minutes let the heap grow to
	// its collection goal and RSS follow it.
	Hold time.Duration
	// Fleet returns the command of a process that serves a LiveFleet on
	// its stdin and stdout (ServeLiveFleet); each holds up to PerFleet
	// clients [10,000].
	Fleet    func() *exec.Cmd
	PerFleet int
	// Plain makes the clients offer no compression; by default they
	// offer permessage-deflate, as browsers do.
	Plain bool
}

// LiveResult is one run of the live map benchmark: clients in processes
// of their own, subscribed to one viewport of res-9 cells, while detector
// counts for it are posted as fast as flowd takes them.
type LiveResult struct {
	Clients    int
	NotRun     string // why the run could not be made, if it was not
	Seconds    float64
	IngestRate float64 // events per second acknowledged during the load
	Frames     int64   // cells frames the clients got during the load
	// FrameP50 and FrameP99: a frame's arrival after the first client got
	// the same tick's frame, during the load.
	FrameP50, FrameP99 time.Duration
	// TickP99 is the same p99 of each tick alone, in order: one slow tick
	// of fifteen (a flush, a collection, another process) moves the run's
	// p99 by itself.
	TickP99 []time.Duration
	// EventToFrame is from an ingest request's acknowledgement to the first
	// frame of the next tick at any client: median and 99th percentile.
	EventToFrame, EventToFrameP99 time.Duration
	// Freshness is the longest time, over a few tries, from a batch's
	// acknowledgement until a query answers with it.
	Freshness time.Duration
	// ServerCPU and FleetCPU are the CPU time flowd and the client
	// processes used during the load.
	ServerCPU, FleetCPU time.Duration
	Snapshots           int64   // snapshots after a skipped frame
	FrameBytes          float64 // a cells frame's bytes on the wire, mean over the load's
	Deflate             bool    // the clients offered permessage-deflate
	Missed              int64   // diffs that did not follow the last frame: a broken protocol
	UserClock           int64   // reads the clients timed themselves, without the kernel's timestamp
	// The server's memory before the clients came; with the clients
	// connected and idle; at the end of the load; after Hold of light load
	// in which every client gets a frame a tick.
	Before, Idle, Loaded, Held LiveMemory
	Hold                       time.Duration
}

// LiveMemory is what the server holds, in bytes.
type LiveMemory struct {
	Heap float64 // Go heap live at the last collection, plus goroutine stacks
	RSS  float64
}

func (m LiveMemory) minus(o LiveMemory) LiveMemory { return LiveMemory{m.Heap - o.Heap, m.RSS - o.RSS} }

func (m LiveMemory) per(n int) LiveMemory { return LiveMemory{m.Heap / float64(n), m.RSS / float64(n)} }

// PerConnection is the server's memory a connection: idle, at the end of
// the load and held. The load's own memory (the ingest buffers, the hub's
// queue of deltas) is taken out of the loaded figure with base, a run
// without clients under the same load.
func (r LiveResult) PerConnection(base LiveResult) (idle, loaded, held LiveMemory) {
	if r.Clients == 0 {
		return
	}
	load := base.Loaded.minus(base.Before)
	return r.Idle.minus(r.Before).per(r.Clients), r.Loaded.minus(r.Before).minus(load).per(r.Clients), r.Held.minus(r.Before).per(r.Clients)
}

// EventsPerCPU is the events flowd took in per second of its CPU during
// the load, fan-out included: unlike the rate, it does not depend on what
// else the machine runs.
func (r LiveResult) EventsPerCPU() float64 {
	if r.ServerCPU == 0 {
		return 0
	}
	return r.IngestRate * r.Seconds / r.ServerCPU.Seconds()
}

// FramesPerSecond is the frames delivered per second during the load.
func (r LiveResult) FramesPerSecond() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Frames) / r.Seconds
}

// liveSensors is how many of the city's sensors the load posts counts for:
// the first ones, along one road, so that a small viewport holds them.
const liveSensors = 2000

// Live runs the live map benchmark against p, which must hold the city's
// registries and allow that many clients. With a Hold, the clients also
// idle that long before their memory is read: connecting leaves garbage
// (the HTTP server's read buffers) that the runtime collects and returns
// to the system only within minutes.
func Live(ctx context.Context, p *Proc, c *city.City, o LiveOptions) (LiveResult, error) {
	r := LiveResult{Clients: o.Clients, Hold: o.Hold, Deflate: o.Clients > 0 && !o.Plain}
	if o.Clients > 0 {
		if r.NotRun = fileLimit(p.PID(), o.Clients); r.NotRun != "" {
			return r, nil
		}
	}
	sensors := c.Sensors[:min(liveSensors, len(c.Sensors))]
	var err error
	if r.Before, err = liveMemory(p); err != nil {
		return r, err
	}
	var fleets []*FleetProcess
	defer func() {
		for _, f := range fleets {
			f.Kill()
		}
	}()
	if o.Clients > 0 {
		if fleets, err = startFleets(p, o, liveSubscription(sensors)); err != nil {
			return r, err
		}
		time.Sleep(max(5*time.Second, o.Hold)) // idle: snapshots sent, nothing changing
		if r.Idle, err = liveMemory(p); err != nil {
			return r, err
		}
	}
	// One kept-alive connection a sender, as the ingest runs use: a new
	// one a request charged flowd an accept and a close each.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Senders + 1}}
	defer client.CloseIdleConnections()
	server0, fleet0 := cpuOf(p, fleets)
	start := time.Now()
	events, acks := postCounts(ctx, client, p.URL, sensors, o.Senders, o.Load)
	end := time.Now()
	server1, fleet1 := cpuOf(p, fleets)
	r.ServerCPU, r.FleetCPU = server1-server0, fleet1-fleet0
	r.Seconds = end.Sub(start).Seconds()
	r.IngestRate = float64(events) / r.Seconds
	if r.Loaded, err = liveMemory(p); err != nil {
		return r, err
	}
	if o.Clients > 0 && o.Hold > 0 {
		postCounts(ctx, client, p.URL, sensors[:50], 0, o.Hold)
		if r.Held, err = liveMemory(p); err != nil {
			return r, err
		}
	}
	if r.Freshness, err = freshness(ctx, client, p.URL, sensors[0]); err != nil || o.Clients == 0 {
		return r, err
	}
	time.Sleep(1500 * time.Millisecond) // the last ticks
	rep, err := stopFleets(fleets)
	if err != nil {
		return r, err
	}
	r.arrivals(rep, start, end, acks)
	return r, nil
}

// cpuOf is the CPU time flowd and the fleets have used so far.
func cpuOf(p *Proc, fleets []*FleetProcess) (server, fleet time.Duration) {
	server, _ = p.CPU()
	for _, f := range fleets {
		d, _ := processCPU(f.cmd.Process.Pid)
		fleet += d
	}
	return server, fleet
}

// liveSubscription is the viewport around the first 50 sensors.
func liveSubscription(sensors []city.Sensor) string {
	bbox := [4]float64{180, 90, -180, -90}
	for _, s := range sensors[:50] {
		bbox[0], bbox[1] = min(bbox[0], s.Pos.Lng), min(bbox[1], s.Pos.Lat)
		bbox[2], bbox[3] = max(bbox[2], s.Pos.Lng), max(bbox[3], s.Pos.Lat)
	}
	return fmt.Sprintf(`{"type":"subscribe","bbox":[%f,%f,%f,%f],"res":9,"metric":"count_car"}`,
		bbox[0]-0.002, bbox[1]-0.002, bbox[2]+0.002, bbox[3]+0.002)
}

// arrivals fills the frame figures from the fleets' report: the ticks
// whose first frame arrived during the load, and each acknowledgement's
// wait for the next tick's first frame.
func (r *LiveResult) arrivals(rep LiveFleetReport, start, end time.Time, acks []time.Time) {
	r.Snapshots, r.Missed, r.UserClock = rep.Snapshots, rep.Missed+rep.NoSeq, rep.UserClock
	var firsts []int64
	lo, hi := int64(-1), int64(-1)
	for seq, t := range rep.Ticks {
		firsts = append(firsts, t.First)
		if t.First >= start.UnixNano() && t.First <= end.UnixNano() {
			if lo < 0 || seq < lo {
				lo = seq
			}
			hi = max(hi, seq)
		}
	}
	if lo >= 0 {
		r.FrameP50, r.FrameP99 = rep.LatePercentile(0.5, lo, hi), rep.LatePercentile(0.99, lo, hi)
		r.Frames = rep.FramesOf(lo, hi)
		if r.Frames > 0 {
			r.FrameBytes = float64(rep.BytesOf(lo, hi)) / float64(r.Frames)
		}
		for seq := lo; seq <= hi; seq++ {
			r.TickP99 = append(r.TickP99, rep.LatePercentile(0.99, seq, seq))
		}
	}
	slices.Sort(firsts)
	var waits []time.Duration
	for _, a := range acks {
		i, _ := slices.BinarySearch(firsts, a.UnixNano()+1)
		if i < len(firsts) {
			waits = append(waits, time.Duration(firsts[i]-a.UnixNano()))
		}
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		r.EventToFrame, r.EventToFrameP99 = waits[len(waits)/2], waits[len(waits)*99/100]
	}
}

// fileLimit says why flowd cannot hold clients connections, or "".
func fileLimit(pid, clients int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if n, err := strconv.Atoi(f[0]); err == nil && n < clients+200 {
				return fmt.Sprintf("flowd may open %d files (its RLIMIT_NOFILE; the hard limit is %s here), too few for %d clients", n, f[1], clients)
			}
		}
	}
	return ""
}

// startFleets starts the fleet processes, each dialing its share of the
// clients from eight source addresses, and waits until all are ready.
func startFleets(p *Proc, o LiveOptions, sub string) ([]*FleetProcess, error) {
	per := o.PerFleet
	if per <= 0 {
		per = 10000
	}
	addr := strings.TrimPrefix(p.URL, "http://")
	var fleets []*FleetProcess
	for left := o.Clients; left > 0; left -= per {
		f, err := StartFleetProcess(o.Fleet(), LiveFleetConfig{Addr: addr, Clients: min(left, per), Sub: sub, Sources: 8, Deflate: !o.Plain})
		if err != nil {
			for _, f := range fleets {
				f.Kill()
			}
			return nil, err
		}
		fleets = append(fleets, f)
	}
	for _, f := range fleets {
		if err := f.Ready(); err != nil {
			return nil, err
		}
	}
	return fleets, nil
}

func stopFleets(fleets []*FleetProcess) (LiveFleetReport, error) {
	var reps []LiveFleetReport
	for _, f := range fleets {
		rep, err := f.Report()
		if err != nil {
			return LiveFleetReport{}, err
		}
		reps = append(reps, rep)
	}
	return MergeLiveReports(reps), nil
}

// liveMemory reads flowd's Go heap and stacks from /api/v1/live/stats and
// its RSS.
func liveMemory(p *Proc) (LiveMemory, error) {
	resp, err := http.Get(p.URL + "/api/v1/live/stats")
	if err != nil {
		return LiveMemory{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Heap   float64 `json:"go_heap_live_bytes"`
		Stacks float64 `json:"go_stack_bytes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return LiveMemory{}, fmt.Errorf("/api/v1/live/stats: %w", err)
	}
	rss, err := p.RSS()
	return LiveMemory{Heap: st.Heap + st.Stacks, RSS: float64(rss)}, err
}

// postCounts posts counts for sensors, stamped now, from senders goroutines
// for d, as fast as they are acknowledged; with no senders, one small
// batch every half second. It returns the events acknowledged and when.
func postCounts(ctx context.Context, client *http.Client, base string, sensors []city.Sensor, senders int, d time.Duration) (int64, []time.Time) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pause := time.Duration(0)
	if senders == 0 {
		senders, pause = 1, 500*time.Millisecond
	}
	var events atomic.Int64
	var mu sync.Mutex
	var acks []time.Time
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			var body []byte
			for ctx.Err() == nil {
				body = body[:0]
				ts := time.Now().Unix()
				for i, sn := range sensors {
					body = fmt.Appendf(body, `{"time":%d,"sensor":%q,"class":"car","count":%d}`+"\n", ts, sn.ID, 1+(i+s)%7)
				}
				if n, err := postNDJSON(ctx, client, base, body); err == nil {
					events.Add(int64(n))
					mu.Lock()
					acks = append(acks, time.Now())
					mu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		})
	}
	wg.Wait()
	return events.Load(), acks
}

// freshness posts a bus count for sensor s (a class the load does not
// post) five times and asks /api/v1/series for the sensor's cell right after
// each acknowledgement, until the new total shows; it returns the longest
// wait.
func freshness(ctx context.Context, client *http.Client, base string, s city.Sensor) (time.Duration, error) {
	cell, err := cellOf(s.Pos.Lat, s.Pos.Lng)
	if err != nil {
		return 0, err
	}
	var worst time.Duration
	from := time.Now().Add(-time.Minute).Unix()
	for i := int64(1); i <= 5; i++ {
		body := fmt.Appendf(nil, `{"time":%d,"sensor":%q,"class":"bus","count":1}`+"\n", time.Now().Unix(), s.ID)
		if _, err := postNDJSON(ctx, client, base, body); err != nil {
			return 0, err
		}
		acked := time.Now()
		for {
			q := fmt.Sprintf("%s/api/v1/series?metric=count_bus&cells=%s&from=%d&step=5m", base, cell, from)
			resp, err := client.Get(q)
			if err != nil {
				return 0, err
			}
			var a struct{ Total int64 }
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err != nil {
				return 0, err
			}
			if a.Total >= i {
				worst = max(worst, time.Since(acked))
				break
			}
			if time.Since(acked) > 10*time.Second {
				return 0, fmt.Errorf("a count acknowledged 10 s ago is not in /api/v1/series")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return worst, nil
}

// cellOf is the hex id of the res-9 cell of a point, as flowd names it.
func cellOf(lat, lng float64) (string, error) {
	c, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// jsonInt reads the integer after the first occurrence of key in msg.
func jsonInt(msg []byte, key string) (int64, bool) {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '-') {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

func postNDJSON(ctx context.Context, client *http.Client, base string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/ingest/counts", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body) // read to its end, so that the connection is kept
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return bytes.Count(body, []byte("\n")), nil
}
