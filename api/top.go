package api

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// topQuery asks for the k cells with the largest sums of a metric.
type topQuery struct {
	metric   string
	k, res   int
	ranges   []vocab.CellRange
	from, to int64 // unix minutes
}

// topAnswer is the reply of GET /api/v1/top.
type topAnswer struct {
	Metric string `json:"metric"`
	Res    int    `json:"res"`
	Tier   string `json:"tier"`
	period
	K int `json:"k"`
	// Seen is how many cells had a non-zero sum that was released.
	Seen  int       `json:"seen"`
	Cells []topCell `json:"cells"`
	remoteNote
	answer.Took
	released
}

// topCell is one of the hottest cells, with its centre.
type topCell struct {
	Cell  string  `json:"cell"`
	Value int64   `json:"value"`
	Lat   float64 `json:"lat"`
	Lng   float64 `json:"lng"`
}

// parseTop reads GET /api/v1/top: metric, k, res, a window ending now (or
// from..to), over everything or over an area (cells, site, bbox or
// polygon).
func (s *Server) parseTop(q *query) (tq topQuery, err error) {
	if tq.metric, err = q.metric(); err != nil {
		return tq, err
	}
	if tq.k, err = q.intParam("k", 10, 1, 10000); err != nil {
		return tq, err
	}
	if tq.res, err = q.intParam("res", s.Res, 0, s.Res); err != nil {
		return tq, err
	}
	tq.ranges = vocab.Everywhere
	if q.hasArea("") {
		a, err := s.parseArea(q)
		if err != nil {
			return tq, err
		}
		tq.ranges, tq.res = a.ranges, a.res
	}
	if err := q.resAllowed(tq.metric, tq.res, "res"); err != nil {
		return tq, err
	}
	window, err := q.minutes("window", 15*time.Minute)
	if err != nil {
		return tq, err
	}
	if tq.from, tq.to, err = q.span(window); err != nil {
		return tq, err
	}
	tq.from, tq.to, _ = q.rel.Span(tq.metric, tq.from, tq.to, 0)
	span := s.densitySpan(tq.metric, tq.ranges, tq.from, tq.to)
	cost := queryCost{rows: span.rows(s.Store, tq.metric, tq.ranges), figures: int64(tq.k), tiers: span.tiers()}
	return tq, s.checkCost(cost, adviceDensity)
}

// top answers the k cells with the largest sums of a metric over a
// window, at a resolution, ranked by the figures the release lets out.
// Ties go to the lower cell id so that answers are stable.
func (s *Server) top(q topQuery, rel *privacy.Release) (*topAnswer, error) {
	span := s.densitySpan(q.metric, q.ranges, q.from, q.to)
	if s.History != nil {
		// VictoriaMetrics and the peers hold no day tier.
		span.dayFrom, span.dayTo = 0, 0
	}
	q.from, q.to = span.from, span.to
	src := s.sources(false)
	sums, err := s.sumByCell(src, span, q.metric, q.ranges, q.res)
	if err != nil {
		return nil, err
	}
	type cellSum struct {
		cell h3.Cell
		sum  int64
	}
	all := make([]cellSum, 0, len(sums))
	for c, v := range sums {
		if v, ok := rel.Count(privacy.Figure{Metric: q.metric, Area: rel.CellArea(c), From: q.from, To: q.to}, v); ok {
			all = append(all, cellSum{c, v})
		}
	}
	slices.SortFunc(all, func(a, b cellSum) int {
		if c := cmp.Compare(b.sum, a.sum); c != 0 {
			return c
		}
		return cmp.Compare(a.cell, b.cell)
	})
	ans := &topAnswer{
		Metric: q.metric, Res: q.res, Tier: span.tiers(), K: q.k, Seen: len(all),
		period: periodOf(q.from, q.to), Cells: make([]topCell, min(q.k, len(all))), remoteNote: src.note(),
	}
	for i := range ans.Cells {
		ll := all[i].cell.LatLng()
		ans.Cells[i] = topCell{Cell: all[i].cell.String(), Value: all[i].sum, Lat: ll.Lat, Lng: ll.Lng}
	}
	return ans, nil
}

// appendCSV appends the cells as rows rank,cell,value,lat,lng.
func (a *topAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "rank,cell,value,lat,lng\n"...)
	for i, c := range a.Cells {
		dst = strconv.AppendInt(dst, int64(i+1), 10)
		dst = append(dst, ',')
		dst = append(dst, c.Cell...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, c.Value, 10)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, c.Lat, 'f', 6, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, c.Lng, 'f', 6, 64)
		dst = append(dst, '\n')
	}
	return dst
}
