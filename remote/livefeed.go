package remote

import (
	"time"

	"github.com/flowd/flowd/storage"
)

// LiveFeed gives a query node's live map the ingest nodes' live state: it
// polls each group of peers' recent minute buckets (its first replica
// that answers) and hands the live map the changes since its last poll as
// deltas, so that the map's window sums what the peers hold. A group that
// does not answer keeps what it gave last, until its minutes leave the
// window.
type LiveFeed struct {
	Peers [][]*Peer
	// Width is the live window in minutes: the minutes polled are the
	// last Width, and those just ahead of the clock.
	Width int64
	// ID returns the local id of a metric name (storage.Store.MetricID).
	ID func(name string) (uint32, error)
	// Observe takes the deltas (dashboard.Hub.ObserveDeltas).
	Observe func([]storage.Delta)
	Now     func() time.Time
	Logf    func(format string, args ...any)

	last []map[liveKey]int64 // by group: what it gave last
}

type liveKey struct {
	metric string
	cell   uint64
	minute int64
}

// Run polls every interval until stop is closed.
func (f *LiveFeed) Run(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f.Poll()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Poll asks every group once and hands on what changed.
func (f *LiveFeed) Poll() {
	if f.last == nil {
		f.last = make([]map[liveKey]int64, len(f.Peers))
	}
	from := f.Now().Unix()/60 - f.Width + 1
	var deltas []storage.Delta
	emit := func(k liveKey, v int64) {
		id, err := f.ID(k.metric)
		if err != nil {
			f.Logf("live: %v", err)
			return
		}
		deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: id, Cell: k.cell, Minute: k.minute}, Value: v})
	}
	for g, group := range f.Peers {
		var got map[liveKey]int64
		for _, p := range group {
			buckets, err := p.Recent(from)
			if err != nil {
				f.Logf("live: peer %s: %v", p.URL, err)
				continue
			}
			got = make(map[liveKey]int64, len(buckets))
			for _, b := range buckets {
				got[liveKey{b.Metric, b.Cell, b.Minute}] += b.Value
			}
			break
		}
		if got == nil {
			continue
		}
		last := f.last[g]
		for k, v := range got {
			if d := v - last[k]; d != 0 {
				emit(k, d)
			}
		}
		for k, v := range last {
			if _, ok := got[k]; !ok && k.minute >= from {
				emit(k, -v) // a replica that took over holds less
			}
		}
		f.last[g] = got
	}
	if len(deltas) > 0 {
		f.Observe(deltas)
	}
}
