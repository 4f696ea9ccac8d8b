package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// History is what the backfill reads of the local store
// (storage.Store): the span its parts hold, its metrics and their
// buckets.
type History interface {
	Scanner
	Span(t storage.Tier) (first, last int64, ok bool)
	Metrics() []string
}

// backfillFile holds the backfill's progress in the outbox.
const backfillFile = "backfill.json"

// backfillState is backfill.json. The backfill ships, from the store,
// every bucket before Until: the buckets the store held before the
// outbox began, which no journal holds. Those before Tail (the hour the
// outbox began in) are final from the start; those from Tail on, the
// minutes and the hour around the outbox's first cut, where the store's
// old rows and the journals' new ones meet, are shipped once the cut has
// passed Until, with the store's totals, which VictoriaMetrics'
// deduplication keeps over the journals' smaller sums.
type backfillState struct {
	Until int64 `json:"until"`
	Tail  int64 `json:"tail"`
	// From and Next are, by tier, the first minute it began at and the
	// first not shipped yet.
	From [2]int64 `json:"from"`
	Next [2]int64 `json:"next"`
	Done bool     `json:"done"`
}

// BackfillStatus is the backfill's progress, in /readyz.
type BackfillStatus struct {
	From    time.Time `json:"from"`
	Until   time.Time `json:"until"`
	Shipped time.Time `json:"shipped_until"` // the minute tier's progress
	Hours   time.Time `json:"hours_shipped_until"`
	Done    bool      `json:"done"`
}

// backfillChunk is how many minutes of a tier one backfill segment
// holds: an hour of minutes, six of hours.
func backfillChunk(t storage.Tier) int64 {
	if t == storage.TierHour {
		return 6 * 60
	}
	return 60
}

// maxSkew bounds how far past the clock a bucket of the store may lie
// (ingest's -max-clock-skew, 5 minutes by default; an hour is ample).
const maxSkew = 60

// loadBackfill reads backfill.json, or begins a backfill of what store
// holds: nothing to do (Done) when it holds no part.
func (t *Tier) loadBackfill(store History) (backfillState, error) {
	path := filepath.Join(t.o.dir, backfillFile)
	var st backfillState
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
		return st, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return st, err
	}
	h := storage.TierHour
	first := t.o.First()
	st.Tail = h.Truncate(first)
	st.Until = h.Truncate(first+int64(t.cfg.Lateness/time.Minute)+maxSkew) + 60
	var oldest [2]int64
	var some [2]bool
	tail := false
	for _, tier := range []storage.Tier{storage.TierMinute, storage.TierHour} {
		var last int64
		oldest[tier], last, some[tier] = store.Span(tier)
		tail = tail || some[tier] && last >= st.Tail
	}
	if !tail {
		// The store holds nothing of the hour the outbox began in: no
		// tail to wait for.
		st.Until = st.Tail
	}
	st.Done = true
	for _, tier := range []storage.Tier{storage.TierMinute, storage.TierHour} {
		st.From[tier], st.Next[tier] = st.Until, st.Until
		if some[tier] && oldest[tier] < st.Until {
			st.From[tier], st.Next[tier] = tier.Truncate(oldest[tier]), tier.Truncate(oldest[tier])
			st.Done = false
		}
	}
	if !st.Done {
		t.cfg.Logf("remote: backfill: shipping the store's buckets from %s to %s, which it held before shipping began",
			time.Unix(min(st.From[0], st.From[1])*60, 0).UTC().Format(time.RFC3339), time.Unix(st.Until*60, 0).UTC().Format(time.RFC3339))
	}
	return st, t.saveBackfill(st)
}

func (t *Tier) saveBackfill(st backfillState) error {
	data, _ := json.Marshal(st)
	if err := writeFileAtomic(filepath.Join(t.o.dir, backfillFile), data); err != nil {
		return err
	}
	return syncDir(t.o.dir)
}

// backfillLoop ships the store's old buckets a chunk a segment, oldest
// first, keeping few segments waiting, until done or stopped. A crash
// between a segment and backfill.json ships that chunk again: the same
// values, deduplicated.
func (t *Tier) backfillLoop(store History, st backfillState) {
	lastLog := time.Now()
	for !st.Done {
		tier := storage.TierMinute
		if st.Next[tier] >= st.Until {
			tier = storage.TierHour
		}
		from := st.Next[tier]
		to := min(from+backfillChunk(tier), st.Until)
		waiting := len(t.o.segments()) > 4 || to > st.Tail && t.o.Cut() < st.Until
		if !waiting {
			if err := t.backfillChunk(store, tier, from, to); err != nil {
				t.cfg.Logf("remote: backfill: %v; will retry", err)
				t.noteError(err)
				waiting = true
			} else {
				st.Next[tier] = to
				st.Done = st.Next[storage.TierMinute] >= st.Until && st.Next[storage.TierHour] >= st.Until
				if err := t.saveBackfill(st); err != nil {
					t.noteError(err)
				}
				next := st
				t.backfill.Store(&next)
				if to == st.Until || time.Since(lastLog) > 10*time.Second {
					lastLog = time.Now()
					t.cfg.Logf("remote: backfill: %s tier shipped up to %s of %s%s", tier, time.Unix(to*60, 0).UTC().Format(time.RFC3339),
						time.Unix(st.Until*60, 0).UTC().Format(time.RFC3339), map[bool]string{true: "; done"}[st.Done])
				}
				continue
			}
		}
		select {
		case <-t.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// backfillChunk writes a segment of the store's buckets of tier t in
// [from, to), every metric, the sketches as -remote-sketches says.
func (t *Tier) backfillChunk(store History, tier storage.Tier, from, to int64) error {
	t.o.mu.Lock()
	sk := t.o.sketches
	t.o.mu.Unlock()
	s := samples{}
	for _, metric := range store.Metrics() {
		if vocab.KindOf(metric) == vocab.Sketch && (sk == SketchesOff || sk == SketchesHour && tier == storage.TierMinute) {
			continue
		}
		err := store.ScanSub(tier, metric, vocab.Everywhere, from, to, func(cell, sub uint64, minute, v int64) {
			if vocab.Spreads(metric) {
				sub = 0 // a run's length
			}
			s.add(sampleKey{tier, metric, cell, sub, minute}, v)
		})
		if err != nil {
			return err
		}
	}
	if len(s) == 0 {
		return nil
	}
	body, err := t.cut.lab.encodeSegment(s)
	if err != nil {
		return err
	}
	t.cut.cuts(len(s))
	return t.o.addSegment(body, from, t.o.Cut())
}

// backfillShipped returns the first minute the backfill has not shipped
// yet, and false once it is done (or there is none).
func (t *Tier) backfillShipped() (int64, bool) {
	st := t.backfill.Load()
	if st == nil || st.Done {
		return 0, false
	}
	return min(st.Next[storage.TierMinute], st.Next[storage.TierHour]), true
}

// backfillStatus returns the backfill's progress, nil without one.
func (t *Tier) backfillStatus() *BackfillStatus {
	st := t.backfill.Load()
	if st == nil || st.From[0] >= st.Until && st.From[1] >= st.Until {
		return nil
	}
	at := func(m int64) time.Time { return time.Unix(m*60, 0).UTC() }
	return &BackfillStatus{From: at(min(st.From[0], st.From[1])), Until: at(st.Until), Shipped: at(st.Next[0]), Hours: at(st.Next[1]), Done: st.Done}
}
