package dashboard

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/gorilla/websocket"
	"github.com/uber/h3-go/v4"
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
	MaxClients   int           // WebSocket clients at once [1000]
	SendBuffer   int           // frames queued per client [8]
	MaxSkips     int           // consecutive skipped frames before a client is dropped [10]
	WriteTimeout time.Duration // one frame's write deadline [10s]
	PingInterval time.Duration // keepalive pings; a client silent for two is dropped [20s]
	Now          func() time.Time
	Logf         func(format string, args ...any)
}

func (o *HubOptions) setDefaults() {
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 1000
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = 8
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Hub is the live view: it keeps a sliding window of per-cell sums from
// every durable batch and, once a tick, sends each WebSocket client the
// cells of its subscription that changed. It is an ingest.DeltaObserver
// whose ObserveDeltas only appends to a buffer, so ingest never waits on
// the view or its clients.
type Hub struct {
	opts  HubOptions
	store *storage.Store
	res   int

	inMu    sync.Mutex
	pending []storage.Delta
	spare   []storage.Delta
	lost    int64

	win *window // owned by the tick loop

	mu      sync.Mutex
	clients map[*client]struct{}
	shapes  map[shapeKey]*shape
	stats   HubStats

	stop chan struct{}
	done chan struct{}
}

// HubStats counts the hub's clients and what happened to them.
type HubStats struct {
	Clients      int   `json:"clients"`
	Shapes       int   `json:"subscriptions"`
	Frames       int64 `json:"frames_sent"`
	Skipped      int64 `json:"frames_skipped"`
	Dropped      int64 `json:"clients_dropped"`
	Refused      int64 `json:"clients_refused"`
	LostDeltas   int64 `json:"deltas_lost"`
	WindowCells  int   `json:"window_cells"`
	WindowMinute int64 `json:"window_minute"`
}

// NewHub returns a hub whose window is seeded from the store's last
// minutes, so a restart does not blank the map. Start its loop with Run.
func NewHub(st *storage.Store, baseRes int, opts HubOptions) (*Hub, error) {
	opts.setDefaults()
	if opts.Window%time.Minute != 0 {
		return nil, fmt.Errorf("live window %v: want a whole number of minutes", opts.Window)
	}
	h := &Hub{
		opts:    opts,
		store:   st,
		res:     baseRes,
		clients: map[*client]struct{}{},
		shapes:  map[shapeKey]*shape{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
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
	h.inMu.Lock()
	defer h.inMu.Unlock()
	for _, d := range deltas {
		if d.Minute <= lo || d.Minute > hi || d.Value == 0 {
			continue
		}
		if len(h.pending) >= maxPendingDeltas {
			h.lost++
			continue
		}
		h.pending = append(h.pending, d)
	}
}

// Run ticks until Close: it moves the window with the clock, applies the
// queued deltas and sends each client its frame.
func (h *Hub) Run() {
	defer close(h.done)
	t := time.NewTicker(h.opts.Tick)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.tick()
		}
	}
}

// Close stops the tick loop and disconnects every client.
func (h *Hub) Close() {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	for c := range h.clients {
		h.dropLocked(c, "server shutting down", false)
	}
	h.mu.Unlock()
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.inMu.Lock()
	lost := h.lost
	h.inMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.Clients, s.Shapes, s.LostDeltas = len(h.clients), len(h.shapes), lost
	return s
}

// tick is one beat of the live view.
func (h *Hub) tick() {
	h.inMu.Lock()
	batch := h.pending
	h.pending = h.spare[:0]
	h.inMu.Unlock()

	h.win.advance(h.nowMinute())
	for _, d := range batch {
		h.win.add(d)
	}
	clear(batch)
	h.inMu.Lock()
	h.spare = batch[:0]
	h.inMu.Unlock()

	t := h.opts.Now().Unix()
	h.mu.Lock()
	defer h.mu.Unlock()
	cells := 0
	for _, tot := range h.win.totals {
		cells += len(tot)
	}
	h.stats.WindowCells, h.stats.WindowMinute = cells, h.win.now
	for _, s := range h.shapes {
		s.update(h, t)
	}
	for c := range h.clients {
		s := c.shape
		if s == nil {
			continue
		}
		msg := s.diffMsg
		if c.needsFull {
			msg = s.fullFrame(t)
		}
		if msg == nil {
			continue
		}
		if h.enqueueLocked(c, msg) {
			c.needsFull = false
		}
	}
}

// enqueueLocked hands msg to c's writer without waiting. A full queue
// skips the frame and makes the client's next frame a full snapshot; too
// many skips in a row drop the client. It reports whether msg was queued.
func (h *Hub) enqueueLocked(c *client, msg *websocket.PreparedMessage) bool {
	if c.closed {
		return false
	}
	select {
	case c.send <- msg:
		c.skips = 0
		h.stats.Frames++
		return true
	default:
		h.stats.Skipped++
		c.skips++
		c.needsFull = true
		if c.skips > h.opts.MaxSkips {
			h.dropLocked(c, fmt.Sprintf("skipped %d frames in a row", c.skips), true)
		}
		return false
	}
}

// Broadcast sends msg to every client at once (site level changes).
func (h *Hub) Broadcast(msg []byte) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		panic("BUG: prepare a text message: " + err.Error())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		h.enqueueLocked(c, pm)
	}
}

// private reports whether a metric links one card's taps (trips by
// destination, sketch registers), which the live feed never carries.
func private(metric string) bool {
	return privacy.OffLive(metric)
}

// subscribe points c at the shape of sub, creating the shape if new; its
// next frame, at the next tick, is a full snapshot.
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
	if private(sub.Metric) {
		// Distinct people and OD pairs are shown only through the query
		// endpoints, which suppress small counts.
		return fmt.Errorf("metric %q is not on the live feed: ask /api/v1/distinct or /api/v1/od", sub.Metric)
	}
	key := shapeKey{metric: sub.Metric, res: sub.Res, bbox: b}
	h.mu.Lock()
	s := h.shapes[key]
	h.mu.Unlock()
	if s == nil {
		// Covering a bbox costs up to a few hundred ms at fine resolutions:
		// done outside the lock so ticks go on meanwhile.
		cells, err := b.Cells(sub.Res, maxSubscriptionCells)
		if err != nil {
			return err
		}
		s = newShape(key, cells)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.closed {
		return nil
	}
	if existing := h.shapes[key]; existing != nil {
		s = existing
	} else {
		h.shapes[key] = s
	}
	h.leaveShapeLocked(c)
	c.shape = s
	s.clients++
	c.needsFull = true
	return nil
}

func (h *Hub) leaveShapeLocked(c *client) {
	if c.shape == nil {
		return
	}
	c.shape.clients--
	if c.shape.clients == 0 {
		delete(h.shapes, c.shape.key)
	}
	c.shape = nil
}

// shapeKey is a distinct subscription: clients sharing one share frames.
type shapeKey struct {
	metric string
	res    int
	bbox   geo.BBox
}

// shape is the state of one distinct subscription: the cells its bbox
// covers, the values its last frame described, and this tick's frames,
// each encoded once for all its clients.
type shape struct {
	key     shapeKey
	cells   map[h3.Cell]struct{}
	metric  uint32
	known   bool // metric resolved to an id
	values  map[h3.Cell]int64
	clients int

	diffMsg *websocket.PreparedMessage // changes since the previous tick, nil when none
	fullMsg *websocket.PreparedMessage // this tick's snapshot, made on demand
}

func newShape(key shapeKey, cells []h3.Cell) *shape {
	s := &shape{key: key, cells: make(map[h3.Cell]struct{}, len(cells)), values: map[h3.Cell]int64{}}
	for _, c := range cells {
		s.cells[c] = struct{}{}
	}
	return s
}

// update recomputes the shape's values from the window and encodes the
// diff frame against the previous values.
func (s *shape) update(h *Hub, t int64) {
	s.diffMsg, s.fullMsg = nil, nil
	if !s.known {
		s.metric, s.known = h.store.LookupMetric(s.key.metric)
	}
	cur := make(map[h3.Cell]int64, len(s.values))
	if s.known {
		for base, v := range h.win.totals[s.metric] {
			c := h3.Cell(base)
			if s.key.res < h.res {
				c = c.Parent(s.key.res)
			}
			if _, ok := s.cells[c]; ok {
				cur[c] += v
			}
		}
		for c, v := range cur {
			if v == 0 {
				delete(cur, c)
			}
		}
	}
	var set []h3.Cell
	var del []h3.Cell
	for c, v := range cur {
		if old, ok := s.values[c]; !ok || old != v {
			set = append(set, c)
		}
	}
	for c := range s.values {
		if _, ok := cur[c]; !ok {
			del = append(del, c)
		}
	}
	s.values = cur
	if len(set)+len(del) > 0 {
		s.diffMsg = s.encode(t, false, set, del)
	}
}

// fullFrame returns this tick's snapshot frame, encoding it once.
func (s *shape) fullFrame(t int64) *websocket.PreparedMessage {
	if s.fullMsg == nil {
		all := make([]h3.Cell, 0, len(s.values))
		for c := range s.values {
			all = append(all, c)
		}
		s.fullMsg = s.encode(t, true, all, nil)
	}
	return s.fullMsg
}

// encode writes a cells frame (see docs/live-protocol.md).
func (s *shape) encode(t int64, full bool, set, del []h3.Cell) *websocket.PreparedMessage {
	slices.Sort(set)
	slices.Sort(del)
	buf := make([]byte, 0, 64+len(set)*28+len(del)*18)
	buf = append(buf, `{"type":"cells","t":`...)
	buf = strconv.AppendInt(buf, t, 10)
	buf = append(buf, `,"res":`...)
	buf = strconv.AppendInt(buf, int64(s.key.res), 10)
	buf = append(buf, `,"metric":`...)
	name, err := json.Marshal(s.key.metric)
	if err != nil {
		panic("BUG: marshal a metric name: " + err.Error())
	}
	buf = append(buf, name...)
	if full {
		buf = append(buf, `,"full":true`...)
	}
	buf = append(buf, `,"set":[`...)
	for i, c := range set {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `["`...)
		buf = strconv.AppendUint(buf, uint64(c), 16)
		buf = append(buf, `",`...)
		buf = strconv.AppendInt(buf, s.values[c], 10)
		buf = append(buf, ']')
	}
	buf = append(buf, `],"del":[`...)
	for i, c := range del {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = strconv.AppendUint(buf, uint64(c), 16)
		buf = append(buf, '"')
	}
	buf = append(buf, "]}"...)
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, buf)
	if err != nil {
		panic("BUG: prepare a text message: " + err.Error())
	}
	return pm
}
