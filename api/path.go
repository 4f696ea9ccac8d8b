package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

// maxPaths bounds the candidate paths of one path-density request.
const maxPaths = 100

// pathDensityRequest is the body of POST /api/v1/path/density.
type pathDensityRequest struct {
	Paths []struct {
		ID   string          `json:"id"`
		Path json.RawMessage `json:"path"`
	} `json:"paths"`
	Width  float64         `json:"width"`
	Metric string          `json:"metric"`
	Window json.RawMessage `json:"window"`
	Recent json.RawMessage `json:"recent"`
	Step   json.RawMessage `json:"step"`
	Res    json.RawMessage `json:"res"`
	At     json.RawMessage `json:"at"`
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
	TookMs float64       `json:"took_ms"`
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

// pathDensity serves POST /api/v1/path/density: for each candidate path,
// widened into a corridor, the current density (the window ending now),
// the recent one per step, and its busiest cell. Corridors come from the
// cache and each path costs one scan, so route planners can ask many
// times a second.
func (s *Server) pathDensity(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	var req pathDensityRequest
	if err := decodeBody(ctx, &req); err != nil {
		fail(ctx, err)
		return
	}
	q := s.bodyQuery(map[string]json.RawMessage{"window": req.Window, "recent": req.Recent, "step": req.Step, "res": req.Res, "at": req.At})
	q.args.Set("metric", req.Metric)
	metric, err := q.metric()
	if err != nil {
		fail(ctx, err)
		return
	}
	if len(req.Paths) == 0 || len(req.Paths) > maxPaths {
		fail(ctx, &paramError{"paths", fmt.Sprintf("%d paths", len(req.Paths)), fmt.Sprintf("want 1 to %d paths", maxPaths)})
		return
	}
	window, err := q.minutes("window", 15*time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	recent, err := q.minutes("recent", time.Hour)
	if err != nil {
		fail(ctx, err)
		return
	}
	step, err := q.minutes("step", 5*time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	if recent%step != 0 || recent/step > maxPoints {
		fail(ctx, &paramError{"recent", q.str("recent"), fmt.Sprintf("must be a multiple of the step %dm, at most %d steps", step, maxPoints)})
		return
	}
	to, err := q.minute("at", q.now.Add(time.Minute))
	if err != nil {
		fail(ctx, err)
		return
	}
	from := to - max(window, recent)
	ans := pathDensityAnswer{
		Metric: metric, At: time.Unix(to*60, 0).UTC(),
		Window: (time.Duration(window) * time.Minute).String(),
		Recent: (time.Duration(recent) * time.Minute).String(),
		Step:   (time.Duration(step) * time.Minute).String(),
		Paths:  make([]pathDensity, len(req.Paths)),
	}
	for i, p := range req.Paths {
		c, err := s.parseCorridor(q, fmt.Sprintf("paths[%d].path", i), p.Path, req.Width, nil)
		if err != nil {
			fail(ctx, err)
			return
		}
		loc, err := c.Locator(s.Res)
		if err != nil {
			fail(ctx, corridorParamError("", err))
			return
		}
		ans.Res = c.Res
		pd := pathDensity{ID: p.ID, Cells: len(c.Cells), Length: roundDm(c.Length), Recent: make([][2]int64, recent/step)}
		for j := range pd.Recent {
			pd.Recent[j][0] = (to - recent + int64(j)*step) * 60
		}
		cellSums := make([]int64, len(c.Cells))
		lastBase, lastCell := uint64(0), -1
		err = s.Store.Scan(storage.TierMinute, metric, storageRanges(loc.Ranges), from, to, func(cell uint64, minute, v int64) {
			if cell != lastBase || lastCell < 0 {
				lastBase = cell
				lastCell, _ = loc.Find(cell)
			}
			if lastCell < 0 {
				return
			}
			if minute >= to-window {
				pd.Current += v
				cellSums[lastCell] += v
			}
			if minute >= to-recent {
				pd.Recent[(minute-(to-recent))/step][1] += v
			}
		})
		if err != nil {
			fail(ctx, err)
			return
		}
		for j, v := range cellSums {
			if v > 0 && (pd.MaxCell == nil || v > pd.MaxCell.Value) {
				pd.MaxCell = &CellValue{Cell: c.Cells[j].String(), Value: v}
			}
		}
		ans.Paths[i] = pd
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}
