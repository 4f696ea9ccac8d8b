package api

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/valyala/fasthttp"
)

// paramError is a bad query parameter, answered 400.
type paramError = answer.ParamError

// query is one request to a query endpoint as its parser reads it: its
// parameters, the clock, the form asked for, and the privacy layer's
// release of its answer, exact for an admin.
type query struct {
	args *fasthttp.Args
	now  time.Time
	body []byte
	// csv and geoJSON say that the caller asked for an answer in that
	// form: format=csv (or, without format, Accept: text/csv), geojson=1.
	csv, geoJSON bool
	rel          *privacy.Release
	// store answers which metrics are known, and history those
	// VictoriaMetrics holds.
	store   *storage.Store
	history *History
}

// newQuery reads a request's parameters: those of the URL, and for a POST
// those of its form body too, so that a long cell list or polygon need not
// fit in a URL.
func (s *Server) newQuery(ctx *fasthttp.RequestCtx) *query {
	q := &query{args: ctx.QueryArgs(), now: s.Now(), body: ctx.PostBody(), store: s.Store, history: s.History}
	q.rel = s.Privacy.Exact()
	if RoleOf(ctx) < RoleAdmin {
		q.rel = s.Privacy.For(callerOf(ctx), q.now)
	}
	if ctx.IsPost() {
		var args fasthttp.Args
		ctx.QueryArgs().CopyTo(&args)
		for k, v := range ctx.PostArgs().All() {
			args.AddBytesKV(k, v)
		}
		q.args = &args
	}
	if f := q.str("format"); f != "" {
		q.csv = f == "csv"
	} else {
		q.csv = string(ctx.Request.Header.Peek("Accept")) == "text/csv"
	}
	q.geoJSON = q.str("geojson") == "1" || q.str("geojson") == "true"
	return q
}

func (q *query) str(name string) string { return string(q.args.Peek(name)) }

func (q *query) required(name string) (string, error) {
	v := q.str(name)
	if v == "" {
		return "", &paramError{Param: name, Reason: "required"}
	}
	return v, nil
}

// metric returns the metric parameter of a query that sums buckets: a
// known metric (one every flowd keeps, or one data made, such as a
// detector class's), and not a sketch's registers, which only
// /api/v1/distinct reads.
func (q *query) metric() (string, error) {
	m, err := q.required("metric")
	switch {
	case err != nil:
	case vocab.KindOf(m) == vocab.Sketch:
		err = &paramError{Param: "metric", Value: m, Reason: "holds sketch registers, not counts: ask /api/v1/distinct"}
	case vocab.IsGrouped(m):
		err = &paramError{Param: "metric", Value: m, Reason: "is a rider group's family: ask metric=" + vocab.BaseMetric(m) + " with group="}
	case vocab.IsPerEntity(m):
		err = &paramError{Param: "metric", Value: m, Reason: "is kept for sensor= and station= only: ask /api/v1/series?metric=" + vocab.BaseMetric(m) + " with one of them"}
	case !vocab.IsFixed(m):
		if _, ok := q.store.LookupMetric(m); !ok && !q.history.knows(m) {
			err = &paramError{Param: "metric", Value: m, Reason: "unknown metric" + answer.DidYouMean(m, knownMetrics(q.store)) + ": no data was ever stored under it (GET /api/v1/metrics lists the metrics with data)"}
		}
	}
	return m, err
}

// knownMetrics lists the metrics a query may name: those every flowd
// keeps and those data made, without sketches.
func knownMetrics(st *storage.Store) []string {
	names := vocab.FixedMetrics()
	for _, m := range st.Metrics() {
		if !vocab.IsFixed(m) {
			names = append(names, m)
		}
	}
	return slices.DeleteFunc(names, func(m string) bool {
		return vocab.KindOf(m) == vocab.Sketch || vocab.IsPerEntity(m) || vocab.IsGrouped(m)
	})
}

// group reads the group parameter: "" when absent, else a rider group
// that data was stored for (-rider-groups).
func (q *query) group() (string, error) {
	g := q.str("group")
	if g == "" {
		return "", nil
	}
	for _, m := range []string{vocab.SwipesIn, vocab.SwipesOut, vocab.Trips} {
		if _, ok := q.store.LookupMetric(vocab.InGroup(m, g)); ok || q.history.knows(vocab.InGroup(m, g)) {
			return g, nil
		}
	}
	return "", &paramError{Param: "group", Value: g, Reason: "no rider group of this name has data (flowd serve -rider-groups names them)"}
}

// minute parses a time parameter (RFC 3339, unix seconds or milliseconds,
// "now", or a duration before now such as -24h) into unix minutes, or
// returns def when absent.
func (q *query) minute(name string, def time.Time) (int64, error) {
	v := q.str(name)
	if v == "" {
		return def.Unix() / 60, nil
	}
	if v == "now" {
		return q.now.Unix() / 60, nil
	}
	if v[0] == '-' {
		if d, err := time.ParseDuration(v[1:]); err == nil {
			return q.now.Add(-d).Unix() / 60, nil
		}
	}
	ms, err := vocab.ParseTime(v)
	if err != nil {
		return 0, &paramError{Param: name, Value: v, Reason: err.Error()}
	}
	return vocab.FloorDiv(ms, 60000), nil
}

// span parses from and to, in unix minutes: to defaults to the minute after
// now, from to back minutes before to; from must come before to.
func (q *query) span(back int64) (from, to int64, err error) {
	if to, err = q.minute("to", q.now.Add(time.Minute)); err != nil {
		return 0, 0, err
	}
	if from, err = q.minute("from", time.Unix((to-back)*60, 0)); err != nil {
		return 0, 0, err
	}
	return from, to, checkSpan(q, from, to)
}

// checkSpan refuses a span whose start is not before its end, naming
// both.
func checkSpan(q *query, from, to int64) error {
	if from >= to {
		return &paramError{Param: "from", Value: q.str("from"), Reason: fmt.Sprintf("must be before to (%s): from is %s, to %s",
			cmp.Or(q.str("to"), "now"), time.Unix(from*60, 0).UTC().Format(time.RFC3339), time.Unix(to*60, 0).UTC().Format(time.RFC3339))}
	}
	return nil
}

// minutes parses a Go duration parameter into whole minutes.
func (q *query) minutes(name string, def time.Duration) (int64, error) {
	v := q.str(name)
	d := def
	if v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, &paramError{Param: name, Value: v, Reason: "want a duration such as 1m, 15m or 1h"}
		}
	}
	if d < time.Minute || d%time.Minute != 0 {
		return 0, &paramError{Param: name, Value: v, Reason: "must be a whole number of minutes, at least 1m"}
	}
	return int64(d / time.Minute), nil
}

func (q *query) intParam(name string, def, lo, hi int) (int, error) {
	v := q.str(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &paramError{Param: name, Value: v, Reason: fmt.Sprintf("want an integer from %d to %d", lo, hi)}
	}
	return n, nil
}

// steps returns how many steps of step minutes cover [from, to), refusing
// more than max.
func (q *query) steps(from, to, step int64, max int64, what string) (int64, error) {
	n := (to - from + step - 1) / step
	if n > max {
		return 0, &paramError{Param: "step", Value: q.str("step"), Reason: fmt.Sprintf("%d steps; at most %d %s", n, max, what)}
	}
	return n, nil
}

// resAllowed refuses a resolution finer than the privacy layer releases
// the metric's figures at; param names the parameter that set it.
func (q *query) resAllowed(metric string, res int, param string) error {
	if ok, finest := q.rel.ResAllowed(metric, res); !ok {
		return &paramError{Param: param, Value: fmt.Sprint(res), Reason: fmt.Sprintf("figures of %s are released at resolution %d or coarser", metric, finest)}
	}
	return nil
}

// period is the time an answer covers, [From, To).
type period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func periodOf(from, to int64) period {
	return period{time.Unix(from*60, 0).UTC(), time.Unix(to*60, 0).UTC()}
}

// stepName writes a step of minutes as a Go duration.
func stepName(minutes int64) string { return (time.Duration(minutes) * time.Minute).String() }
