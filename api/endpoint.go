package api

import (
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// endpoint adapts a query to HTTP, the one way every query answers: parse
// reads the request into Q (a bad parameter is a *answer.ParamError,
// answered 400), run answers it without knowing of HTTP, and the answer
// goes out as JSON stamped with took_ms, or as CSV or GeoJSON when the
// caller asked for that and the answer has that form.
func endpoint[Q, A any](s *Server, parse func(*query) (Q, error), run func(Q) (A, error)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		q := s.newQuery(ctx)
		req, err := parse(q)
		if err != nil {
			answer.Fail(ctx, err)
			return
		}
		ans, err := run(req)
		if err != nil {
			answer.Fail(ctx, err)
			return
		}
		write(ctx, q, ans, start)
	}
}

// csvTable is an answer that can also be written as CSV.
type csvTable interface{ appendCSV(dst []byte) []byte }

// geoJSONer is an answer that can also be written as GeoJSON.
type geoJSONer interface{ appendGeoJSON(dst []byte) []byte }

func write(ctx *fasthttp.RequestCtx, q *query, ans any, start time.Time) {
	if g, ok := ans.(geoJSONer); ok && q.geoJSON {
		ctx.SetContentType("application/geo+json")
		ctx.SetBody(g.appendGeoJSON(nil))
		return
	}
	if t, ok := ans.(csvTable); ok && q.csv {
		answer.CSV(ctx, t.appendCSV(nil))
		return
	}
	if st, ok := ans.(interface{ Stamp(time.Time) }); ok {
		st.Stamp(start)
	}
	answer.JSON(ctx, fasthttp.StatusOK, ans)
}
