package api

import (
	"slices"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// CellValue is one cell of a density answer.
type CellValue struct {
	Cell  string `json:"cell"`
	Value int64  `json:"value"`
}

// densityQuery asks for the per-cell sums of a metric over an area and a
// window of minutes.
type densityQuery struct {
	metric   string
	area     *area
	from, to int64 // unix minutes
	// local asks this node's store only, as a query node asks its peers.
	local bool
}

// densityAnswer is the reply of GET /api/v1/density.
type densityAnswer struct {
	Metric string `json:"metric"`
	Res    int    `json:"res"`
	Tier   string `json:"tier"`
	period
	Total int64       `json:"total"`
	Cells []CellValue `json:"cells"`
	// RemoteUntil is the end of the part of the window read from
	// VictoriaMetrics (see History); absent when none was.
	RemoteUntil *time.Time `json:"remote_until,omitempty"`
	// UnreachablePeers names the peers that did not answer their part of
	// the window after RemoteUntil (see History.Peers).
	UnreachablePeers []string `json:"unreachable_peers,omitempty"`
	answer.Took
	released

	cells []h3.Cell // of Cells, for GeoJSON
}

// parseDensity reads GET /api/v1/density: metric, an area, and a window
// ending at a time (now by default), or from and to.
func (s *Server) parseDensity(q *query) (dq densityQuery, err error) {
	if dq.metric, err = q.metric(); err != nil {
		return dq, err
	}
	if dq.area, err = s.parseArea(q); err != nil {
		return dq, err
	}
	window, err := q.minutes("window", 5*time.Minute)
	if err != nil {
		return dq, err
	}
	if dq.to, err = q.minute("at", q.now.Add(time.Minute)); err != nil {
		return dq, err
	}
	dq.from = dq.to - window
	if q.str("from") != "" || q.str("to") != "" {
		if dq.to, err = q.minute("to", q.now.Add(time.Minute)); err != nil {
			return dq, err
		}
		if dq.from, err = q.minute("from", time.Unix((dq.to-window)*60, 0)); err != nil {
			return dq, err
		}
		if err := checkSpan(q, dq.from, dq.to); err != nil {
			return dq, err
		}
	}
	if err := q.resAllowed(dq.metric, dq.area.res, "res"); err != nil {
		return dq, err
	}
	dq.local = q.str("local") == "1" || q.str("local") == "true"
	dq.from, dq.to, _ = q.rel.Span(dq.metric, dq.from, dq.to, 0)
	cost := s.areaCost(dq.area, s.densitySpan(dq.metric, dq.area.ranges, dq.from, dq.to), dq.metric, int64(len(dq.area.cells)))
	return dq, s.checkCost(cost, adviceDensity)
}

// longSpan is the shortest window density and top read from the hour
// tier even when it does not start and end on whole hours: a day of
// minutes at its ends would cost more to read than the hours between them.
const longSpan = 24 * 60

// densitySpan picks the tier that answers a window of density or top:
// the hour tier for a window of whole hours, one of a day or longer, or
// one reaching past the minute tier's retention (a replay of an old day);
// the minute tier otherwise. The hour tier reads from the hour holding
// the window's start to the last whole hour before its end: never past
// the end, which for a caller below admin is where figures are released.
// Only a window within one hour (of a day past the minute retention,
// long settled) is read to the end of its hour. Of those hours, the whole
// UTC days the day tier still keeps are read from it, a row per cell and
// day instead of 24 (a year is 365 rows a cell, not 8,760), when that
// reads fewer rows of metric over ranges: the hours at the edges are read
// from the hour tier, whose blocks hold a cell's hours of months, so that
// a window not from midnight to midnight UTC may read more that way.
func (s *Server) densitySpan(metric string, ranges []vocab.CellRange, from, to int64) tierSpan {
	if from%60 == 0 && to%60 == 0 || to-from >= longSpan || from < s.Store.RetentionCutoff(storage.TierMinute) {
		h := storage.TierHour
		hf, ht := h.Truncate(from), h.Truncate(to)
		if ht <= hf {
			ht = h.Truncate(to + 59)
		}
		span := tierSpan{tier: h, from: hf, to: ht}
		d := storage.TierDay
		df := d.Truncate(max(hf, s.Store.RetentionCutoff(d)) + d.Width() - 1)
		if dt := d.Truncate(ht); dt > df {
			days := span
			days.dayFrom, days.dayTo = df, dt
			if days.rows(s.Store, metric, ranges) < span.rows(s.Store, metric, ranges) {
				return days
			}
		}
		return span
	}
	return tierSpan{tier: storage.TierMinute, from: from, to: to}
}

// density answers the per-cell sums of a metric over a window, at the
// area's resolution: the cells with a non-zero sum whose figure the
// release lets out, sorted by id, and their total.
func (s *Server) density(q densityQuery, rel *privacy.Release) (*densityAnswer, error) {
	split := q.from
	if !q.local {
		split = s.remoteSplit(q.from, q.to)
	}
	var sums map[h3.Cell]int64
	var err error
	var remoteUntil *time.Time
	var unreachable []string
	span := tierSpan{tier: storage.TierMinute, from: split, to: q.to}
	remotePart := split > q.from
	if !remotePart {
		// All local: whole hours, a long window or one past the minute
		// tier's retention read the hourly rollups (see densitySpan).
		span = s.densitySpan(q.metric, q.area.ranges, q.from, q.to)
		q.from, q.to = span.from, span.to
	}
	// The store alone: this answer reads VictoriaMetrics and the peers
	// itself, for a window by cell in one query each.
	if sums, err = s.sumByCell(s.sources(true), span, q.metric, q.area.ranges, q.area.res); err != nil {
		return nil, err
	}
	if remotePart {
		// The part of the window VictoriaMetrics holds.
		err := s.History.Reader.SumByCell(q.metric, q.area.cells, q.area.res, q.area.ranges, q.from, split, func(cell uint64, v int64) {
			c := h3.Cell(cell)
			if q.area.res < s.Res {
				c = c.Parent(q.area.res)
			}
			sums[c] += v
		})
		if err != nil {
			return nil, err
		}
		until := time.Unix(split*60, 0).UTC()
		remoteUntil = &until
	}
	if !q.local && span.tier == storage.TierMinute {
		unreachable = s.peersByCell(q.metric, q.area, span.from, q.to, sums)
	}
	ans := &densityAnswer{Metric: q.metric, Res: q.area.res, Tier: span.tiers(), period: periodOf(q.from, q.to), Cells: make([]CellValue, 0, len(sums)),
		RemoteUntil: remoteUntil, UnreachablePeers: unreachable}
	for c, v := range sums {
		if v == 0 {
			delete(sums, c)
			continue
		}
		if v, ok := rel.Count(privacy.Figure{Metric: q.metric, Area: rel.CellArea(c), From: q.from, To: q.to}, v); ok {
			sums[c] = v
			ans.cells = append(ans.cells, c)
		}
	}
	slices.Sort(ans.cells)
	for _, c := range ans.cells {
		ans.Cells = append(ans.Cells, CellValue{c.String(), sums[c]})
		ans.Total += sums[c]
	}
	return ans, nil
}

// appendGeoJSON appends the answer as a FeatureCollection of cell
// boundaries with their values.
func (a *densityAnswer) appendGeoJSON(dst []byte) []byte {
	vals := make([]float64, len(a.Cells))
	for i, c := range a.Cells {
		vals[i] = float64(c.Value)
	}
	return geo.CellsFeatureCollection(dst, a.cells, vals)
}

// sumByCell sums metric over a span of a tier per cell at resolution
// res, read through src, for the base-resolution ranges given, leaving out zero sums.
func (s *Server) sumByCell(src *sources, ts tierSpan, metric string, ranges []vocab.CellRange, res int) (map[h3.Cell]int64, error) {
	sums := map[h3.Cell]int64{}
	// Rows come a base cell at a time: each cell's run is summed apart and
	// added to the map once.
	var lastBase uint64
	var lastCell h3.Cell
	var run int64
	for _, p := range ts.pieces() {
		err := src.scan(p.tier, metric, ranges, p.from, p.to, func(cell uint64, _, v int64) {
			if cell != lastBase || lastCell == 0 {
				if lastCell != 0 {
					sums[lastCell] += run
				}
				lastBase, lastCell, run = cell, h3.Cell(cell), 0
				if res < s.Res {
					lastCell = lastCell.Parent(res)
				}
			}
			run += v
		})
		if err != nil {
			return nil, err
		}
	}
	if lastCell != 0 {
		sums[lastCell] += run
	}
	for c, v := range sums {
		if v == 0 {
			delete(sums, c)
		}
	}
	return sums, nil
}
