package dashboard

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/gorilla/websocket"
	"github.com/uber/h3-go/v4"
)

// cellLatLng returns the centre of the cell with hex id s.
func cellLatLng(t *testing.T, s string) (float64, float64) {
	t.Helper()
	c := h3.Cell(h3.IndexFromString(s))
	if !c.IsValid() {
		t.Fatalf("cell %q is not valid", s)
	}
	ll := c.LatLng()
	return ll.Lat, ll.Lng
}

var testBBox = [4]float64{120.10, 30.20, 120.20, 30.30}

// swipes returns n NDJSON swipes at random points of bbox (and a few
// outside it), in or out, at the current time.
func swipes(r *rand.Rand, n int, bbox [4]float64, dir string) []byte {
	var buf []byte
	now := time.Now().UTC().Format(time.RFC3339)
	for i := range n {
		lng := bbox[0] + r.Float64()*(bbox[2]-bbox[0])
		lat := bbox[1] + r.Float64()*(bbox[3]-bbox[1])
		if i%10 == 9 {
			lng += 1 // outside the box: must not reach the subscription
		}
		buf = fmt.Appendf(buf, `{"time":%q,"card":"c%d","dir":%q,"lat":%.6f,"lng":%.6f}`+"\n", now, r.IntN(1000), dir, lat, lng)
	}
	return buf
}

// readUntil folds frames into values until match accepts them, failing
// after timeout; it returns the frames read.
func (c *liveClient) readUntil(t *testing.T, values map[string]int64, timeout time.Duration, match func(m message) bool) []message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got []message
	for time.Now().Before(deadline) {
		m := c.read(t, time.Until(deadline))
		if m.Type != "cells" {
			continue
		}
		m.apply(t, values)
		got = append(got, m)
		if match(m) {
			return got
		}
	}
	t.Fatalf("no matching frame within %v; last values %v", timeout, values)
	return nil
}

func TestLiveFramesMatchDensity(t *testing.T) {
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 100 * time.Millisecond}})
	r := rand.New(rand.NewPCG(1, 2))
	c9, c8 := s.dial(t, nil), s.dial(t, nil)
	c9.subscribe(t, testBBox, 9, "swipes_in")
	c8.subscribe(t, testBBox, 8, "swipes_in")

	first := c9.read(t, 5*time.Second)
	if first.Type != "cells" || !first.Full || len(first.Set) != 0 || first.Metric != "swipes_in" || first.Res != 9 {
		t.Fatalf("first frame %+v, want an empty full snapshot of swipes_in at res 9", first)
	}

	s.post(t, "swipes", swipes(r, 300, testBBox, "in"))
	s.post(t, "swipes", swipes(r, 200, testBBox, "out"))
	v9, v8 := map[string]int64{}, map[string]int64{}
	for _, tc := range []struct {
		c      *liveClient
		res    int
		values map[string]int64
	}{{c9, 9, v9}, {c8, 8, v8}} {
		tc.c.readUntil(t, tc.values, 5*time.Second, func(message) bool {
			want := s.density(t, "swipes_in", testBBox, tc.res)
			return len(want) > 0 && maps.Equal(tc.values, want)
		})
		var total int64
		for _, v := range tc.values {
			total += v
		}
		if total != 270 {
			t.Errorf("res %d: live cells sum to %d, want the 270 swipes in inside the box", tc.res, total)
		}
	}

	// One more swipe: the next frame names only its cell.
	var cell string
	for c := range v9 {
		cell = c
		break
	}
	lat, lng := cellLatLng(t, cell)
	s.post(t, "swipes", fmt.Appendf(nil, `{"time":%q,"card":"x","dir":"in","lat":%.7f,"lng":%.7f}`+"\n", time.Now().UTC().Format(time.RFC3339), lat, lng))
	before := v9[cell]
	frames := c9.readUntil(t, v9, 5*time.Second, func(m message) bool { return len(m.Set) > 0 })
	last := frames[len(frames)-1]
	if last.Full || len(last.Set) != 1 || len(last.Del) != 0 || v9[cell] != before+1 {
		t.Errorf("after one swipe got frame %+v (cell %s %d→%d), want only that cell, one more", last, cell, before, v9[cell])
	}
	if want := s.density(t, "swipes_in", testBBox, 9); !maps.Equal(v9, want) {
		t.Errorf("live cells differ from /api/v1/density:\nlive    %v\ndensity %v", v9, want)
	}

	// A new subscription switches the feed: a full snapshot of the new
	// metric, then only its changes.
	c9.subscribe(t, testBBox, 9, "swipes_out")
	c9.readUntil(t, v9, 5*time.Second, func(m message) bool { return m.Metric == "swipes_out" && m.Full })
	if want := s.density(t, "swipes_out", testBBox, 9); len(want) == 0 || !maps.Equal(v9, want) {
		t.Errorf("after switching to swipes_out:\nlive    %v\ndensity %v", v9, want)
	}
	s.post(t, "swipes", swipes(r, 50, testBBox, "in"))
	s.post(t, "swipes", swipes(r, 50, testBBox, "out"))
	c9.readUntil(t, v9, 5*time.Second, func(m message) bool {
		if m.Metric != "swipes_out" {
			t.Fatalf("frame of %s after subscribing to swipes_out", m.Metric)
		}
		return maps.Equal(v9, s.density(t, "swipes_out", testBBox, 9))
	})

	// A smaller box drops the cells outside it.
	small := [4]float64{testBBox[0], testBBox[1], (testBBox[0] + testBBox[2]) / 2, (testBBox[1] + testBBox[3]) / 2}
	c9.subscribe(t, small, 9, "swipes_out")
	c9.readUntil(t, v9, 5*time.Second, func(m message) bool { return m.Full })
	if want := s.density(t, "swipes_out", small, 9); !maps.Equal(v9, want) || len(v9) >= len(s.density(t, "swipes_out", testBBox, 9)) {
		t.Errorf("small box: live %d cells, density %d cells; want equal and fewer than the big box", len(v9), len(want))
	}

	c9.subscribe(t, [4]float64{1, 2, 0, 3}, 9, "swipes_in")
	if m := c9.read(t, 5*time.Second); m.Type != "error" {
		t.Errorf("inverted bbox answered %+v, want an error message", m)
	}
	// Distinct cards and trips by destination stay off the live feed.
	for _, metric := range []string{"hll_cards", "trips"} {
		c9.subscribe(t, testBBox, 9, metric)
		if m := c9.read(t, 5*time.Second); m.Type != "error" || !strings.Contains(m.Error, "not on the live feed") {
			t.Errorf("subscribing to %s answered %+v, want an error message", metric, m)
		}
	}
}

// TestSlowClientDropped: a client that never reads fills its queue, is
// skipped and then dropped, while ingest and a reading client carry on
// at their usual pace.
func TestSlowClientDropped(t *testing.T) {
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{
		Tick: 100 * time.Millisecond, MaxSkips: 3, WriteTimeout: 3 * time.Second,
	}})
	// A tiny receive buffer on the slow client's socket makes its TCP
	// window close after a few frames.
	slowDialer := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
			return serr
		}}
		return d.Dial(network, addr)
	}}
	slow := s.dial(t, slowDialer)
	slow.subscribe(t, testBBox, 9, "swipes_in")
	fast := s.dial(t, nil)
	fast.subscribe(t, testBBox, 9, "swipes_in")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var maxPost atomic.Int64 // ns
	wg.Go(func() {
		r := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if d := int64(s.post(t, "swipes", swipes(r, 3000, testBBox, "in"))); d > maxPost.Load() {
				maxPost.Store(d)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	values := map[string]int64{}
	var maxGap time.Duration
	last := time.Now()
	deadline := time.Now().Add(25 * time.Second)
	for s.Dash.Hub.Stats().Dropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow client not dropped within 25 s: %+v", s.Dash.Hub.Stats())
		}
		m := fast.read(t, 5*time.Second)
		m.apply(t, values)
		maxGap = max(maxGap, time.Since(last))
		last = time.Now()
	}
	// The reading client keeps getting frames after the drop.
	for range 5 {
		m := fast.read(t, 5*time.Second)
		m.apply(t, values)
		maxGap = max(maxGap, time.Since(last))
		last = time.Now()
	}
	st := s.Dash.Hub.Stats()
	t.Logf("stats %+v; reading client's longest gap %v; slowest ingest POST %v", st, maxGap, time.Duration(maxPost.Load()))
	if st.Clients != 1 || st.Dropped != 1 {
		t.Errorf("clients %d dropped %d, want 1 and 1", st.Clients, st.Dropped)
	}
	if maxGap > 2*time.Second {
		t.Errorf("reading client waited %v between frames while the slow one stalled", maxGap)
	}
	if d := time.Duration(maxPost.Load()); d > 3*time.Second {
		t.Errorf("an ingest POST took %v while a client stalled", d)
	}
}

// BenchmarkHubObserveTick is ingest's side of the live map over one tick
// of a busy city: 100 durable batches of 5,000 deltas of current minutes
// queued by ObserveDeltas and moved into the window by the tick loop's
// ten absorbs. It reports the time and bytes allocated per delta.
func BenchmarkHubObserveTick(b *testing.B) {
	st, err := storage.Open(b.TempDir(), storage.Options{Logf: func(string, ...any) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := NewHub(st, 9, HubOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cells := h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.16}, 9).GridDisk(41)[:5000]
	deltas := make([]storage.Delta, len(cells))
	tick := func() {
		m := h.nowMinute()
		for i, cell := range cells {
			deltas[i] = storage.Delta{Key: storage.Key{Metric: 1, Cell: uint64(cell), Minute: m}, Value: 1}
		}
		for range 10 {
			for range 10 {
				h.ObserveDeltas(deltas)
			}
			h.absorb()
		}
	}
	tick()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tick()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(100*len(cells)), "ns/delta")
}

// TestPingsSpreadAndSilentDropped: with pings every 400 ms in 8 slices,
// each of 16 clients that answers is pinged about once an interval and
// stays, a slice at a time (never all of them within one slice's turn),
// and one that never answers is dropped after two intervals of silence.
func TestPingsSpreadAndSilentDropped(t *testing.T) {
	srv := startServer(t, t.TempDir(), Options{Hub: HubOptions{PingInterval: 400 * time.Millisecond}})
	const n = 16
	var mu sync.Mutex
	var pings []time.Time // when each ping arrived
	perClient := make([]int, n)
	for i := range n {
		c := srv.dial(t, nil)
		c.conn.SetPingHandler(func(data string) error {
			mu.Lock()
			pings = append(pings, time.Now())
			perClient[i]++
			mu.Unlock()
			return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() {
			for {
				if _, _, err := c.conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	silent := srv.dial(t, nil) // never reads, so never answers a ping
	_ = silent
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	for i, k := range perClient {
		if k < 3 || k > 7 {
			t.Errorf("client %d was pinged %d times in 2 s, want about 5 (one each 400 ms)", i, k)
		}
	}
	// A slice's turn (50 ms) sends to about n/8 clients: never to all.
	slices.SortFunc(pings, func(a, b time.Time) int { return a.Compare(b) })
	for i := range pings {
		j := i
		for j < len(pings) && pings[j].Sub(pings[i]) < 25*time.Millisecond {
			j++
		}
		if j-i > n/2 {
			t.Fatalf("%d pings within 25 ms: the clients were pinged all at once", j-i)
		}
	}
	var st HubStats
	srv.getJSON(t, "/api/v1/live/stats", &st)
	if st.Clients != n || st.Dropped != 1 {
		t.Fatalf("%d clients, %d dropped; want %d and the silent one dropped", st.Clients, st.Dropped, n)
	}
}

// TestDormantHubWakes: with no client the tick loop sleeps (no ticks),
// yet swipes that came meanwhile are in the first frame of a client that
// joins later, which wakes the loop; once the client leaves it sleeps
// again.
func TestDormantHubWakes(t *testing.T) {
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 50 * time.Millisecond}})
	h := s.Dash.Hub
	quiet := func(what string) {
		t.Helper()
		time.Sleep(150 * time.Millisecond) // the loop's last event before it sleeps
		before := h.ticks.Load()
		time.Sleep(500 * time.Millisecond) // ten ticks if it were awake
		if n := h.ticks.Load() - before; n != 0 {
			t.Fatalf("%s: %d ticks in 500 ms, want none (dormant)", what, n)
		}
	}
	quiet("no client, no deltas")

	r := rand.New(rand.NewPCG(3, 4))
	s.post(t, "swipes", swipes(r, 200, testBBox, "in"))
	quiet("deltas absorbed, no client")

	c := s.dial(t, nil)
	c.subscribe(t, testBBox, 9, "swipes_in")
	values := map[string]int64{}
	c.readUntil(t, values, 5*time.Second, func(m message) bool {
		want := s.density(t, "swipes_in", testBBox, 9)
		return len(want) > 0 && maps.Equal(values, want)
	})
	before := h.ticks.Load()
	time.Sleep(500 * time.Millisecond)
	if n := h.ticks.Load() - before; n < 3 {
		t.Fatalf("%d ticks in 500 ms with a client at a 50-ms tick, want about ten", n)
	}
	c.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Clients > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	quiet("the client gone")
}

// TestFirstFrameSoon: a viewer's first frame comes soon after it
// subscribes, not a whole tick later, both when it wakes a dormant hub
// and when it joins a hub already ticking; and subscribing in a loop
// cannot make the hub tick faster than twice its pace. With a 2-s tick
// the frame must come within 1 s (the early tick is at 0.2 s); before
// this, a dormant hub's first viewer waited the whole tick.
func TestFirstFrameSoon(t *testing.T) {
	const tick = 2 * time.Second
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: tick}})
	h := s.Dash.Hub
	r := rand.New(rand.NewPCG(5, 6))
	s.post(t, "swipes", swipes(r, 200, testBBox, "in"))
	deadline := time.Now().Add(5 * time.Second)
	for !h.dormant() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !h.dormant() {
		t.Fatal("the hub did not fall dormant with no client")
	}
	first := func(what string) *liveClient {
		t.Helper()
		c := s.dial(t, nil)
		start := time.Now()
		c.subscribe(t, testBBox, 9, "swipes_in")
		values := map[string]int64{}
		c.readUntil(t, values, tick/2, func(m message) bool { return len(values) > 0 })
		t.Logf("%s: first frame %v after subscribing", what, time.Since(start).Round(time.Millisecond))
		return c
	}
	first("waking a dormant hub")
	time.Sleep(tick + 100*time.Millisecond) // past the early tick's limit
	first("joining a ticking hub")

	// The attack: a client subscribing over and over for three ticks.
	// An early tick is allowed once a tick, and each puts the next
	// regular one a tick after it.
	c := s.dial(t, nil)
	before := h.ticks.Load()
	for end := time.Now().Add(3 * tick); time.Now().Before(end); {
		c.subscribe(t, testBBox, 9, "swipes_in")
		time.Sleep(20 * time.Millisecond)
	}
	n := h.ticks.Load() - before
	t.Logf("%d ticks in three tick intervals of resubscribing", n)
	if n > 7 {
		t.Fatalf("%d ticks in three tick intervals of resubscribing, want at most 7 (twice the pace, and one)", n)
	}
}
