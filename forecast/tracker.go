package forecast

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/deltaq"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Occupancy names the level series of a site's occupancy, which the site
// tracker reads (package dashboard) rather than the store.
const Occupancy = "occupancy"

// Options configures a Tracker; zero fields take the defaults in brackets.
type Options struct {
	// CellMetrics are the metrics whose every cell is watched for
	// anomalies [count_person].
	CellMetrics []string
	// Margin is the score past which a series is flagged [4]; MinExcess
	// the least difference from its baseline, in people or vehicles over
	// the anomaly window (or of a reading), that is flagged [20].
	Margin, MinExcess float64
	// History is how much stored history the models learn from at start
	// [28 days]; a negative value learns from none.
	History time.Duration
	// Grace is how long after a minute ends its data is awaited before the
	// minute is fed to the models [5s].
	Grace time.Duration
	// Privacy is the layer card-derived series pass for callers below
	// admin: their models learn from released figures only. Nil: such
	// callers get no forecast of card-derived series.
	Privacy *privacy.Layer
	Now     func() time.Time
	Logf    func(format string, args ...any)
}

func (o *Options) setDefaults() {
	if o.CellMetrics == nil {
		o.CellMetrics = []string{vocab.CountPrefix + "person"}
	}
	if o.Margin <= 0 {
		o.Margin = 4
	}
	if o.MinExcess <= 0 {
		o.MinExcess = 20
	}
	if o.History == 0 {
		o.History = 28 * 24 * time.Hour
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// maxPendingDeltas bounds the deltas waiting for the next minute; past it
// they are dropped (and counted), the store keeps them.
const maxPendingDeltas = 1 << 20

// Tracker keeps a Model for every watched series: every station's taps in
// and out, every site's entries, exits and occupancy, and every cell of the
// CellMetrics. It is an ingest observer of recent minutes: ObserveDeltas
// only queues, and once a minute has ended (and Grace after) Advance feeds
// each series that minute's sum, once, then flags anomalies and calls the
// minute hooks (the site tracker's predictive warnings).
type Tracker struct {
	opts  Options
	store *storage.Store
	reg   *geo.Registry

	inMu    sync.Mutex
	pending deltaq.Queue
	lost    int64
	// watched says of each metric id the store knows whether it is
	// watched, so that ObserveDeltas queues no delta of an unwatched
	// metric; it is published again when a delta brings an id it lacks
	// (a metric stored since), under watchMu.
	watched atomic.Pointer[map[uint32]bool]
	watchMu sync.Mutex

	mu        sync.Mutex
	book      *book
	done      int64 // the last minute fed
	sources   []LevelSource
	hooks     []func(minute int64)
	anomalies []Anomaly
	late      int64

	stop chan struct{}
	exit chan struct{}
}

// LevelSource gives the tracker the readings of level series it cannot
// read from ingest's deltas: the site tracker's occupancy.
type LevelSource interface {
	// Levels returns each site's reading at the end of minute.
	Levels(minute int64) []Reading
	// LevelHistory calls fn with each site's reading at the end of each
	// minute of [from, to) that the store can rebuild, in time order per site.
	LevelHistory(from, to int64, fn func(Reading)) error
}

// Reading is one site's level at the end of a minute.
type Reading struct {
	Site   string
	Minute int64
	Value  float64
}

// NewTracker returns a tracker over the store and registry. Add level
// sources and hooks, then start it with Run, which first learns from the
// stored history.
func NewTracker(st *storage.Store, reg *geo.Registry, opts Options) *Tracker {
	opts.setDefaults()
	t := &Tracker{opts: opts, store: st, reg: reg, stop: make(chan struct{}), exit: make(chan struct{})}
	t.book = newBook(&t.opts)
	t.done = t.lastFinished()
	t.book.refreshNames(st)
	t.publishWatched()
	return t
}

// AddLevelSource adds a source of level series; call it before Run.
func (t *Tracker) AddLevelSource(s LevelSource) { t.sources = append(t.sources, s) }

// OnMinute adds a hook called after each minute is fed, without the
// tracker's lock held; call it before Run.
func (t *Tracker) OnMinute(f func(minute int64)) { t.hooks = append(t.hooks, f) }

// lastFinished is the last minute whose end is Grace past.
func (t *Tracker) lastFinished() int64 {
	return t.opts.Now().Add(-t.opts.Grace).Unix()/60 - 1
}

// ObservedMinutes is the span of minutes the tracker still takes: from the
// minute after the last one fed to a minute ahead of the clock (see
// ingest.RecentObserver).
func (t *Tracker) ObservedMinutes() (lo, hi int64) {
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	return done + 1, t.opts.Now().Unix()/60 + 1
}

// ObserveDeltas queues a durable batch's deltas of recent minutes of the
// watched metrics for the next Advance.
func (t *Tracker) ObserveDeltas(deltas []storage.Delta) {
	watched := t.watched.Load()
	t.inMu.Lock()
	defer t.inMu.Unlock()
	learnt := false
	for _, d := range deltas {
		if d.Value == 0 || d.Sub != 0 {
			continue
		}
		w, known := (*watched)[d.Metric]
		if !known && !learnt {
			// A metric stored since the map was made: learn it now, not
			// at the next Advance (a second of a city's deltas, queued
			// for nothing when the metric is not watched).
			t.inMu.Unlock()
			watched, learnt = t.publishWatched(), true
			t.inMu.Lock()
			w, known = (*watched)[d.Metric]
		}
		if known && !w {
			continue
		}
		if t.pending.Len() >= maxPendingDeltas {
			t.lost++
			continue
		}
		t.pending.Push(d)
	}
}

// Run learns from the stored history, then advances once a second until
// Close.
func (t *Tracker) Run() {
	defer close(t.exit)
	if err := t.Warm(); err != nil {
		t.opts.Logf("forecast: learning from the stored history: %v", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.Advance()
		}
	}
}

// Close stops Run.
func (t *Tracker) Close() {
	close(t.stop)
	<-t.exit
}

// maxCatchUp bounds the minutes one Advance feeds: after a longer pause
// (a suspended process) the models skip the gap rather than learn zeros.
const maxCatchUp = 30

// Advance feeds the models every minute that has ended since the last
// call, flags anomalies at the last of them and calls the minute hooks.
// Run calls it once a second; tests call it after moving their clock.
func (t *Tracker) Advance() {
	last := t.lastFinished()
	t.mu.Lock()
	// The queue is emptied every call, not only once a minute: a city's
	// cameras queue tens of thousands of deltas a second.
	// The registries too: a site or station loaded a moment ago is
	// watched (and answers /forecast) within a second, not the next minute.
	t.book.refresh(t.reg, t.store)
	t.absorbLocked()
	if last <= t.done {
		t.mu.Unlock()
		return
	}
	from := max(t.done+1, last-maxCatchUp+1)
	t.mu.Unlock()

	var levels []Reading
	for _, s := range t.sources {
		levels = append(levels, s.Levels(last)...)
	}

	t.mu.Lock()
	now := t.opts.Now()
	for m := from; m <= last; m++ {
		t.book.feed(m, levels, m == last, now)
	}
	t.done = last
	t.anomalies = t.book.anomalies(last, t.opts.Margin, t.opts.MinExcess)
	t.mu.Unlock()
	for _, h := range t.hooks {
		h(last)
	}
}

// publishWatched publishes to ObserveDeltas whether each metric the
// store knows is watched, and returns the map.
func (t *Tracker) publishWatched() *map[uint32]bool {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	names := t.store.Metrics()
	if w := t.watched.Load(); w != nil && len(*w) == len(names) {
		return w
	}
	watched := map[string]bool{}
	for _, n := range t.book.watchedNames() {
		watched[n] = true
	}
	ids := make(map[uint32]bool, len(names))
	for _, n := range names {
		if id, ok := t.store.LookupMetric(n); ok {
			ids[id] = watched[n]
		}
	}
	t.watched.Store(&ids)
	return &ids
}

// absorbLocked adds the queued deltas to their series' open minutes.
func (t *Tracker) absorbLocked() {
	t.publishWatched()
	t.inMu.Lock()
	batch := t.pending.Take()
	t.inMu.Unlock()
	for run := range batch.All() {
		for _, d := range run {
			if d.Minute <= t.done {
				t.late++
				continue
			}
			t.book.add(d)
		}
	}
	t.inMu.Lock()
	t.pending.Release(batch)
	t.inMu.Unlock()
}

// Stats counts what the tracker holds and what it could not use.
type Stats struct {
	Series      int     `json:"series"`
	Bytes       int     `json:"bytes"`
	LastMinute  int64   `json:"last_minute"`
	LateDeltas  int64   `json:"late_deltas"`
	LostDeltas  int64   `json:"lost_deltas"`
	Anomalies   int     `json:"anomalies"`
	WarmSeconds float64 `json:"warm_seconds"`
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.inMu.Lock()
	lost := t.lost
	t.inMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	n, bytes := t.book.size()
	return Stats{Series: n, Bytes: bytes, LastMinute: t.done, LateDeltas: t.late, LostDeltas: lost,
		Anomalies: len(t.anomalies), WarmSeconds: t.book.warmSeconds}
}
