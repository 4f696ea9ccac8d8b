package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// promQuery is a query of Prometheus' HTTP API in the subset flowd
// answers (docs/api.md, "Prometheus-compatible queries"): a metric over
// an area, per cell or summed, per step.
type promQuery struct {
	metric   string
	area     *area
	byCell   bool
	from, to int64 // unix minutes: the steps' windows cover [from, to)
	step     int64 // minutes
	instant  bool
	// scalar is the value of a query without a metric (Grafana tests a
	// data source with 1+1), nil for the others.
	scalar *float64
}

// promAnswer is Prometheus' answer to a query, with flowd's took_ms and
// privacy note beside it.
type promAnswer struct {
	Status string   `json:"status"`
	Data   promData `json:"data"`
	answer.Took
	released
}

type promData struct {
	ResultType string `json:"resultType"`
	// Result is []promSeries, or a scalar's [time, value].
	Result any `json:"result"`
}

// promSeries is one series of a matrix (Values) or vector (Value): pairs
// of unix seconds and the value as text, as Prometheus writes them.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values []promPoint       `json:"values,omitempty"`
	Value  []any             `json:"value,omitempty"`
}

// promPoint is a point of a matrix: [t, "v"] in JSON. A long range's
// points were [2]any, each boxing its time and its value's text (three
// allocations, and encoding/json's reflection over each): 570 ns a point
// (BenchmarkPromAnswerJSON); promAnswer.AppendJSON writes these itself.
type promPoint struct {
	t, v int64
	text string // the value as text where it is not a count (a scalar's)
}

// MarshalJSON is what AppendJSON writes, for encoding/json.
func (p promPoint) MarshalJSON() ([]byte, error) { return p.appendJSON(nil), nil }

func (p promPoint) appendJSON(dst []byte) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, p.t, 10)
	dst = append(dst, ',', '"')
	if p.text != "" {
		dst = append(dst, p.text...) // a float's text: nothing to escape
	} else {
		dst = strconv.AppendInt(dst, p.v, 10)
	}
	return append(dst, '"', ']')
}

// AppendJSON writes a as encoding/json does (answer.Appender), the points
// of a matrix by hand: json.Marshal writes the answer without its result,
// which goes where that wrote null.
func (a *promAnswer) AppendJSON(dst []byte) ([]byte, error) {
	const hole = `"result":null`
	series, ok := a.Data.Result.([]promSeries)
	rest := *a
	rest.Data.Result = nil
	head, err := json.Marshal(&rest)
	var i int
	if ok && err == nil {
		i = bytes.Index(head, []byte(hole))
	}
	if !ok || err != nil || i < 0 || bytes.Contains(head[i+len(hole):], []byte(hole)) {
		b, err := json.Marshal(a)
		return append(dst, b...), err
	}
	dst = append(dst, head[:i+len(hole)-len("null")]...)
	if series == nil {
		dst = append(dst, "null"...)
	} else if dst, err = appendPromSeries(dst, series); err != nil {
		return dst, err
	}
	return append(dst, head[i+len(hole):]...), nil
}

// appendPromSeries appends series as encoding/json writes them.
func appendPromSeries(dst []byte, series []promSeries) ([]byte, error) {
	dst = append(dst, '[')
	for i, s := range series {
		if i > 0 {
			dst = append(dst, ',')
		}
		m, err := json.Marshal(s.Metric) // keys sorted and escaped as in a struct
		if err != nil {
			return dst, err
		}
		dst = append(dst, `{"metric":`...)
		dst = append(dst, m...)
		if len(s.Values) > 0 {
			dst = append(dst, `,"values":[`...)
			for j, p := range s.Values {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = p.appendJSON(dst)
			}
			dst = append(dst, ']')
		}
		if len(s.Value) > 0 {
			v, err := json.Marshal(s.Value)
			if err != nil {
				return dst, err
			}
			dst = append(dst, `,"value":`...)
			dst = append(dst, v...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// promInstantWindow is what an instant query sums: the minutes before its
// time, as density's default window.
const promInstantWindow = 5

// parsePromRange reads GET or POST /api/v1/query_range: query, start,
// end and step. The value at t is the sum over the step ending at t.
func (s *Server) parsePromRange(q *query) (pq promQuery, err error) {
	if err := s.parsePromQL(q, &pq); err != nil {
		return pq, err
	}
	start, err := q.minute("start", q.now.Add(-time.Hour))
	if err != nil {
		return pq, err
	}
	end, err := q.minute("end", q.now)
	if err != nil {
		return pq, err
	}
	if pq.step, err = promStep(q); err != nil {
		return pq, err
	}
	if end < start {
		return pq, &paramError{Param: "start", Value: q.str("start"), Reason: "must not be after end"}
	}
	pq.from, pq.to = start-pq.step, end
	pq.to = pq.from + (pq.to-pq.from)/pq.step*pq.step // whole steps
	return pq, s.checkProm(q, &pq)
}

// parsePromInstant reads GET or POST /api/v1/query: query and time. The
// value is the sum over the promInstantWindow minutes before time.
func (s *Server) parsePromInstant(q *query) (pq promQuery, err error) {
	if err := s.parsePromQL(q, &pq); err != nil {
		return pq, err
	}
	if pq.to, err = q.minute("time", q.now); err != nil {
		return pq, err
	}
	pq.from, pq.step, pq.instant = pq.to-promInstantWindow, promInstantWindow, true
	return pq, s.checkProm(q, &pq)
}

// checkProm coarsens the query to what the caller may see and bounds its
// cost.
func (s *Server) checkProm(q *query, pq *promQuery) error {
	if pq.scalar != nil {
		_, err := q.steps(pq.from, pq.to, pq.step, maxPoints, "per query: use a larger step")
		return err
	}
	if err := q.resAllowed(pq.metric, pq.area.res, "query"); err != nil {
		return err
	}
	pq.from, pq.to, pq.step = q.rel.Span(pq.metric, pq.from, pq.to, pq.step)
	n, err := q.steps(pq.from, pq.to, pq.step, maxPoints, "per query: use a larger step")
	if err != nil {
		return err
	}
	figures := n
	if pq.byCell {
		figures *= int64(len(pq.area.cells))
	}
	tier := s.Store.TierFor(pq.from, pq.step)
	cost := s.areaCost(pq.area, tierSpan{tier: tier, from: pq.from, to: pq.to}, pq.metric, figures)
	return s.checkCost(cost, withHourStep(adviceProm, tier, "step=3600 with start on the hour"))
}

// promStep reads step as Prometheus takes it, seconds or a duration, in
// whole minutes.
func promStep(q *query) (int64, error) {
	v := q.str("step")
	if v == "" {
		return 0, &paramError{Param: "step", Reason: "required"}
	}
	d, err := time.ParseDuration(v)
	if secs, ferr := strconv.ParseFloat(v, 64); ferr == nil && !math.IsInf(secs, 0) && !math.IsNaN(secs) {
		d, err = time.Duration(secs*float64(time.Second)), nil
	}
	if err != nil || d < time.Minute || d%time.Minute != 0 {
		return 0, &paramError{Param: "step", Value: v, Reason: "want whole minutes, as seconds (60) or a duration (1m): flowd's buckets are minutes"}
	}
	return int64(d / time.Minute), nil
}

// parsePromQL reads the query parameter: metric{label="value",...},
// sum(...) or sum by (cell) (...), whose labels name the area as the
// query parameters of /api/v1/series do (cell or cells, site, bbox,
// polygon, res).
func (s *Server) parsePromQL(q *query, pq *promQuery) error {
	text, err := q.required("query")
	if err != nil {
		return err
	}
	bad := func(reason string) error { return &paramError{Param: "query", Value: text, Reason: reason} }
	expr, err := metricsql.Parse(text)
	if err != nil {
		return bad(err.Error())
	}
	if n, ok := expr.(*metricsql.NumberExpr); ok {
		pq.scalar = &n.N
		return nil
	}
	pq.byCell = true
	if ag, ok := expr.(*metricsql.AggrFuncExpr); ok {
		switch {
		case ag.Name != "sum" || len(ag.Args) != 1:
			return bad(fmt.Sprintf("%s(...) is not answered: flowd takes metric{...}, sum(metric{...}) and sum by (cell) (metric{...})", ag.Name))
		case ag.Modifier.Op == "" || ag.Modifier.Op == "by" && len(ag.Modifier.Args) == 0:
			pq.byCell = false
		case ag.Modifier.Op != "by" || !slices.Equal(ag.Modifier.Args, []string{"cell"}):
			return bad("only sum by (cell) groups: a cell is flowd's only series label")
		}
		expr = ag.Args[0]
	}
	me, ok := expr.(*metricsql.MetricExpr)
	if !ok || len(me.LabelFilterss) != 1 {
		return bad("flowd takes metric{...}, sum(metric{...}) and sum by (cell) (metric{...}): no functions, operators, ranges or or-groups")
	}
	sel := &query{args: &fasthttp.Args{}, now: q.now, rel: q.rel, store: q.store}
	for _, lf := range me.LabelFilterss[0] {
		name := lf.Label
		switch {
		case lf.IsNegative || lf.IsRegexp:
			return bad(fmt.Sprintf("label %s: only = matches", name))
		case name == "__name__":
			name = "metric"
		case name == "cell":
			name = "cells"
		case !slices.Contains([]string{"cells", "site", "bbox", "polygon", "res"}, name):
			return bad(fmt.Sprintf("unknown label %s%s: the area is named by cell, site, bbox or polygon, and res", name, answer.DidYouMean(name, []string{"cell", "site", "bbox", "polygon", "res"})))
		}
		sel.args.Set(name, lf.Value)
	}
	if pq.metric, err = sel.metric(); err != nil {
		return bad(err.Error())
	}
	if pq.area, err = s.parseArea(sel); err != nil {
		return bad(err.Error())
	}
	return nil
}

// promQuery answers a query: per step, the sum over the area or per cell
// at the area's resolution, each a figure of the release.
func (s *Server) promQuery(pq promQuery, rel *privacy.Release) (*promAnswer, error) {
	n := (pq.to - pq.from) / pq.step
	if pq.scalar != nil {
		return promScalar(pq, n), nil
	}
	tier := s.Store.TierFor(pq.from, pq.step)
	result := []promSeries{}
	ans := &promAnswer{Status: "success", Data: promData{ResultType: "matrix"}}
	if pq.instant {
		ans.Data.ResultType = "vector"
	}
	sums := map[h3.Cell][]int64{}
	if !pq.byCell {
		sums[0] = make([]int64, n)
		// As a series query: VictoriaMetrics and the peers answer their
		// part on a query node.
		sq := seriesQuery{metric: pq.metric, family: pq.metric, area: pq.area, from: pq.from, to: pq.to, step: pq.step}
		if _, _, err := s.sumSteps(tier, sq, sums[0]); err != nil {
			return nil, err
		}
	} else if err := s.sumStepsByCell(tier, pq, n, sums); err != nil {
		return nil, err
	}
	cells := slices.Sorted(func(yield func(h3.Cell) bool) {
		for c := range sums {
			if !yield(c) {
				return
			}
		}
	})
	for _, c := range cells {
		series := promSeries{Metric: map[string]string{}}
		if !pq.instant {
			series.Values = make([]promPoint, 0, len(sums[c]))
		}
		area := rel.Area(pq.area.ranges)
		if pq.byCell {
			series.Metric = map[string]string{"__name__": pq.metric, "cell": c.String()}
			area = rel.CellArea(c)
		}
		for i, v := range sums[c] {
			from := pq.from + int64(i)*pq.step
			v, ok := rel.Count(privacy.Figure{Metric: pq.metric, Area: area, From: from, To: from + pq.step}, v)
			if !ok {
				continue
			}
			if pq.instant {
				series.Value = []any{(from + pq.step) * 60, strconv.FormatInt(v, 10)}
			} else {
				series.Values = append(series.Values, promPoint{t: (from + pq.step) * 60, v: v})
			}
		}
		if len(series.Values) > 0 || series.Value != nil {
			result = append(result, series)
		}
	}
	ans.Data.Result = result
	return ans, nil
}

// promScalar answers a query that is a number: a scalar at an instant,
// the number at every step of a range.
func promScalar(pq promQuery, n int64) *promAnswer {
	v := strconv.FormatFloat(*pq.scalar, 'f', -1, 64)
	if pq.instant {
		return &promAnswer{Status: "success", Data: promData{ResultType: "scalar", Result: []any{pq.to * 60, v}}}
	}
	series := promSeries{Metric: map[string]string{}, Values: make([]promPoint, 0, n)}
	for i := range n {
		series.Values = append(series.Values, promPoint{t: pq.from*60 + (i+1)*pq.step*60, text: v})
	}
	return &promAnswer{Status: "success", Data: promData{ResultType: "matrix", Result: []promSeries{series}}}
}

// sumStepsByCell sums the query's metric per cell of its resolution and
// per step, leaving out cells whose every step is zero.
func (s *Server) sumStepsByCell(tier storage.Tier, pq promQuery, n int64, sums map[h3.Cell][]int64) error {
	var lastBase uint64
	var last []int64
	err := s.sources(false).scan(tier, pq.metric, pq.area.ranges, pq.from, pq.to, func(cell uint64, minute, v int64) {
		if cell != lastBase || last == nil {
			lastBase = cell
			c := h3.Cell(cell)
			if pq.area.res < s.Res {
				c = c.Parent(pq.area.res)
			}
			if last = sums[c]; last == nil {
				last = make([]int64, n)
				sums[c] = last
			}
		}
		last[(minute-pq.from)/pq.step] += v
	})
	for c, vs := range sums {
		if !slices.ContainsFunc(vs, func(v int64) bool { return v != 0 }) {
			delete(sums, c)
		}
	}
	return err
}
