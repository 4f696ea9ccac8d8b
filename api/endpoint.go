package api

import (
	"errors"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/valyala/fasthttp"
)

// endpoint adapts a query to HTTP, the one way every query answers: parse
// reads the request into Q (a bad parameter is a *answer.ParamError,
// answered 400), run answers it without knowing of HTTP, passing every
// card-derived figure through the privacy layer's release, the release is
// charged to the caller's budget (past it, 429), and the answer goes out
// as JSON stamped with took_ms and the release's note, or as CSV or
// GeoJSON when the caller asked for that and the answer has that form
// (the note then goes in the Flowd-Privacy header).
func endpoint[Q any, A releasedAnswer](s *Server, parse func(*query) (Q, error), run func(Q, *privacy.Release) (A, error)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		q := s.newQuery(ctx)
		req, err := parse(q)
		if err != nil {
			answer.Fail(ctx, err)
			return
		}
		ans, err := run(req, q.rel)
		if err == nil {
			err = q.rel.Charge()
		}
		s.metrics.query(ctx.Path(), start)
		var over *privacy.BudgetError
		if errors.As(err, &over) {
			s.metrics.exhausted.Inc()
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(time.Until(over.Renews).Seconds())+1))
			answer.Error(ctx, fasthttp.StatusTooManyRequests, err)
			return
		}
		if err != nil {
			answer.Fail(ctx, err)
			return
		}
		note := q.rel.Note()
		ans.setPrivacy(note)
		if note != nil {
			// CSV and GeoJSON have no room for the note.
			ctx.Response.Header.Set("Flowd-Privacy", note.Header())
		}
		write(ctx, q, ans, start)
	}
}

// releasedAnswer is the answer of a query: it carries the note of how its
// card-derived figures were released, by embedding released.
type releasedAnswer interface{ setPrivacy(*privacy.Note) }

// released is embedded in every query answer.
type released struct {
	Privacy *privacy.Note `json:"privacy,omitempty"`
}

func (r *released) setPrivacy(n *privacy.Note) { r.Privacy = n }

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
