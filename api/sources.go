package api

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// sources reads the buckets of one query wherever they are: the part of
// its span VictoriaMetrics holds from there (History), the rest from the
// store and, on a query node, from each group of peers' first replica
// that answers. top, corridors, path density, OD, sections and distinct
// scan through it, so that a query node answers them as one node fed
// everything, through the same privacy layer.
type sources struct {
	s     *Server
	local bool // this node's store only
	// remoteUntil is the latest end of a span read from VictoriaMetrics;
	// unreachable names the peers that did not answer.
	remoteUntil *time.Time
	unreachable []string
}

func (s *Server) sources(local bool) *sources { return &sources{s: s, local: local} }

// remoteNote is embedded in the answers of the queries that read through
// sources: where VictoriaMetrics answered up to, and the peers missing.
type remoteNote struct {
	RemoteUntil      *time.Time `json:"remote_until,omitempty"`
	UnreachablePeers []string   `json:"unreachable_peers,omitempty"`
}

func (src *sources) note() remoteNote {
	return remoteNote{RemoteUntil: src.remoteUntil, UnreachablePeers: src.unreachable}
}

// split returns the minute up to which VictoriaMetrics answers a span
// [from, to) of tier t: as remoteSplit for minutes; for hours, the hours
// it holds whole (every minute of them shipped) or older than the hour
// tier's retention.
func (src *sources) split(t storage.Tier, from, to int64) int64 {
	s, h := src.s, src.s.History
	if src.local || !h.hasMinutesFrom(from) {
		return from
	}
	if t == storage.TierMinute {
		return s.remoteSplit(from, to)
	}
	split := t.Truncate(s.Store.RetentionCutoff(t) + 59)
	if h.All {
		split = t.Truncate(h.Shipped())
	}
	return min(max(split, from), to)
}

// scanSub calls fn with every bucket of metric in tier t, ranges and
// [from, to), as storage.Store.ScanSub does, from wherever it is held. A
// bucket may be given more than once (callers sum, or take a sketch's
// maximum), never twice from two sources: each minute of the span is read
// from VictoriaMetrics or from the stores.
func (src *sources) scanSub(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, v int64)) error {
	s := src.s
	split := src.split(t, from, to)
	if split > from {
		if vocab.KindOf(metric) == vocab.Sketch && !s.History.Reader.Knows(metric) {
			until := time.Unix(split*60, 0).UTC().Format(time.RFC3339)
			return &paramError{Param: "from", Value: time.Unix(from*60, 0).UTC().Format(time.RFC3339), Reason: fmt.Sprintf(
				"VictoriaMetrics holds no %s (the sketches of distinct cards), needed up to %s: the ingest nodes ship them with -remote-sketches minute; ask a later span, or the ingest nodes", metric, until)}
		}
		if err := s.History.Reader.Scan(t, metric, ranges, from, split, fn); err != nil {
			return err
		}
		if until := time.Unix(split*60, 0).UTC(); src.remoteUntil == nil || until.After(*src.remoteUntil) {
			src.remoteUntil = &until
		}
	}
	if split >= to {
		return nil
	}
	if err := s.Store.ScanSub(t, metric, ranges, split, to, fn); err != nil {
		return err
	}
	if src.local || s.History == nil {
		return nil
	}
	for _, group := range s.History.Peers {
		var failed []string
		for _, p := range group {
			var rows []remote.Bucket
			err := p.Buckets(t, metric, ranges, split, to, func(b remote.Bucket) { rows = append(rows, b) })
			if err == nil {
				for _, b := range rows {
					fn(b.Cell, b.Sub, b.Minute, b.Value)
				}
				failed = nil
				break
			}
			s.History.Logf("api: peer %s: %v", p.URL, err)
			failed = append(failed, p.URL)
		}
		for _, u := range failed {
			if !slices.Contains(src.unreachable, u) {
				src.unreachable = append(src.unreachable, u)
			}
		}
	}
	return nil
}

// scan is scanSub without the sub-key.
func (src *sources) scan(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, minute, v int64)) error {
	return src.scanSub(t, metric, ranges, from, to, func(cell, _ uint64, minute, v int64) { fn(cell, minute, v) })
}

// bucketsQuery asks for this node's own buckets of a metric
// (POST /api/v1/buckets, which query nodes call).
type bucketsQuery struct {
	tier     storage.Tier
	metric   string
	ranges   []vocab.CellRange
	from, to int64
}

// bucketsAnswer lists the buckets as rows of the cell and the sub-key in
// hex, the unix minute and the value.
type bucketsAnswer struct {
	released
	Rows [][4]any `json:"rows"`
	answer.Took
}

// maxBucketRanges bounds the ranges one buckets query names.
const maxBucketRanges = 100000

func (s *Server) parseBuckets(q *query) (bq bucketsQuery, err error) {
	switch q.str("tier") {
	case "", "minute":
		bq.tier = storage.TierMinute
	case "hour":
		bq.tier = storage.TierHour
	default:
		return bq, &paramError{Param: "tier", Value: q.str("tier"), Reason: "want minute or hour"}
	}
	if bq.from, err = q.minute("from", q.now.Add(-time.Hour)); err != nil {
		return bq, err
	}
	if bq.to, err = q.minute("to", q.now.Add(time.Minute)); err != nil {
		return bq, err
	}
	if err := checkSpan(q, bq.from, bq.to); err != nil {
		return bq, err
	}
	if bq.metric, err = q.required("metric"); err != nil {
		return bq, err
	}
	bq.ranges = vocab.Everywhere
	if v := q.str("ranges"); v != "" {
		bq.ranges = nil
		for _, r := range strings.Split(v, ",") {
			lo, hi, ok := strings.Cut(r, "-")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if !ok || err1 != nil || err2 != nil || h < l || len(bq.ranges) == maxBucketRanges {
				return bq, &paramError{Param: "ranges", Value: r, Reason: fmt.Sprintf("want at most %d ranges lo-hi of hex cell ids, sorted", maxBucketRanges)}
			}
			bq.ranges = append(bq.ranges, vocab.CellRange{Lo: l, Hi: h})
		}
	}
	return bq, nil
}

// buckets answers POST /api/v1/buckets: this node's own buckets of a
// metric, exact (an admin's route), for a query node's scans.
func (s *Server) buckets(q bucketsQuery, _ *privacy.Release) (*bucketsAnswer, error) {
	ans := &bucketsAnswer{Rows: [][4]any{}}
	err := s.Store.ScanSub(q.tier, q.metric, q.ranges, q.from, q.to, func(cell, sub uint64, minute, v int64) {
		ans.Rows = append(ans.Rows, [4]any{remote.CellHex(cell), remote.CellHex(sub), minute, v})
	})
	return ans, err
}

// Buckets reads stored buckets wherever they are, as the queries do
// (sources): the dashboard's sites read their footfall through it on a
// query node (dashboard.Sites.ReadFrom).
type Buckets struct{ s *Server }

// Buckets returns the server's reader of buckets.
func (s *Server) Buckets() Buckets { return Buckets{s} }

// Scan calls fn with every bucket of metric in tier t, ranges and
// [from, to), from VictoriaMetrics, the store and the peers.
func (b Buckets) Scan(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, minute, v int64)) error {
	return b.s.sources(false).scan(t, metric, ranges, from, to, fn)
}

// RetentionCutoff is the store's (storage.Store.RetentionCutoff).
func (b Buckets) RetentionCutoff(t storage.Tier) int64 { return b.s.Store.RetentionCutoff(t) }
