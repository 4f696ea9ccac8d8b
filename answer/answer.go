// Package answer writes flowd's HTTP answers the one way every endpoint
// shares: JSON carrying the time the request took, CSV where a table was
// asked for, and errors as {"error": "..."} whose status says whose fault
// it was. api, dashboard and ingest all answer through it.
package answer

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// JSON writes v as the JSON body of an answer with status.
func JSON(ctx *fasthttp.RequestCtx, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal answer: %v", err))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(data)
}

// CSV writes body, a header row and its records, as a text/csv answer.
func CSV(ctx *fasthttp.RequestCtx, body []byte) {
	ctx.SetContentType("text/csv")
	ctx.SetBody(body)
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// Error writes err as an error answer with status.
func Error(ctx *fasthttp.RequestCtx, status int, err error) {
	JSON(ctx, status, errorBody{err.Error()})
}

// Fail writes err as an error answer: 400 when it is a bad parameter
// (a *ParamError anywhere in its chain), 500 otherwise.
func Fail(ctx *fasthttp.RequestCtx, err error) {
	var pe *ParamError
	if errors.As(err, &pe) {
		Error(ctx, fasthttp.StatusBadRequest, err)
		return
	}
	Error(ctx, fasthttp.StatusInternalServerError, err)
}

// ParamError is a bad request parameter: it is answered 400 naming the
// parameter, the value and what was wrong with it.
type ParamError struct {
	Param, Value, Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %q: value %q: %s", e.Param, e.Value, e.Reason)
}

// Took is embedded in an answer to carry how long the request took, as
// every answer of a query does.
type Took struct {
	TookMs float64 `json:"took_ms"`
}

// Stamp sets the time taken since start.
func (t *Took) Stamp(start time.Time) { t.TookMs = Since(start) }

// Since returns the milliseconds since start, to the microsecond.
func Since(start time.Time) float64 {
	return float64(time.Since(start).Microseconds()) / 1000
}
