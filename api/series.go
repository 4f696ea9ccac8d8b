package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// maxPoints bounds the steps of one series query.
const maxPoints = 100000

// seriesAnswer is the reply of GET /api/v1/series.
type seriesAnswer struct {
	Metric  string     `json:"metric"`
	Res     int        `json:"res"`
	Cells   int        `json:"cells"`
	Tier    string     `json:"tier"`
	From    time.Time  `json:"from"`
	To      time.Time  `json:"to"`
	Step    string     `json:"step"`
	Total   int64      `json:"total"`
	Points  [][2]int64 `json:"points"` // [unix seconds of the step's start, sum]
	TookMs  float64    `json:"took_ms"`
	Comment string     `json:"comment,omitempty"`
}

// series serves GET /api/v1/series: the per-step sums of a metric over an
// area. Coarser cells sum their base-resolution children.
func (s *Server) series(ctx *fasthttp.RequestCtx) {
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
	from, to, err := q.span(60)
	if err != nil {
		fail(ctx, err)
		return
	}
	step, err := q.minutes("step", time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	n := (to - from + step - 1) / step
	if n > maxPoints {
		fail(ctx, &paramError{"step", q.str("step"), fmt.Sprintf("%d steps; at most %d per query: use a larger step", n, maxPoints)})
		return
	}
	if err := s.checkCost(int64(len(a.cells)), n); err != nil {
		fail(ctx, err)
		return
	}
	tier := s.Store.TierFor(from, step)
	sums := make([]int64, n)
	if err = s.Store.SumSteps(tier, metric, a.ranges, from, to, step, sums); err != nil {
		fail(ctx, err)
		return
	}
	ans := seriesAnswer{
		Metric: metric, Res: a.res, Cells: len(a.cells), Tier: tier.String(),
		From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(),
		Step: (time.Duration(step) * time.Minute).String(), Points: make([][2]int64, n),
	}
	for i, v := range sums {
		ans.Points[i] = [2]int64{(from + int64(i)*step) * 60, v}
		ans.Total += v
	}
	if _, known := s.Store.LookupMetric(metric); !known {
		ans.Comment = "no data has been stored for this metric yet"
	}
	if wantsCSV(ctx) {
		buf := []byte("time,value\n")
		for _, p := range ans.Points {
			buf = time.Unix(p[0], 0).UTC().AppendFormat(buf, time.RFC3339)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, p[1], 10)
			buf = append(buf, '\n')
		}
		ctx.SetContentType("text/csv")
		ctx.SetBody(buf)
		return
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}

// wantsCSV reports whether the caller asked for CSV by format=csv or Accept.
func wantsCSV(ctx *fasthttp.RequestCtx) bool {
	if f := string(requestArgs(ctx).Peek("format")); f != "" {
		return f == "csv"
	}
	return string(ctx.Request.Header.Peek("Accept")) == "text/csv"
}
