package api

import (
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
)

// maxSketches bounds the steps of one distinct query, each a sketch.
const maxSketches = 1000

// distinctQuery asks for the distinct cards that swiped in an area, over
// the whole span and, when step > 0, per step.
type distinctQuery struct {
	area           *area
	from, to, step int64 // unix minutes; step in minutes
	perStep        bool
}

// distinctAnswer is the reply of GET /api/v1/distinct.
type distinctAnswer struct {
	period
	Cells      int        `json:"cells"`
	Distinct   *int64     `json:"distinct,omitempty"`
	Suppressed bool       `json:"suppressed,omitempty"`
	StdError   float64    `json:"std_error"`
	Points     []distinct `json:"points,omitempty"`
	remoteNote
	answer.Took
	released
}

type distinct struct {
	Time       int64  `json:"t"`
	Distinct   *int64 `json:"distinct,omitempty"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// parseDistinct reads GET /api/v1/distinct: an area, from, to and
// optionally step.
func (s *Server) parseDistinct(q *query) (dq distinctQuery, err error) {
	if dq.area, err = s.parseArea(q); err != nil {
		return dq, err
	}
	if err := q.resAllowed(vocab.DistinctCards, dq.area.res, "res"); err != nil {
		return dq, err
	}
	if dq.from, dq.to, err = q.span(60); err != nil {
		return dq, err
	}
	if dq.perStep = q.str("step") != ""; dq.perStep {
		if dq.step, err = q.minutes("step", time.Minute); err != nil {
			return dq, err
		}
	}
	dq.from, dq.to, dq.step = q.rel.Span(vocab.DistinctCards, dq.from, dq.to, dq.step)
	if !dq.perStep {
		dq.step = dq.to - dq.from
	}
	if _, err := q.steps(dq.from, dq.to, dq.step, maxSketches, "sketches per query"); err != nil {
		return dq, err
	}
	return dq, nil
}

// distinct answers the number of distinct cards that swiped in an area,
// from the union of per-cell, per-minute HyperLogLog sketches (so a card
// seen in many cells and minutes counts once), and per step when asked.
// Each count is a figure of the release, marked suppressed when withheld.
func (s *Server) distinct(q distinctQuery, rel *privacy.Release) (*distinctAnswer, error) {
	tier := s.Store.TierFor(q.from, q.step)
	total := make([]uint8, vocab.HLLRegisters)
	var steps [][]uint8
	if q.perStep {
		steps = make([][]uint8, (q.to-q.from+q.step-1)/q.step)
	}
	src := s.sources(false)
	err := src.scanSub(tier, vocab.DistinctCards, q.area.ranges, q.from, q.to, func(_, reg uint64, minute, rank int64) {
		r := uint8(rank)
		total[reg] = max(total[reg], r)
		if steps != nil {
			i := (minute - q.from) / q.step
			if steps[i] == nil {
				steps[i] = make([]uint8, vocab.HLLRegisters)
			}
			steps[i][reg] = max(steps[i][reg], r)
		}
	})
	if err != nil {
		return nil, err
	}
	ans := &distinctAnswer{period: periodOf(q.from, q.to), Cells: len(q.area.cells), StdError: vocab.HLLStdError, remoteNote: src.note()}
	area := rel.Area(q.area.ranges)
	estimate := func(regs []uint8, from, to int64) (*int64, bool) {
		v := int64(0)
		if regs != nil {
			v = int64(vocab.EstimateDistinct(regs) + 0.5)
		}
		v, ok := rel.Count(privacy.Figure{Metric: vocab.DistinctCards, Area: area, From: from, To: to}, v)
		if !ok {
			return nil, true
		}
		return &v, false
	}
	ans.Distinct, ans.Suppressed = estimate(total, q.from, q.to)
	for i, regs := range steps {
		from := q.from + int64(i)*q.step
		p := distinct{Time: from * 60}
		p.Distinct, p.Suppressed = estimate(regs, from, min(from+q.step, q.to))
		ans.Points = append(ans.Points, p)
	}
	return ans, nil
}
