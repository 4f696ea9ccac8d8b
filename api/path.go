package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
)

// maxPaths bounds the candidate paths of one path-density request.
const maxPaths = 100

// pathDensityRequest is the body of POST /api/v1/path/density.
type pathDensityRequest struct {
	Paths []struct {
		ID   string          `json:"id"`
		Path json.RawMessage `json:"path"`
	} `json:"paths"`
	Width float64 `json:"width"`
	bodyParams
	Window json.RawMessage `json:"window"`
	Recent json.RawMessage `json:"recent"`
	At     json.RawMessage `json:"at"`
}

// pathDensityQuery asks for the density along candidate paths: the sum
// over the window and per step over the recent span, both ending at to.
type pathDensityQuery struct {
	metric               string
	paths                []candidatePath
	window, recent, step int64 // minutes
	to                   int64 // unix minutes
}

// candidatePath is one path of a path-density query, widened into a
// corridor.
type candidatePath struct {
	id       string
	corridor *geo.Corridor
	loc      *geo.CorridorLocator
}

// pathDensityAnswer is the reply of POST /api/v1/path/density.
type pathDensityAnswer struct {
	Metric string        `json:"metric"`
	Res    int           `json:"res"`
	At     time.Time     `json:"at"`
	Window string        `json:"window"`
	Recent string        `json:"recent"`
	Step   string        `json:"step"`
	Paths  []pathDensity `json:"paths"`
	remoteNote
	answer.Took
	released
}

// pathDensity is the density along one candidate path.
type pathDensity struct {
	ID     string  `json:"id"`
	Cells  int     `json:"cells"`
	Length float64 `json:"length_m"`
	// Current is the sum over the window ending at At.
	Current int64 `json:"current"`
	// Recent holds [unix seconds of the step's start, sum] over the recent
	// span ending at At.
	Recent [][2]int64 `json:"recent"`
	// MaxCell is the corridor cell with the largest sum over the window,
	// null when the window saw nothing.
	MaxCell *CellValue `json:"max_cell"`
}

// parsePathDensity reads the JSON body of POST /api/v1/path/density:
// paths, width, metric, window, recent, step, res and at.
func (s *Server) parsePathDensity(q *query) (pq pathDensityQuery, err error) {
	var req pathDensityRequest
	if err := decodeBody(q.body, &req); err != nil {
		return pq, err
	}
	bq := q.fromBody(req.bodyParams, map[string]json.RawMessage{"window": req.Window, "recent": req.Recent, "at": req.At})
	if pq.metric, err = bq.metric(); err != nil {
		return pq, err
	}
	if len(req.Paths) == 0 || len(req.Paths) > maxPaths {
		return pq, &paramError{Param: "paths", Value: fmt.Sprintf("%d paths", len(req.Paths)), Reason: fmt.Sprintf("want 1 to %d paths", maxPaths)}
	}
	if pq.window, err = bq.minutes("window", 15*time.Minute); err != nil {
		return pq, err
	}
	if pq.recent, err = bq.minutes("recent", time.Hour); err != nil {
		return pq, err
	}
	if pq.step, err = bq.minutes("step", 5*time.Minute); err != nil {
		return pq, err
	}
	pq.window, pq.recent, pq.step = q.rel.Step(pq.metric, pq.window), q.rel.Step(pq.metric, pq.recent), q.rel.Step(pq.metric, pq.step)
	if pq.recent%pq.step != 0 || pq.recent/pq.step > maxPoints {
		return pq, &paramError{Param: "recent", Value: bq.str("recent"), Reason: fmt.Sprintf("must be a multiple of the step %dm, at most %d steps", pq.step, maxPoints)}
	}
	if pq.to, err = bq.minute("at", q.now.Add(time.Minute)); err != nil {
		return pq, err
	}
	_, pq.to, _ = q.rel.Span(pq.metric, pq.to-max(pq.window, pq.recent), pq.to, 0)
	pq.paths = make([]candidatePath, len(req.Paths))
	for i, p := range req.Paths {
		c, loc, err := s.corridorOf(bq, fmt.Sprintf("paths[%d].path", i), p.Path, req.Width, nil)
		if err != nil {
			return pq, err
		}
		if err := q.resAllowed(pq.metric, c.Res, "res"); err != nil {
			return pq, err
		}
		pq.paths[i] = candidatePath{p.ID, c, loc}
	}
	return pq, nil
}

// pathDensity answers, for each candidate path widened into a corridor,
// the current density (the window ending at the query's time), the recent
// one per step, and its busiest cell, each a figure of the release.
// Corridors come from the cache and each path costs one scan, so route
// planners can ask many times a second.
func (s *Server) pathDensity(q pathDensityQuery, rel *privacy.Release) (*pathDensityAnswer, error) {
	ans := &pathDensityAnswer{
		Metric: q.metric, At: time.Unix(q.to*60, 0).UTC(),
		Window: stepName(q.window), Recent: stepName(q.recent), Step: stepName(q.step),
		Paths: make([]pathDensity, len(q.paths)),
	}
	src := s.sources(false)
	for i, p := range q.paths {
		pd, err := s.densityAlong(src, q, p, rel)
		if err != nil {
			return nil, err
		}
		ans.Res = p.corridor.Res
		ans.Paths[i] = pd
	}
	ans.remoteNote = src.note()
	return ans, nil
}

// densityAlong scans one candidate path's corridor.
func (s *Server) densityAlong(src *sources, q pathDensityQuery, p candidatePath, rel *privacy.Release) (pathDensity, error) {
	c := p.corridor
	pd := pathDensity{ID: p.id, Cells: len(c.Cells), Length: roundDm(c.Length), Recent: make([][2]int64, q.recent/q.step)}
	for j := range pd.Recent {
		pd.Recent[j][0] = (q.to - q.recent + int64(j)*q.step) * 60
	}
	cellSums := make([]int64, len(c.Cells))
	lastBase, lastCell := uint64(0), -1
	from := q.to - max(q.window, q.recent)
	err := src.scan(storage.TierMinute, q.metric, p.loc.Ranges, from, q.to, func(cell uint64, minute, v int64) {
		if cell != lastBase || lastCell < 0 {
			lastBase = cell
			lastCell, _ = p.loc.Find(cell)
		}
		if lastCell < 0 {
			return
		}
		if minute >= q.to-q.window {
			pd.Current += v
			cellSums[lastCell] += v
		}
		if minute >= q.to-q.recent {
			pd.Recent[(minute-(q.to-q.recent))/q.step][1] += v
		}
	})
	if err != nil {
		return pd, err
	}
	fig := func(a *privacy.Area, from, to int64) privacy.Figure {
		return privacy.Figure{Metric: q.metric, Area: a, From: from, To: to}
	}
	along := rel.Area(p.loc.Ranges)
	pd.Current, _ = rel.Count(fig(along, q.to-q.window, q.to), pd.Current)
	for j, r := range pd.Recent {
		from := r[0] / 60
		pd.Recent[j][1], _ = rel.Count(fig(along, from, from+q.step), r[1])
	}
	for j, v := range cellSums {
		if v == 0 {
			continue
		}
		v, ok := rel.Count(fig(rel.CellArea(c.Cells[j]), q.to-q.window, q.to), v)
		if ok && (pd.MaxCell == nil || v > pd.MaxCell.Value) {
			pd.MaxCell = &CellValue{Cell: c.Cells[j].String(), Value: v}
		}
	}
	return pd, nil
}
