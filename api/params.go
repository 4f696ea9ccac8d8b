package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// paramError is a bad query parameter; it becomes a 400 naming the
// parameter and the value.
type paramError struct {
	Param, Value, Reason string
}

func (e *paramError) Error() string {
	return fmt.Sprintf("parameter %q: value %q: %s", e.Param, e.Value, e.Reason)
}

// requestArgs returns a query's parameters: those of the URL, and for a
// POST those of its form body too, so that a long cell list or polygon need
// not fit in a URL.
func requestArgs(ctx *fasthttp.RequestCtx) *fasthttp.Args {
	if !ctx.IsPost() {
		return ctx.QueryArgs()
	}
	var args fasthttp.Args
	ctx.QueryArgs().CopyTo(&args)
	for k, v := range ctx.PostArgs().All() {
		args.AddBytesKV(k, v)
	}
	return &args
}

type query struct {
	args *fasthttp.Args
	now  time.Time
}

func (q query) str(name string) string { return string(q.args.Peek(name)) }

func (q query) required(name string) (string, error) {
	v := q.str(name)
	if v == "" {
		return "", &paramError{name, "", "required"}
	}
	return v, nil
}

// metric returns the metric parameter of a query that sums buckets: not a
// sketch's registers, which only /api/v1/distinct reads.
func (q query) metric() (string, error) {
	m, err := q.required("metric")
	if err == nil && vocab.KindOf(m) == vocab.Sketch {
		err = &paramError{"metric", m, "holds sketch registers, not counts: ask /api/v1/distinct"}
	}
	return m, err
}

// minute parses a time parameter (RFC 3339, unix seconds or milliseconds,
// "now", or a duration before now such as -24h) into unix minutes, or
// returns def when absent.
func (q query) minute(name string, def time.Time) (int64, error) {
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
		return 0, &paramError{name, v, err.Error()}
	}
	return vocab.FloorDiv(ms, 60000), nil
}

// span parses from and to, in unix minutes: to defaults to the minute after
// now, from to back minutes before to; from must come before to.
func (q query) span(back int64) (from, to int64, err error) {
	if to, err = q.minute("to", q.now.Add(time.Minute)); err != nil {
		return 0, 0, err
	}
	if from, err = q.minute("from", time.Unix((to-back)*60, 0)); err != nil {
		return 0, 0, err
	}
	if from >= to {
		return 0, 0, &paramError{"from", q.str("from"), "must be before to"}
	}
	return from, to, nil
}

// minutes parses a Go duration parameter into whole minutes.
func (q query) minutes(name string, def time.Duration) (int64, error) {
	v := q.str(name)
	d := def
	if v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, &paramError{name, v, "want a duration such as 1m, 15m or 1h"}
		}
	}
	if d < time.Minute || d%time.Minute != 0 {
		return 0, &paramError{name, v, "must be a whole number of minutes, at least 1m"}
	}
	return int64(d / time.Minute), nil
}

func (q query) intParam(name string, def, lo, hi int) (int, error) {
	v := q.str(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &paramError{name, v, fmt.Sprintf("want an integer from %d to %d", lo, hi)}
	}
	return n, nil
}

// area is the set of cells a query covers: the cells at the query's
// resolution, and the base-resolution id ranges to scan.
type area struct {
	res    int
	cells  []h3.Cell
	ranges []vocab.CellRange
}

// maxAreaCells bounds the cells one query may name or cover.
const maxAreaCells = 200000

// parseArea reads one of cells, site, bbox or polygon, at the resolution
// res (the base one by default; cells keep their own).
func (s *Server) parseArea(q query) (*area, error) {
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		return nil, err
	}
	a := &area{res: res}
	switch {
	case q.str("cells") != "":
		v := q.str("cells")
		cells, err := geo.ParseCells(v)
		if err != nil {
			return nil, &paramError{"cells", v, err.Error()}
		}
		for _, c := range cells {
			if c.Resolution() > s.Res {
				return nil, &paramError{"cells", c.String(), fmt.Sprintf("resolution %d is finer than the base resolution %d", c.Resolution(), s.Res)}
			}
		}
		a.cells = cells
		if q.str("res") == "" && len(cells) > 0 {
			a.res = cells[0].Resolution()
		}
	case q.str("site") != "":
		id := q.str("site")
		site, ok := s.Registry.Site(id)
		if !ok {
			return nil, &paramError{"site", id, "unknown site"}
		}
		a.res = s.Res
		a.cells = append([]h3.Cell{site.Cell}, site.Cells...)
	case q.str("bbox") != "":
		v := q.str("bbox")
		b, err := geo.ParseBBox(v)
		if err != nil {
			return nil, &paramError{"bbox", v, err.Error()}
		}
		if a.cells, err = b.Cells(res, maxAreaCells); err != nil {
			return nil, &paramError{"bbox", v, err.Error()}
		}
	case q.str("polygon") != "":
		v := q.str("polygon")
		m, err := geo.ParseGeoJSONArea([]byte(v))
		if err != nil {
			return nil, &paramError{"polygon", v, err.Error()}
		}
		if a.cells, err = m.Cells(res, maxAreaCells); err != nil {
			return nil, &paramError{"polygon", v, err.Error()}
		}
	default:
		return nil, &paramError{"cells", "", "give one of cells, site, bbox or polygon"}
	}
	if len(a.cells) > maxAreaCells {
		return nil, &paramError{"cells", fmt.Sprint(len(a.cells), " cells"), fmt.Sprintf("at most %d cells per query", maxAreaCells)}
	}
	rs, err := geo.Ranges(a.cells, s.Res)
	if err != nil {
		return nil, &paramError{"cells", "", err.Error()}
	}
	a.ranges = make([]vocab.CellRange, len(rs))
	for i, r := range rs {
		a.ranges[i] = vocab.CellRange(r)
	}
	return a, nil
}
