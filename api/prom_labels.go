package api

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// promLabelNames are the labels a query of flowd's Prometheus subset may
// name: the metric, and the area as /api/v1/series takes it.
var promLabelNames = []string{"__name__", "bbox", "cell", "polygon", "res", "site"}

// promList is Prometheus' answer to a listing: label names, label values
// or series (label sets).
type promList struct {
	Status string `json:"status"`
	Data   any    `json:"data"`
	answer.Took
}

// promLabels serves GET and POST /api/v1/labels, Prometheus' label names,
// which Grafana's metric browser asks first. Every flowd metric takes the
// same labels, so match[] only narrows the answer to nothing when it
// matches no metric.
func (s *Server) promLabels(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := s.newQuery(ctx)
	names, err := s.promMatch(q)
	if err != nil {
		answer.Fail(ctx, err)
		return
	}
	out := []string{}
	if len(names) > 0 {
		out = promLabelNames
	}
	s.promListed(ctx, q, start, out)
}

// promLabelValues serves GET /api/v1/label/{name}/values: the metrics
// flowd keeps for __name__ (those matching match[]), the sites' ids for
// site, the resolutions for res. cell, bbox and polygon take any cell or
// shape, so they list none.
func (s *Server) promLabelValues(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := s.newQuery(ctx)
	label, _ := ctx.UserValue("name").(string)
	names, err := s.promMatch(q)
	if err != nil {
		answer.Fail(ctx, err)
		return
	}
	out := []string{}
	switch label {
	case "__name__":
		out = names
	case "site":
		if len(names) > 0 {
			for _, st := range s.Registry.Sites() {
				out = append(out, st.ID)
			}
			slices.Sort(out)
		}
	case "res":
		if len(names) > 0 {
			for r := 0; r <= s.Res; r++ {
				out = append(out, strconv.Itoa(r))
			}
		}
	case "cell", "bbox", "polygon":
	default:
		answer.Fail(ctx, &paramError{Param: "name", Value: label, Reason: "unknown label; flowd's are " + fmt.Sprint(promLabelNames) + answer.DidYouMean(label, promLabelNames)})
		return
	}
	s.promListed(ctx, q, start, out)
}

// promSeriesList serves /api/v1/series when it is asked as Prometheus'
// series API (with match[]): one label set per metric matched, with the
// area labels the selector named.
func (s *Server) promSeriesList(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := s.newQuery(ctx)
	sets := []map[string]string{}
	for _, sel := range q.args.PeekMulti("match[]") {
		m, err := s.promSelector(string(sel))
		if err != nil {
			answer.Fail(ctx, err)
			return
		}
		for _, name := range m.names {
			set := map[string]string{"__name__": name}
			for k, v := range m.labels {
				set[k] = v
			}
			sets = append(sets, set)
		}
	}
	if err := promTimes(q); err != nil {
		answer.Fail(ctx, err)
		return
	}
	ans := &promList{Status: "success", Data: sets}
	ans.Stamp(start)
	answer.JSON(ctx, fasthttp.StatusOK, ans)
}

// promListed answers a listing, limited by limit.
func (s *Server) promListed(ctx *fasthttp.RequestCtx, q *query, start time.Time, out []string) {
	if err := promTimes(q); err != nil {
		answer.Fail(ctx, err)
		return
	}
	if v := q.str("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			answer.Fail(ctx, &paramError{Param: "limit", Value: v, Reason: "want a whole number, 0 for no limit"})
			return
		}
		if n > 0 && len(out) > n {
			out = out[:n]
		}
	}
	ans := &promList{Status: "success", Data: out}
	ans.Stamp(start)
	answer.JSON(ctx, fasthttp.StatusOK, ans)
}

// promTimes checks start and end of a listing. flowd lists every metric
// it keeps whatever the span, so they narrow nothing; a malformed or
// inverted one is still an error.
func promTimes(q *query) error {
	from, err := q.minute("start", time.Unix(0, 0))
	if err != nil {
		return err
	}
	to, err := q.minute("end", q.now)
	if err != nil {
		return err
	}
	if q.str("start") != "" && q.str("end") != "" && to < from {
		return &paramError{Param: "start", Value: q.str("start"), Reason: "must not be after end"}
	}
	return nil
}

// promMatch returns the metrics the match[] selectors name, all of them
// without one.
func (s *Server) promMatch(q *query) ([]string, error) {
	sels := q.args.PeekMulti("match[]")
	if len(sels) == 0 {
		return s.Store.Metrics(), nil
	}
	var names []string
	for _, sel := range sels {
		m, err := s.promSelector(string(sel))
		if err != nil {
			return nil, err
		}
		for _, n := range m.names {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// promMatched is what a series selector names: metrics, and area labels.
type promMatched struct {
	names  []string
	labels map[string]string
}

// promSelector reads a series selector of match[]: metric{...} or
// {__name__=~"..."}, whose __name__ may be matched with =, !=, =~ or !~
// and whose other labels are flowd's area labels, matched with =.
func (s *Server) promSelector(text string) (promMatched, error) {
	bad := func(reason string) error { return &paramError{Param: "match[]", Value: text, Reason: reason} }
	expr, err := metricsql.Parse(text)
	if err != nil {
		return promMatched{}, bad(err.Error())
	}
	me, ok := expr.(*metricsql.MetricExpr)
	if !ok || len(me.LabelFilterss) != 1 {
		return promMatched{}, bad("want a series selector, metric{...} or {__name__=~\"...\"}: no functions, operators or or-groups")
	}
	m := promMatched{names: s.Store.Metrics(), labels: map[string]string{}}
	for _, lf := range me.LabelFilterss[0] {
		if lf.Label == "__name__" {
			keep := func(n string) bool { return n == lf.Value }
			if lf.IsRegexp {
				re, err := regexp.Compile("^(?:" + lf.Value + ")$")
				if err != nil {
					return promMatched{}, bad(err.Error())
				}
				keep = re.MatchString
			}
			m.names = slices.DeleteFunc(m.names, func(n string) bool { return keep(n) == lf.IsNegative })
			continue
		}
		switch {
		case !slices.Contains(promLabelNames, lf.Label):
			return promMatched{}, bad(fmt.Sprintf("unknown label %s%s: the area is named by cell, site, bbox or polygon, and res", lf.Label, answer.DidYouMean(lf.Label, promLabelNames)))
		case lf.IsNegative || lf.IsRegexp:
			return promMatched{}, bad(fmt.Sprintf("label %s: only = matches", lf.Label))
		}
		m.labels[lf.Label] = lf.Value
	}
	slices.Sort(m.names)
	return m, nil
}

// promSeriesParams are the parameters of /api/v1/series as Prometheus'
// series API.
var promSeriesParams = []string{"match[]", "start", "end", "limit"}

// seriesOrList serves /api/v1/series: flowd's series (metric, area, from,
// to, step), or with match[] Prometheus' series API, which Grafana's
// metric browser calls at the same path. The two take different
// parameters, and one given to the other is refused by name.
func (s *Server) seriesOrList(flowd fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		args := s.newQuery(ctx).args
		if args.Has("match[]") {
			for k := range args.All() {
				if name := string(k); !slices.Contains(promSeriesParams, name) {
					answer.Fail(ctx, &paramError{Param: name, Value: string(args.Peek(name)), Reason: "not taken with match[]: Prometheus' series API takes match[], start, end and limit"})
					return
				}
			}
			s.promSeriesList(ctx)
			return
		}
		for _, name := range []string{"start", "end", "limit"} {
			if args.Has(name) {
				answer.Fail(ctx, &paramError{Param: name, Value: string(args.Peek(name)), Reason: "taken only with match[] (Prometheus' series API); flowd's series take from, to and step"})
				return
			}
		}
		flowd(ctx)
	}
}
