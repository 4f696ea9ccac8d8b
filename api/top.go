package api

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// topAnswer is the reply of GET /api/v1/top.
type topAnswer struct {
	Metric string    `json:"metric"`
	Res    int       `json:"res"`
	Tier   string    `json:"tier"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	K      int       `json:"k"`
	// Seen is how many cells had a non-zero sum.
	Seen   int       `json:"seen"`
	Cells  []topCell `json:"cells"`
	TookMs float64   `json:"took_ms"`
}

// topCell is one of the hottest cells, with its centre.
type topCell struct {
	Cell  string  `json:"cell"`
	Value int64   `json:"value"`
	Lat   float64 `json:"lat"`
	Lng   float64 `json:"lng"`
}

// top serves GET /api/v1/top: the k cells with the largest sums of a
// metric over a window ending now (or from..to), at a resolution, over
// everything or over an area (cells, site, bbox or polygon). Ties go to
// the lower cell id so that answers are stable.
func (s *Server) top(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := query{args: requestArgs(ctx), now: s.Now()}
	metric, err := q.metric()
	if err != nil {
		fail(ctx, err)
		return
	}
	k, err := q.intParam("k", 10, 1, 10000)
	if err != nil {
		fail(ctx, err)
		return
	}
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		fail(ctx, err)
		return
	}
	ranges := vocab.Everywhere
	if q.str("cells") != "" || q.str("site") != "" || q.str("bbox") != "" || q.str("polygon") != "" {
		a, err := s.parseArea(q)
		if err != nil {
			fail(ctx, err)
			return
		}
		ranges, res = a.ranges, a.res
	}
	window, err := q.minutes("window", 15*time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	from, to, err := q.span(window)
	if err != nil {
		fail(ctx, err)
		return
	}
	tier := s.Store.TierFor(from, to-from)
	sums := map[h3.Cell]int64{}
	var lastBase uint64
	var lastCell h3.Cell
	err = s.Store.Scan(tier, metric, ranges, from, to, func(cell uint64, _, v int64) {
		if cell != lastBase || lastCell == 0 {
			lastBase, lastCell = cell, h3.Cell(cell)
			if res < s.Res {
				lastCell = lastCell.Parent(res)
			}
		}
		sums[lastCell] += v
	})
	if err != nil {
		fail(ctx, err)
		return
	}
	type cellSum struct {
		cell h3.Cell
		sum  int64
	}
	all := make([]cellSum, 0, len(sums))
	for c, v := range sums {
		if v != 0 {
			all = append(all, cellSum{c, v})
		}
	}
	slices.SortFunc(all, func(a, b cellSum) int {
		if c := cmp.Compare(b.sum, a.sum); c != 0 {
			return c
		}
		return cmp.Compare(a.cell, b.cell)
	})
	ans := topAnswer{
		Metric: metric, Res: res, Tier: tier.String(), K: k, Seen: len(all),
		From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(),
		Cells: make([]topCell, min(k, len(all))),
	}
	for i := range ans.Cells {
		ll := all[i].cell.LatLng()
		ans.Cells[i] = topCell{Cell: all[i].cell.String(), Value: all[i].sum, Lat: ll.Lat, Lng: ll.Lng}
	}
	if wantsCSV(ctx) {
		buf := []byte("rank,cell,value,lat,lng\n")
		for i, c := range ans.Cells {
			buf = strconv.AppendInt(buf, int64(i+1), 10)
			buf = append(buf, ',')
			buf = append(buf, c.Cell...)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, c.Value, 10)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, c.Lat, 'f', 6, 64)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, c.Lng, 'f', 6, 64)
			buf = append(buf, '\n')
		}
		ctx.SetContentType("text/csv")
		ctx.SetBody(buf)
		return
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}
