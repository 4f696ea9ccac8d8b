package city

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Feeder posts a City's registries and events to a flowd server.
// Set the fields, then call PutRegistries and Run; do not copy a Feeder
// once used.
type Feeder struct {
	URL       string // server base URL, e.g. http://127.0.0.1:8080
	Token     string // bearer token, if the server wants one
	BatchSize int    // events per request; default 5000
	Senders   int    // requests in flight; default 4
	// Speedup is simulated minutes per real minute; 0 posts as fast as
	// the server takes it.
	Speedup float64
	// Live follows the wall clock instead of [from, to): every Tick it
	// posts the part of the current minute since the last tick.
	Live bool
	Tick time.Duration // live: default 1 s
	// Kinds are the kinds of event posted; nil posts them all.
	Kinds []Kind
	Gzip  bool // gzip request bodies
	// MaxRetries bounds the retries of one request on 429, 503 and
	// network errors; default 8. The wait starts at Backoff (default
	// 100 ms) and doubles up to 10 s, or is the server's Retry-After.
	MaxRetries int
	Backoff    time.Duration
	Client     *http.Client // default: a client keeping Senders connections open

	once     sync.Once
	client   *http.Client
	rejected atomic.Int64
	lastWhy  atomic.Pointer[string]
}

// Rejected is how many events servers have answered as rejected so far.
func (f *Feeder) Rejected() int64 { return f.rejected.Load() }

// LastRejection is the first line error of the last answer that rejected
// lines, "" before any.
func (f *Feeder) LastRejection() string {
	if p := f.lastWhy.Load(); p != nil {
		return *p
	}
	return ""
}

// ingestAnswer is what the feeder reads of an ingest answer.
type ingestAnswer struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Line   int    `json:"line"`
		Field  string `json:"field"`
		Value  string `json:"value"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	RejectedTotal int    `json:"rejected_total"`
	Error         string `json:"error"`
}

// noteRejected counts the lines an ingest answer rejected; it reports
// whether the answer was one, so that a 400 rejecting every line of a
// batch (a registry replaced under a running feed) is not taken for a
// failure of the feed.
func (f *Feeder) noteRejected(data []byte) bool {
	var a ingestAnswer
	if json.Unmarshal(data, &a) != nil || a.Rejected == nil || a.Error != "" {
		return false
	}
	n := max(a.RejectedTotal, len(a.Rejected))
	f.rejected.Add(int64(n))
	if n > 0 {
		e := a.Rejected[0]
		why := fmt.Sprintf("line %d: field %q: value %q: %s", e.Line, e.Field, e.Value, e.Reason)
		f.lastWhy.Store(&why)
	}
	return true
}

func (f *Feeder) init() {
	f.once.Do(func() {
		if f.BatchSize <= 0 {
			f.BatchSize = 5000
		}
		if f.Senders <= 0 {
			f.Senders = 4
		}
		if f.Tick <= 0 {
			f.Tick = time.Second
		}
		if f.MaxRetries <= 0 {
			f.MaxRetries = 8
		}
		if f.Backoff <= 0 {
			f.Backoff = 100 * time.Millisecond
		}
		f.client = f.Client
		if f.client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = f.Senders * 2
			f.client = &http.Client{Transport: tr}
		}
	})
}

// PutRegistries uploads the station and sensor CSVs and the sites GeoJSON.
func (f *Feeder) PutRegistries(ctx context.Context, c *City) error {
	f.init()
	for _, r := range []struct {
		path, ctype string
		body        []byte
	}{
		{"/api/v1/stations", "text/csv", c.StationsCSV()},
		{"/api/v1/sensors", "text/csv", c.SensorsCSV()},
		{"/api/v1/sites", "application/geo+json", c.SitesGeoJSON()},
	} {
		if err := f.do(ctx, http.MethodPut, r.path, r.ctype, r.body, false); err != nil {
			return err
		}
	}
	return nil
}

// batch is one request's worth of NDJSON events of one kind.
type batch struct {
	kind Kind
	n    int
	body []byte
}

var batchPool = sync.Pool{New: func() any { return &batch{body: make([]byte, 0, 1<<20)} }}

// Run posts the events of the simulated minutes [from, to) (from zero: the
// city's Start) as NDJSON batches, one endpoint per kind, calling progress
// (serialised) with the running total of events the server acknowledged. In
// Live mode it ignores from, posts the wall clock's present until to (zero:
// forever) and returns nil when ctx ends. It returns the first request that
// failed for good, or ctx's error when a non-live run is cut short.
func (f *Feeder) Run(ctx context.Context, c *City, from, to time.Time, progress func(sent int64)) error {
	f.init()
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make(chan *batch, f.Senders*2)
	var wg sync.WaitGroup
	acked := &acks{progress: progress}
	for range f.Senders {
		wg.Go(func() { f.send(ctx, cancel, out, acked) })
	}
	b := &batcher{ctx: ctx, size: f.BatchSize, out: out}
	if f.Live {
		f.live(ctx, c, to, b.add, b.flush)
	} else {
		f.replay(ctx, c, from, to, b.add, b.flush)
	}
	close(out)
	wg.Wait()
	if f.Client == nil {
		f.client.CloseIdleConnections()
	}
	err := context.Cause(ctx)
	if f.Live && parent.Err() != nil && errors.Is(err, parent.Err()) {
		return nil
	}
	return err
}

// acks counts the events servers acknowledged and reports the running
// total to progress, one call at a time.
type acks struct {
	sent     atomic.Int64
	mu       sync.Mutex
	progress func(sent int64)
}

func (a *acks) add(n int) {
	total := a.sent.Add(int64(n))
	if a.progress != nil {
		a.mu.Lock()
		a.progress(total)
		a.mu.Unlock()
	}
}

// send posts the batches of out until it is closed; the first request
// that fails for good cancels ctx, and the batches after it are dropped.
func (f *Feeder) send(ctx context.Context, cancel context.CancelCauseFunc, out <-chan *batch, acks *acks) {
	var zbuf bytes.Buffer
	var zw *gzip.Writer
	for b := range out {
		if ctx.Err() != nil {
			batchPool.Put(b)
			continue
		}
		body, enc := b.body, false
		if f.Gzip {
			zbuf.Reset()
			if zw == nil {
				zw, _ = gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
			} else {
				zw.Reset(&zbuf)
			}
			zw.Write(b.body)
			zw.Close()
			body, enc = zbuf.Bytes(), true
		}
		if err := f.do(ctx, http.MethodPost, b.kind.Path(), "application/x-ndjson", body, enc); err != nil {
			cancel(err)
		} else {
			acks.add(b.n)
		}
		batchPool.Put(b)
	}
}

// batcher gathers events into one open batch per kind and ships a batch
// to the senders when it is full or flushed.
type batcher struct {
	ctx  context.Context
	size int
	out  chan<- *batch
	open [KindFootfall + 1]*batch
}

func (bt *batcher) add(e *Event) {
	b := bt.open[e.Kind]
	if b == nil {
		b = batchPool.Get().(*batch)
		b.kind, b.n, b.body = e.Kind, 0, b.body[:0]
		bt.open[e.Kind] = b
	}
	b.body = AppendNDJSON(b.body, e)
	if b.n++; b.n >= bt.size {
		bt.ship(e.Kind)
	}
}

func (bt *batcher) flush() {
	for _, k := range Kinds {
		bt.ship(k)
	}
}

func (bt *batcher) ship(k Kind) {
	b := bt.open[k]
	bt.open[k] = nil
	if b == nil || b.n == 0 {
		if b != nil {
			batchPool.Put(b)
		}
		return
	}
	select {
	case bt.out <- b:
	case <-bt.ctx.Done():
		batchPool.Put(b)
	}
}

// replay generates [from, to) minute by minute, pacing by Speedup.
func (f *Feeder) replay(ctx context.Context, c *City, from, to time.Time, add func(*Event), flush func()) {
	if from.IsZero() {
		from = c.cfg.Start
	}
	from = from.Truncate(time.Minute)
	began := time.Now()
	for i, t := 0, from; t.Before(to); i, t = i+1, t.Add(time.Minute) {
		if f.Speedup > 0 {
			due := began.Add(time.Duration(float64(i) * float64(time.Minute) / f.Speedup))
			if !sleep(ctx, time.Until(due)) {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		c.MinuteSpanKinds(t, 0, 60, f.Kinds, add)
		if f.Speedup > 0 {
			flush()
		}
	}
	flush()
}

// live posts the wall clock's present every Tick: each tick the seconds
// since the previous one, as MinuteSpan parts of the minutes they fall in.
func (f *Feeder) live(ctx context.Context, c *City, to time.Time, add func(*Event), flush func()) {
	cursor := time.Now().Truncate(time.Second)
	tick := time.NewTicker(f.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now().Truncate(time.Second)
		if !to.IsZero() && now.After(to) {
			now = to
		}
		for s := cursor; s.Before(now); {
			m := s.Truncate(time.Minute)
			end := m.Add(time.Minute)
			if now.Before(end) {
				end = now
			}
			c.MinuteSpanKinds(m, int(s.Sub(m)/time.Second), int(end.Sub(m)/time.Second), f.Kinds, add)
			s = end
		}
		cursor = now
		flush()
		if !to.IsZero() && !now.Before(to) {
			return
		}
	}
}

// sleep waits d or until ctx ends, reporting whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// do sends one request, retrying 429, 503 and network errors with backoff.
func (f *Feeder) do(ctx context.Context, method, path, ctype string, body []byte, gzipped bool) error {
	url := strings.TrimSuffix(f.URL, "/") + path
	backoff := f.Backoff
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
		req.Header.Set("Content-Type", ctype)
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		if f.Token != "" {
			req.Header.Set("Authorization", "Bearer "+f.Token)
		}
		var wait time.Duration
		resp, err := f.client.Do(req)
		if err == nil {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2:
				f.noteRejected(data)
				return nil
			case resp.StatusCode == http.StatusBadRequest && f.noteRejected(data):
				// Every line was rejected, and each is counted: the
				// feed goes on with the next batch.
				return nil
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
				if s, e := strconv.Atoi(resp.Header.Get("Retry-After")); e == nil {
					wait = time.Duration(s) * time.Second
				}
				err = fmt.Errorf("%s %s: %s", method, url, resp.Status)
			default:
				return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(data[:min(len(data), 512)]))
			}
		} else if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if attempt >= f.MaxRetries {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt+1)
		}
		// Up to 25 % jitter keeps senders that failed together from retrying together.
		wait = max(wait, backoff+time.Duration(rand.Int64N(int64(backoff)/4+1)))
		if !sleep(ctx, wait) {
			return context.Cause(ctx)
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
