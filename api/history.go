package api

import (
	"time"

	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
	"github.com/uber/h3-go/v4"
)

// History sends the old steps of series queries to VictoriaMetrics.
type History struct {
	Reader *remote.Reader
	// All reads every step VictoriaMetrics holds whole from it, not only
	// those older than the local tier's retention.
	All bool
	// Shipped returns the first minute whose buckets may not all be in
	// VictoriaMetrics yet (remote.Tier.Shipped); the steps before it are
	// whole there.
	Shipped func() int64
	// First, when set, returns the first minute VictoriaMetrics holds
	// this flowd's buckets from: older minute steps stay with the hour
	// tier.
	First func() int64
	// Peers are the ingest nodes whose stores answer, besides this one's,
	// the steps VictoriaMetrics does not (a query node's live deltas): a
	// group of replicas each, of which the first that answers counts.
	Peers [][]*remote.Peer
	Logf  func(format string, args ...any)
}

// hasMinutesFrom reports whether VictoriaMetrics holds the minutes from
// minute on.
func (h *History) hasMinutesFrom(minute int64) bool {
	return h != nil && h.Reader != nil && (h.First == nil || minute >= h.First())
}

// knows reports whether VictoriaMetrics holds series of metric (a flowd
// with no data of its own may answer it from there).
func (h *History) knows(metric string) bool {
	return h != nil && h.Reader != nil && h.Reader.Knows(metric)
}

// remoteSteps returns how many of the n steps of step minutes from minute
// from of a query of tier t VictoriaMetrics answers: those that begin
// before the local tier's retention (whose older minutes the store no
// longer holds), or with All every step that ends before the first minute
// not yet shipped.
func (s *Server) remoteSteps(t storage.Tier, from, step, n int64) int64 {
	h := s.History
	if h == nil || h.Reader == nil {
		return 0
	}
	var k int64
	if h.All {
		k = (h.Shipped() - from) / step
	} else {
		k = (s.Store.RetentionCutoff(t) - from + step - 1) / step
	}
	return min(max(k, 0), n)
}

// remoteSplit returns the minute up to which VictoriaMetrics answers a
// window [from, to) of minute buckets (from itself when it answers none):
// the minutes before the minute tier's retention, or with All those it
// holds whole.
func (s *Server) remoteSplit(from, to int64) int64 {
	h := s.History
	if !h.hasMinutesFrom(from) {
		return from
	}
	split := s.Store.RetentionCutoff(storage.TierMinute)
	if h.All {
		split = h.Shipped()
	}
	return min(max(split, from), to)
}

// peersByCell adds to sums each group of peers' own sums by cell over
// [from, to), from its first replica that answers, and names the peers
// that did not.
func (s *Server) peersByCell(metric string, a *area, from, to int64, sums map[h3.Cell]int64) (unreachable []string) {
	if s.History == nil || from >= to {
		return nil
	}
	for _, group := range s.History.Peers {
		var failed []string
		for _, p := range group {
			part := map[h3.Cell]int64{}
			err := p.SumByCell(metric, a.cells, a.res, from, to, func(c h3.Cell, v int64) { part[c] += v })
			if err == nil {
				for c, v := range part {
					sums[c] = storage.SatAdd(sums[c], v)
				}
				failed = nil
				break
			}
			s.History.Logf("api: peer %s: %v", p.URL, err)
			failed = append(failed, p.URL)
		}
		unreachable = append(unreachable, failed...)
	}
	return unreachable
}

// sumSteps sums a series query's steps: the first k from VictoriaMetrics,
// the rest from the store and the peers' stores. remoteUntil is the end of
// the remote part, nil when there is none; unreachable names the peers
// that did not answer, whose part is missing.
func (s *Server) sumSteps(t storage.Tier, q seriesQuery, sums []int64) (remoteUntil *time.Time, unreachable []string, err error) {
	n := int64(len(sums))
	k := int64(0)
	if !q.local {
		k = s.remoteSteps(t, q.from, q.step, n)
	}
	if k > 0 {
		split := q.from + k*q.step
		if err := s.History.Reader.SumSteps(t, q.metric, q.area.cells, q.area.res, q.area.ranges, q.from, min(split, q.to), q.step, sums[:k]); err != nil {
			return nil, nil, err
		}
		until := time.Unix(min(split, q.to)*60, 0).UTC()
		remoteUntil = &until
	}
	if k == n {
		return remoteUntil, nil, nil
	}
	if err := s.Store.SumSteps(t, q.metric, q.area.ranges, q.from+k*q.step, q.to, q.step, sums[k:]); err != nil {
		return nil, nil, err
	}
	if q.local || s.History == nil {
		return remoteUntil, nil, nil
	}
	part := make([]int64, n-k)
	for _, group := range s.History.Peers {
		var failed []string
		for _, p := range group {
			clear(part)
			err := p.SumSteps(q.metric, q.area.cells, q.area.res, q.from+k*q.step, q.to, q.step, part)
			if err == nil {
				for i, v := range part {
					sums[k+int64(i)] = storage.SatAdd(sums[k+int64(i)], v)
				}
				failed = nil
				break
			}
			s.History.Logf("api: peer %s: %v", p.URL, err)
			failed = append(failed, p.URL)
		}
		unreachable = append(unreachable, failed...)
	}
	return remoteUntil, unreachable, nil
}
