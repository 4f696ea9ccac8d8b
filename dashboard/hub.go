package dashboard

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/deltaq"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// maxSubscriptionCells bounds the cells one subscription's bbox may cover
// at its resolution; the page asks for a coarser resolution when zoomed out.
const maxSubscriptionCells = 200000

// maxPendingDeltas bounds the deltas waiting for the next tick. Past it the
// live view drops deltas (and counts them) rather than grow without end
// while the tick loop is stalled; the store has them all.
const maxPendingDeltas = 1 << 22

// HubOptions configures a Hub; zero fields take the defaults in brackets.
type HubOptions struct {
	Window       time.Duration // sliding window of the live density [5m]
	Tick         time.Duration // how often clients get frames [1s]
	MaxClients   int           // WebSocket clients at once [10000]
	MaxSkips     int           // consecutive skipped frames before a client is dropped [10]
	WriteTimeout time.Duration // one write to a client whose socket is full [10s]
	PingInterval time.Duration // keepalive pings; a client silent for two is dropped [20s]
	Writers      int           // goroutines writing frames to clients [16 × GOMAXPROCS]
	// DeflateShared is how many clients of a subscription must have
	// agreed to permessage-deflate for its frames to go to them
	// compressed [4]: compressing a frame costs about what writing it to
	// one client does (BenchmarkDeflateFrame: 14 µs for 5 KB), so a frame
	// few share goes as it is. Negative: never compressed.
	DeflateShared int
	Now           func() time.Time
	Logf          func(format string, args ...any)
}

func (o *HubOptions) setDefaults() {
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 10000
	}
	if o.MaxSkips <= 0 {
		o.MaxSkips = 10
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 20 * time.Second
	}
	if o.Writers <= 0 {
		// The runtime shares the Ps among runnable goroutines in turn, so
		// during a tick's burst of writes the writers' share against
		// ingest's decoders grows with their number: at 10,000 clients
		// sixteen a core took the p99 after the first client from 350 to
		// 242 ms (flowd-bench, medians of 8 runs each, BENCH.md). An idle
		// writer is a parked goroutine and its small stack.
		o.Writers = 16 * runtime.GOMAXPROCS(0)
	}
	if o.DeflateShared == 0 {
		o.DeflateShared = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Hub is the live view: it keeps a sliding window of per-cell sums from
// every durable batch and, once a tick, gives each WebSocket client the
// cells of its subscription that changed. It is an ingest.DeltaObserver
// whose ObserveDeltas only appends to a buffer, and the site tracker's
// Broadcast only appends to another, so neither ingest nor the sites ever
// wait for the tick or for a client.
type Hub struct {
	opts  HubOptions
	store *storage.Store
	res   int

	inMu    sync.Mutex
	pending deltaq.Queue
	lost    int64

	win *window // owned by the tick loop

	outMu    sync.Mutex
	outbound [][]byte      // site frames for every client
	outReady chan struct{} // signals outbound
	// wake signals a dormant tick loop (see Run) that deltas were queued
	// or a client joined.
	wake chan struct{}
	// subscribed signals the loop that a client subscribed, for a tick
	// soon (see Run).
	subscribed chan struct{}

	mu        sync.Mutex
	clients   map[*client]struct{}
	deflating int // clients that agreed to permessage-deflate
	shapes    map[shapeKey]*shape
	covering  map[shapeKey]*coverage
	closing   bool
	winCells  int
	winNow    int64

	poller  *poller // nil where there is no epoll
	ready   *readyQueue
	writers sync.WaitGroup // the writers and the poller
	batch   []*client      // the tick loop's list of clients made ready
	// The ping slice pinged next, and the slice the next client joins
	// (see ping); guarded by mu.
	pingPhase, nextSlice int

	open                                     atomic.Int64 // connections accepted and not yet removed
	frames, bytes, skipped, dropped, refused atomic.Int64
	yields                                   atomic.Int64 // ingest requests that waited for a burst (Yield)
	ticks                                    atomic.Int64 // ticks run (for tests of the dormant loop)

	stop chan struct{}
	done chan struct{}
}

// HubStats counts the hub's clients and what happened to them, with the
// process's Go heap and stacks to read the cost of the clients against.
type HubStats struct {
	Clients      int    `json:"clients"`
	Deflate      int    `json:"clients_deflate"` // that agreed to compressed messages
	Shapes       int    `json:"subscriptions"`
	Frames       int64  `json:"frames_sent"`
	Bytes        int64  `json:"bytes_sent"`
	Skipped      int64  `json:"frames_skipped"`
	Dropped      int64  `json:"clients_dropped"`
	Refused      int64  `json:"clients_refused"`
	Yields       int64  `json:"ingest_yields"` // ingest requests that waited for a burst of frames
	LostDeltas   int64  `json:"deltas_lost"`
	WindowCells  int    `json:"window_cells"`
	WindowMinute int64  `json:"window_minute"`
	HeapLive     uint64 `json:"go_heap_live_bytes"` // live heap at the last GC
	Stacks       uint64 `json:"go_stack_bytes"`
	Goroutines   uint64 `json:"goroutines"`
}

// NewHub returns a hub whose window is seeded from the store's last
// minutes, so a restart does not blank the map. Start its loop with Run.
func NewHub(st *storage.Store, baseRes int, opts HubOptions) (*Hub, error) {
	opts.setDefaults()
	if opts.Window%time.Minute != 0 {
		return nil, fmt.Errorf("live window %v: want a whole number of minutes", opts.Window)
	}
	h := &Hub{
		opts:       opts,
		store:      st,
		res:        baseRes,
		outReady:   make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		subscribed: make(chan struct{}, 1),
		clients:    map[*client]struct{}{},
		shapes:     map[shapeKey]*shape{},
		covering:   map[shapeKey]*coverage{},
		ready:      newReadyQueue(),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if p, err := newPoller(h); err == nil {
		h.poller = p
	} else {
		opts.Logf("live: every client gets a reading goroutine: %v", err)
	}
	now := h.nowMinute()
	h.win = newWindow(int64(opts.Window/time.Minute), now)
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	for _, name := range st.Metrics() {
		id, ok := st.LookupMetric(name)
		if !ok {
			continue
		}
		err := st.Scan(storage.TierMinute, name, all, now-h.win.width+1, now+maxAheadMinutes+1, func(cell uint64, minute, v int64) {
			h.win.add(storage.Delta{Key: storage.Key{Metric: id, Cell: cell, Minute: minute}, Value: v})
		})
		if err != nil {
			return nil, fmt.Errorf("live window from the store: %w", err)
		}
	}
	h.win.settle()
	return h, nil
}

func (h *Hub) nowMinute() int64 { return h.opts.Now().Unix() / 60 }

// ObservedMinutes is the span of minutes the window can take: ingest gives
// the hub the deltas of those minutes only (see ingest.RecentObserver).
func (h *Hub) ObservedMinutes() (lo, hi int64) {
	now := h.nowMinute()
	return now - h.win.width + 1, now + maxAheadMinutes // width never changes
}

// ObserveDeltas queues a durable batch for the next tick. Only the deltas
// the window can take are kept: a history import's old minutes would cost
// the tick loop their copy and their garbage for nothing.
func (h *Hub) ObserveDeltas(deltas []storage.Delta) {
	now := h.nowMinute()
	lo, hi := now-h.win.width, now+maxAheadMinutes // width never changes
	queued := false
	h.inMu.Lock()
	for _, d := range deltas {
		if d.Minute <= lo || d.Minute > hi || d.Value == 0 {
			continue
		}
		if h.pending.Len() >= maxPendingDeltas {
			h.lost++
			continue
		}
		h.pending.Push(d)
		queued = true
	}
	h.inMu.Unlock()
	if queued {
		h.rouse()
	}
}

// rouse wakes the tick loop if it is dormant.
func (h *Hub) rouse() { h.signal(h.wake) }

// signal sends on a channel of one signal, unless one is waiting.
func (h *Hub) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dormant reports whether the tick loop has nothing to do until deltas
// come or a client joins: no client to give frames to, none to ping and
// no deltas queued.
func (h *Hub) dormant() bool {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	h.inMu.Lock()
	p := h.pending.Len()
	h.inMu.Unlock()
	return n == 0 && p == 0
}

// Broadcast sends msg to every client at once (site level changes). It
// only queues msg for the hub's loop, which fans it out between ticks.
func (h *Hub) Broadcast(msg []byte) {
	frame := textFrame(msg)
	h.outMu.Lock()
	h.outbound = append(h.outbound, frame)
	h.outMu.Unlock()
	select {
	case h.outReady <- struct{}{}:
	default:
	}
}

// Run starts the writers and ticks until Close: it moves the window with
// the clock, applies the queued deltas, gives each client its frame, fans
// out broadcasts and pings the clients.
//
// With no client and no deltas queued the loop is dormant: its tickers
// stop, and it wakes for deltas, a client, a broadcast, or once a minute
// to move the window (whose buckets are minutes) and its stats with the
// clock. A server nobody watches and no live feed reaches (a history
// import, a quiet night) then costs no wakeups twenty times a second;
// on the virtual machines flowd was measured on, those cost about 4 ms of
// CPU a second.
func (h *Hub) Run() {
	defer close(h.done)
	for range h.opts.Writers {
		h.writers.Go(h.runWriter)
	}
	if h.poller != nil {
		h.writers.Go(h.poller.run)
	}
	tickEvery := h.opts.Tick
	absorbEvery := max(h.opts.Tick/10, 10*time.Millisecond)
	pingEvery := h.opts.PingInterval / time.Duration(h.pingSlices())
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	absorb := time.NewTicker(absorbEvery)
	defer absorb.Stop()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	// A client that subscribes gets its first frame at a tick soon after
	// (absorbEvery), not a whole tick later: a viewer of a dormant hub
	// would otherwise wait a full tick for the map, every time. At most
	// one such early tick a tick, so that subscriptions in a loop cannot
	// make the hub tick faster than twice its pace.
	soon := false
	var lastSoon time.Time
	tickSoon := func() {
		if soon || time.Since(lastSoon) < tickEvery {
			return
		}
		soon, lastSoon = true, time.Now()
		tick.Reset(absorbEvery)
	}
	for {
		if h.dormant() {
			tick.Stop()
			absorb.Stop()
			ping.Stop()
			wantSoon := false
			for asleep := true; asleep; {
				select {
				case <-h.stop:
					return
				case <-h.wake:
					asleep = false
				case <-h.subscribed:
					asleep, wantSoon = false, true
				case <-h.outReady:
					h.fanOut()
				case <-minute.C:
					h.tick()
				}
			}
			tick.Reset(tickEvery)
			absorb.Reset(absorbEvery)
			ping.Reset(pingEvery)
			if wantSoon {
				tickSoon()
			}
			continue
		}
		select {
		case <-h.stop:
			return
		case <-h.wake:
		case <-h.subscribed:
			tickSoon()
		case <-absorb.C:
			h.absorb()
		case <-tick.C:
			h.tick()
			if soon {
				soon = false
				tick.Reset(tickEvery)
			}
		case <-h.outReady:
			h.fanOut()
		case <-ping.C:
			h.ping()
		}
	}
}

// Close stops the tick loop, says goodbye to every client, gives the
// writers up to a second to send it, and closes what is left.
func (h *Hub) Close() {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	h.closing = true
	cs := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		h.hangUp(c, closeGoingAway, "server shutting down")
	}
	deadline := time.Now().Add(time.Second)
	for _, c := range cs {
		for time.Now().Before(deadline) && c.busy() {
			time.Sleep(5 * time.Millisecond)
		}
		c.conn.Close()
	}
	h.ready.close()
	if h.poller != nil {
		h.poller.close()
	}
	h.writers.Wait()
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.inMu.Lock()
	lost := h.lost
	h.inMu.Unlock()
	h.mu.Lock()
	s := HubStats{Clients: len(h.clients), Deflate: h.deflating, Shapes: len(h.shapes), WindowCells: h.winCells, WindowMinute: h.winNow}
	h.mu.Unlock()
	s.LostDeltas = lost
	s.Frames, s.Bytes, s.Skipped = h.frames.Load(), h.bytes.Load(), h.skipped.Load()
	s.Dropped, s.Refused = h.dropped.Load(), h.refused.Load()
	s.Yields = h.yields.Load()
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	metrics.Read(m)
	s.HeapLive, s.Stacks, s.Goroutines = m[0].Value.Uint64(), m[1].Value.Uint64(), m[2].Value.Uint64()
	return s
}

// absorb moves the queued deltas into the window. It runs ten times a
// tick, so that a tick under heavy ingest has only the last few to apply
// before its frames go out.
func (h *Hub) absorb() {
	h.inMu.Lock()
	batch := h.pending.Take()
	h.inMu.Unlock()

	h.win.advance(h.nowMinute())
	for run := range batch.All() {
		for i := range run {
			h.win.add(run[i])
		}
	}
	h.inMu.Lock()
	h.pending.Release(batch)
	h.inMu.Unlock()
}

// tick is one beat of the live view. It holds the hub's mutex, which only
// connecting, subscribing and leaving clients take, never ingest.
func (h *Hub) tick() {
	h.ticks.Add(1)
	h.absorb()
	t := h.opts.Now().Unix()
	h.mu.Lock()
	h.winCells, h.winNow = h.win.cells(), h.win.now
	for _, s := range h.shapes {
		s.update(h, t)
	}
	h.win.settle()
	ready := h.batch[:0]
	for c := range h.clients {
		ready = h.giveCellsLocked(c, ready)
	}
	h.mu.Unlock()
	h.ready.push(ready...)
	clear(ready)
	h.batch = ready[:0]
}

// giveCellsLocked puts this tick's frame for c in its outbox. A client
// whose previous frame is still unwritten skips it: it gets this tick's
// snapshot instead, the latest state rather than a queue, and too many
// skips in a row drop it.
func (h *Hub) giveCellsLocked(c *client, ready []*client) []*client {
	s := c.shape
	if s == nil {
		return ready
	}
	deflate := c.deflate && h.opts.DeflateShared > 0 && s.deflaters >= h.opts.DeflateShared
	frame := s.frame(c.needsFull, deflate)
	if frame == nil {
		return ready
	}
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.out.closing {
		return ready
	}
	if c.out.cells != nil {
		h.skipped.Add(1)
		if c.skips++; c.skips > h.opts.MaxSkips {
			h.dropLocked(c, fmt.Sprintf("skipped %d frames in a row", c.skips))
			return ready
		}
		frame = s.frame(true, deflate)
	} else {
		c.skips = 0
	}
	c.out.cells = frame
	c.needsFull = false
	return c.markReadyLocked(ready)
}

// fanOut queues the broadcast frames for every client.
func (h *Hub) fanOut() {
	h.outMu.Lock()
	frames := h.outbound
	h.outbound = nil
	h.outMu.Unlock()
	h.mu.Lock()
	ready := h.batch[:0]
	for c := range h.clients {
		ready = h.queueLocked(c, ready, frames...)
	}
	h.mu.Unlock()
	h.ready.push(ready...)
	clear(ready)
	h.batch = ready[:0]
}

// ping queues a keepalive ping for every client and drops those that have
// sent nothing, not even a pong, for two intervals.
//
// The clients are pinged a slice at a time (pingSlices), each slice once
// an interval: all 10,000 at once were a burst of 10,000 writes, which
// made the tick it met 30–50 ms later for its last viewers.
func (h *Hub) ping() {
	silent := time.Now().Add(-2 * h.opts.PingInterval).UnixMilli()
	h.mu.Lock()
	slice := h.pingPhase
	h.pingPhase = (h.pingPhase + 1) % h.pingSlices()
	ready := h.batch[:0]
	for c := range h.clients {
		if c.pingSlice != slice {
			continue
		}
		if c.heard.Load() < silent {
			h.dropLocked(c, fmt.Sprintf("silent for %v", 2*h.opts.PingInterval))
			continue
		}
		ready = h.queueLocked(c, ready, pingFrame)
	}
	h.mu.Unlock()
	h.ready.push(ready...)
	clear(ready)
	h.batch = ready[:0]
}

// pingSlices is how many slices the clients are pinged in, one slice
// each PingInterval/pingSlices: 20, or fewer so that a slice's turn comes
// at most every 50 ms.
func (h *Hub) pingSlices() int {
	return int(min(max(h.opts.PingInterval/(50*time.Millisecond), 1), 20))
}

// queueLocked queues frames for c behind the ones waiting; a client that
// lets too many wait is dropped. The caller holds h.mu.
func (h *Hub) queueLocked(c *client, ready []*client, frames ...[]byte) []*client {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.out.closing {
		return ready
	}
	if len(c.out.control)+len(frames) > maxControlQueued {
		h.dropLocked(c, "not reading: its queue of messages is full")
		return ready
	}
	c.out.control = append(c.out.control, frames...)
	return c.markReadyLocked(ready)
}

// subscribe points c at the shape of sub, creating the shape if new; its
// next frame, at a tick soon after (see Run), is a full snapshot.
func (h *Hub) subscribe(c *client, sub subscription) error {
	b, err := geo.ParseBBox(fmt.Sprintf("%g,%g,%g,%g", sub.BBox[0], sub.BBox[1], sub.BBox[2], sub.BBox[3]))
	if err != nil {
		return err
	}
	if sub.Res < 0 || sub.Res > h.res {
		return fmt.Errorf("res %d: want 0 to the base resolution %d", sub.Res, h.res)
	}
	if sub.Metric == "" {
		return fmt.Errorf("metric is required")
	}
	if privacy.OffLive(sub.Metric, c.exact) {
		// Card-derived figures reach other callers only through the query
		// endpoints and the privacy layer.
		if vocab.PrivacyOf(sub.Metric) == vocab.People {
			return fmt.Errorf("metric %q counts people: on the live feed for admin tokens only; ask /api/v1/density or /api/v1/series, which release it through the privacy layer", sub.Metric)
		}
		return fmt.Errorf("metric %q is not on the live feed: ask /api/v1/distinct or /api/v1/od", sub.Metric)
	}
	key := shapeKey{metric: sub.Metric, res: sub.Res, bbox: b}
	cells, err := h.cellsOf(key)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.closed {
		return nil
	}
	s := h.shapes[key]
	if s == nil {
		s = newShape(key, cells)
		h.shapes[key] = s
	}
	h.leaveShapeLocked(c)
	c.shape = s
	s.clients++
	if c.deflate {
		s.deflaters++
	}
	c.needsFull = true
	// A frame of the previous subscription that is not written yet is
	// dropped; the snapshot replaces it.
	c.out.mu.Lock()
	c.out.cells = nil
	c.out.mu.Unlock()
	h.signal(h.subscribed)
	return nil
}

func (h *Hub) leaveShapeLocked(c *client) {
	if c.shape == nil {
		return
	}
	c.shape.clients--
	if c.deflate {
		c.shape.deflaters--
	}
	if c.shape.clients == 0 {
		delete(h.shapes, c.shape.key)
	}
	c.shape = nil
}
