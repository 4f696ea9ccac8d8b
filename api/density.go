package api

import (
	"slices"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// CellValue is one cell of a density answer.
type CellValue struct {
	Cell  string `json:"cell"`
	Value int64  `json:"value"`
}

// densityAnswer is the reply of GET /api/v1/density.
type densityAnswer struct {
	Metric string      `json:"metric"`
	Res    int         `json:"res"`
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Total  int64       `json:"total"`
	Cells  []CellValue `json:"cells"`
	TookMs float64     `json:"took_ms"`
}

// Density sums metric over [from, to) minutes per cell at resolution res
// for the base-resolution ranges given. It returns the cells with a
// non-zero sum, sorted by id.
func Density(st *storage.Store, metric string, ranges []vocab.CellRange, baseRes, res int, from, to int64) ([]h3.Cell, []int64, error) {
	sums := map[h3.Cell]int64{}
	var lastBase uint64
	var lastParent h3.Cell
	err := st.Scan(storage.TierMinute, metric, ranges, from, to, func(cell uint64, _, v int64) {
		if cell != lastBase {
			lastBase = cell
			lastParent = h3.Cell(cell)
			if res < baseRes {
				lastParent = lastParent.Parent(res)
			}
		}
		sums[lastParent] += v
	})
	if err != nil {
		return nil, nil, err
	}
	cells := make([]h3.Cell, 0, len(sums))
	for c, v := range sums {
		if v != 0 {
			cells = append(cells, c)
		}
	}
	slices.Sort(cells)
	vals := make([]int64, len(cells))
	for i, c := range cells {
		vals[i] = sums[c]
	}
	return cells, vals, nil
}

// density serves GET /api/v1/density: per-cell sums of a metric over a
// window ending at a time (now by default), at a resolution. With
// geojson=1 the answer is a GeoJSON FeatureCollection of cell boundaries.
func (s *Server) density(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := query{args: requestArgs(ctx), now: s.Now()}
	metric, err := q.metric()
	if err != nil {
		fail(ctx, err)
		return
	}
	a, err := s.parseArea(q)
	if err != nil {
		fail(ctx, err)
		return
	}
	window, err := q.minutes("window", 5*time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	to, err := q.minute("at", s.Now().Add(time.Minute))
	if err != nil {
		fail(ctx, err)
		return
	}
	from := to - window
	if q.str("from") != "" || q.str("to") != "" {
		if to, err = q.minute("to", s.Now().Add(time.Minute)); err != nil {
			fail(ctx, err)
			return
		}
		if from, err = q.minute("from", time.Unix((to-window)*60, 0)); err != nil {
			fail(ctx, err)
			return
		}
	}
	// The work is the base cells under the area times the minutes summed.
	base := int64(len(a.cells))
	for range s.Res - a.res {
		base *= 7
	}
	if err := s.checkCost(base, to-from); err != nil {
		fail(ctx, err)
		return
	}
	cells, vals, err := Density(s.Store, metric, a.ranges, s.Res, a.res, from, to)
	if err != nil {
		fail(ctx, err)
		return
	}
	if q.str("geojson") == "1" || q.str("geojson") == "true" {
		fvals := make([]float64, len(vals))
		for i, v := range vals {
			fvals[i] = float64(v)
		}
		ctx.SetContentType("application/geo+json")
		ctx.SetBody(geo.CellsFeatureCollection(nil, cells, fvals))
		return
	}
	ans := densityAnswer{Metric: metric, Res: a.res, From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(), Cells: make([]CellValue, len(cells))}
	for i, c := range cells {
		ans.Cells[i] = CellValue{c.String(), vals[i]}
		ans.Total += vals[i]
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}
