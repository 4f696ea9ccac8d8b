package remote

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/flowd/flowd/storage"
)

// Config sets up the remote tier.
type Config struct {
	// URL is VictoriaMetrics: a single node (http://host:8428) or a
	// cluster's vminsert with its tenant (http://host:8480/insert/0).
	URL string
	// Node names this flowd in the series' node label.
	Node string
	// Lateness is how long after its end a minute is finished and shipped.
	Lateness time.Duration
	// Parents are the resolutions of the parent cells each series is
	// labelled with, besides its cell; those not coarser than the base
	// resolution are left out.
	Parents []int
	// Res is the base resolution.
	Res int
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (default 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
	Now                    func() time.Time
	Logf                   func(format string, args ...any)
	Client                 *http.Client
	// Backfill ships the buckets the store held before the outbox began
	// (see backfillState), when the store given to New is a History.
	Backfill bool
	// Failpoint, when set, is called at the moments a crash is most
	// dangerous (the failpoint constants); crash tests kill the process
	// there.
	Failpoint func(name string)
}

// Failpoints: the moments between two durable steps.
const (
	// FailpointShipped: VictoriaMetrics took a segment, which is still in
	// the outbox and is shipped again after a restart.
	FailpointShipped = "remote-shipped"
	// FailpointCut: a cut's segment is written, state.json does not say
	// its cut yet.
	FailpointCut = "remote-cut"
)

// ImportURL returns the endpoint of VictoriaMetrics' JSON line import under
// base: /api/v1/import on a single node, /insert/<tenant>/prometheus/api/v1/import
// on vminsert.
func ImportURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("-remote %q: want http(s)://host:port of VictoriaMetrics, or of vminsert followed by /insert/<tenant>", base)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if _, tenant, ok := strings.Cut(p+"/", "/insert/"); ok && !strings.HasSuffix(p, "/api/v1/import") {
		tenant = strings.TrimSuffix(tenant, "/")
		switch {
		case tenant != "" && !strings.Contains(tenant, "/"):
			p += "/prometheus"
		case !strings.HasSuffix(tenant, "/prometheus") || strings.Count(tenant, "/") != 1:
			return "", fmt.Errorf("-remote %q: a vminsert URL ends with /insert/<tenant>", base)
		}
	}
	if !strings.HasSuffix(p, "/api/v1/import") {
		p += "/api/v1/import"
	}
	u.Path = p
	return u.String(), nil
}

// healthURL returns the address whose answer says VictoriaMetrics is up:
// /health of the host importURL is on.
func healthURL(importURL string) string {
	u, _ := url.Parse(importURL)
	u.Path, u.RawQuery = "/health", ""
	return u.String()
}

// Tier ships finished buckets from its outbox to VictoriaMetrics.
type Tier struct {
	cfg    Config
	o      *Outbox
	cut    *cutter
	send   *sender
	set    *metrics.Set
	stop   chan struct{}
	cancel context.CancelFunc // ends the sender's request in flight
	wg     sync.WaitGroup
	errors struct {
		sync.Mutex
		last     string
		lastTime time.Time
	}
	shippedAt atomic.Int64 // unix seconds of the last segment taken
	store     Scanner
	backfill  atomic.Pointer[backfillState]
}

// New returns the remote tier over outbox o, reading late buckets from
// store. Start starts it.
func New(cfg Config, o *Outbox, store Scanner) (*Tier, error) {
	imp, err := ImportURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	if cfg.Failpoint == nil {
		cfg.Failpoint = func(string) {}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: time.Minute}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Lateness < 0 {
		return nil, fmt.Errorf("-remote-lateness %v: want a duration of at least 0", cfg.Lateness)
	}
	var parents []int
	for _, r := range cfg.Parents {
		if r >= 0 && r < cfg.Res && !slices.Contains(parents, r) {
			parents = append(parents, r)
		}
	}
	slices.Sort(parents)
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tier{cfg: cfg, o: o, set: metrics.NewSet(), stop: make(chan struct{}), cancel: cancel, store: store}
	cutSamples := t.set.NewCounter("flowd_remote_cut_samples_total")
	shippedSegments := t.set.NewCounter("flowd_remote_shipped_segments_total")
	shippedBytes := t.set.NewCounter("flowd_remote_shipped_bytes_total")
	shipErrors := t.set.NewCounter("flowd_remote_ship_errors_total")
	t.cut = &cutter{
		o: o, store: store, lab: &labeler{node: cfg.Node, parents: parents},
		lateness: int64((cfg.Lateness + time.Minute - 1) / time.Minute), now: cfg.Now, logf: cfg.Logf,
		journals:  map[string]*journal{},
		cuts:      func(n int) { cutSamples.Add(n) },
		failpoint: cfg.Failpoint,
	}
	t.send = &sender{
		ctx: ctx, o: o, url: imp, health: healthURL(imp), client: cfg.Client, logf: cfg.Logf,
		minBackoff: cfg.MinBackoff, maxBackoff: cfg.MaxBackoff, failpoint: cfg.Failpoint,
		shipped: func(n int) {
			shippedSegments.Inc()
			shippedBytes.Add(n)
			t.shippedAt.Store(cfg.Now().Unix())
		},
		failed: func(err error) {
			shipErrors.Inc()
			t.noteError(err)
		},
	}
	t.set.NewGauge("flowd_remote_lag_seconds", func() float64 { return t.Status().LagSeconds })
	t.set.NewGauge("flowd_remote_outbox_segments", func() float64 { return float64(t.Status().OutboxSegments) })
	t.set.NewGauge(`flowd_remote_outbox_bytes{kind="segments"}`, func() float64 { return float64(t.Status().OutboxBytes) })
	t.set.NewGauge(`flowd_remote_outbox_bytes{kind="journals"}`, func() float64 { return float64(t.Status().JournalBytes) })
	return t, nil
}

// Start starts cutting finished minutes and shipping segments.
func (t *Tier) Start() {
	if h, ok := t.store.(History); ok && t.cfg.Backfill {
		st, err := t.loadBackfill(h)
		if err != nil {
			t.cfg.Logf("remote: backfill: %v", err)
			t.noteError(err)
		} else {
			t.backfill.Store(&st)
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				t.backfillLoop(h, st)
			}()
		}
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.send.run(t.stop)
	}()
	go func() {
		defer t.wg.Done()
		t.cutLoop()
	}()
}

// cutLoop cuts every few seconds, so that a minute is cut soon after it is
// finished and a late bucket shipped soon after its flush.
func (t *Tier) cutLoop() {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		if err := t.cut.step(); err != nil {
			t.cfg.Logf("remote: cutting finished buckets failed, will retry: %v", err)
			t.noteError(err)
		}
		select {
		case <-tick.C:
		case <-t.stop:
			return
		}
	}
}

func (t *Tier) noteError(err error) {
	t.errors.Lock()
	t.errors.last, t.errors.lastTime = err.Error(), t.cfg.Now()
	t.errors.Unlock()
}

// Close stops the tier; what is not shipped stays in the outbox.
func (t *Tier) Close() {
	close(t.stop)
	t.cancel()
	t.wg.Wait()
}

// First returns the first minute VictoriaMetrics holds this flowd's
// buckets from: where the outbox began (Outbox.First), or once the
// backfill is done, where it began.
func (t *Tier) First() int64 {
	if st := t.backfill.Load(); st != nil && st.Done {
		return min(t.o.First(), st.From[storage.TierMinute])
	}
	return t.o.First()
}

// Status is the remote tier's state for /readyz.
type Status struct {
	URL string `json:"url"`
	// Cut is the first minute not yet finished and cut.
	Cut time.Time `json:"cut"`
	// LagSeconds is how long ago the oldest bucket not yet in
	// VictoriaMetrics began: about the lateness horizon while all is well.
	LagSeconds float64 `json:"lag_s"`
	// Shipped is the first minute whose buckets may not all be in
	// VictoriaMetrics yet (Tier.Shipped).
	Shipped        time.Time `json:"shipped"`
	OutboxSegments int       `json:"outbox_segments"`
	// LateFiles counts the files of late buckets not yet cut.
	LateFiles     int       `json:"late_files"`
	OutboxBytes   int64     `json:"outbox_bytes"`
	JournalBytes  int64     `json:"journal_bytes"`
	LastShipped   time.Time `json:"last_shipped,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// Backfill is the progress of shipping what the store held before
	// the outbox began.
	Backfill *BackfillStatus `json:"backfill,omitempty"`
}

// Shipped returns the first minute whose buckets may not all be in
// VictoriaMetrics yet: the cut, or the oldest bucket of a segment still
// waiting (a late one's), or the first the backfill has not shipped
// yet, if older.
func (t *Tier) Shipped() int64 {
	oldest := t.o.Cut()
	if b, ok := t.backfillShipped(); ok {
		oldest = min(oldest, b)
	}
	for _, s := range t.o.segments() {
		oldest = min(oldest, s.from)
	}
	for _, l := range t.o.lateFiles() {
		oldest = min(oldest, l.from)
	}
	return oldest
}

// Status returns the tier's state.
func (t *Tier) Status() Status {
	st := Status{URL: t.send.url}
	st.Cut = time.Unix(t.o.Cut()*60, 0).UTC()
	oldest := t.Shipped()
	st.Shipped = time.Unix(oldest*60, 0).UTC()
	st.LagSeconds = max(0, t.cfg.Now().Sub(time.Unix(oldest*60, 0)).Seconds())
	st.OutboxSegments, st.OutboxBytes, st.JournalBytes = t.o.Size()
	st.LateFiles = len(t.o.lateFiles())
	if s := t.shippedAt.Load(); s != 0 {
		st.LastShipped = time.Unix(s, 0).UTC()
	}
	t.errors.Lock()
	st.LastError, st.LastErrorTime = t.errors.last, t.errors.lastTime
	t.errors.Unlock()
	st.Backfill = t.backfillStatus()
	return st
}

// WriteMetrics writes the tier's figures for /metrics.
func (t *Tier) WriteMetrics(w io.Writer) { t.set.WritePrometheus(w) }
