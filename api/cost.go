package api

import (
	"fmt"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// tierSpan is a query's span and the tier that answers it.
type tierSpan struct {
	tier     storage.Tier
	from, to int64 // unix minutes
	// dayFrom, dayTo are the whole UTC days of [from, to) that the day
	// tier answers instead, when they differ (see Server.densitySpan).
	dayFrom, dayTo int64
}

// pieces are the spans of one tier each that the span reads: with days,
// the hours before them, the days, and the hours after them.
func (ts tierSpan) pieces() []tierSpan {
	if ts.dayFrom >= ts.dayTo {
		return []tierSpan{ts}
	}
	out := make([]tierSpan, 0, 3)
	if ts.from < ts.dayFrom {
		out = append(out, tierSpan{tier: ts.tier, from: ts.from, to: ts.dayFrom})
	}
	out = append(out, tierSpan{tier: storage.TierDay, from: ts.dayFrom, to: ts.dayTo})
	if ts.dayTo < ts.to {
		out = append(out, tierSpan{tier: ts.tier, from: ts.dayTo, to: ts.to})
	}
	return out
}

// tiers names the tiers the span reads: "day" when the day tier answers
// whole days of it (their edges read from the hour tier).
func (ts tierSpan) tiers() string {
	if ts.dayFrom < ts.dayTo {
		return storage.TierDay.String()
	}
	return ts.tier.String()
}

// rows counts the rows the store would read for the span over ranges.
func (ts tierSpan) rows(st *storage.Store, metric string, ranges []vocab.CellRange) int64 {
	var n int64
	for _, p := range ts.pieces() {
		n += st.RowsToRead(p.tier, metric, ranges, p.from, p.to)
	}
	return n
}

// queryCost is the work of one query: the rows the store reads, of the
// tier that answers it, and the figures the answer holds. Reading is most
// of the work; a figure costs about what a row does.
type queryCost struct {
	rows, figures int64
	tiers         string // the tier read, or "day" for days and their edge hours
}

func (c queryCost) total() int64 { return c.rows + c.figures }

func (c queryCost) String() string {
	tiers := c.tiers + " tier"
	if c.tiers == storage.TierDay.String() {
		tiers = "day and hour tiers"
	}
	return fmt.Sprintf("%d rows of the %s + %d figures = %d", c.rows, tiers, c.figures, c.total())
}

// costLimit is the most a query may cost (-max-query-cost).
func (s *Server) costLimit() int64 {
	if s.Guard != nil && s.Guard.Limits.MaxQueryCost > 0 {
		return s.Guard.Limits.MaxQueryCost
	}
	return DefaultMaxQueryCost
}

// checkCost refuses a query that costs more than the limit, naming its
// cost, the limit and advice: what to change in this route's parameters.
func (s *Server) checkCost(c queryCost, advice string) error {
	if limit := s.costLimit(); c.total() > limit {
		return &paramError{Param: "cost", Value: c.String(),
			Reason: fmt.Sprintf("over the query cost limit of %d (-max-query-cost): %s", limit, advice)}
	}
	return nil
}

// areaCost is the cost of reading metric over the area and span, with
// figures in the answer. A bbox or polygon covered at a coarse resolution
// reaches past the shape's edge; when that would refuse the query, the
// cost is the least over finer covers of the same shape, so that a coarser
// resolution never costs more than a finer one: whatever res is accepted,
// a coarser one is too.
func (s *Server) areaCost(a *area, ts tierSpan, metric string, figures int64) queryCost {
	c := queryCost{rows: ts.rows(s.Store, metric, a.ranges), figures: figures, tiers: ts.tiers()}
	if a.shape == nil || c.total() <= s.costLimit() {
		return c
	}
	for res := a.res + 1; res <= s.Res; res++ {
		cells, err := a.shape.Cells(res, maxAreaCells)
		if err != nil {
			break
		}
		ranges, err := geo.Ranges(cells, s.Res)
		if err != nil {
			break
		}
		c.rows = min(c.rows, ts.rows(s.Store, metric, ranges))
	}
	return c
}

// Advice of each route's refusal: what to change. Rows are base-resolution
// buckets, so res changes what is read only at the area's edge and is not
// advised; density and top have no step.
const (
	adviceDensity = "ask a shorter window (or from–to) or a smaller area (bbox, polygon, cells); a window of whole hours, or of a day or more, is read from the hour tier"
	adviceSeries  = "ask a shorter from–to or a smaller area (bbox, polygon, cells)"
	adviceProm    = "ask a shorter start–end or a smaller bbox or polygon in the query"
)

// withHourStep adds to advice, when the minute tier answers, the step of
// whole hours that would let the hour tier answer: hint says how the
// route spells it.
func withHourStep(advice string, tier storage.Tier, hint string) string {
	if tier != storage.TierMinute {
		return advice
	}
	return advice + ", or " + hint + " (or any whole hours), which the hour tier answers"
}
