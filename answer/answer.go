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
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Appender is an answer that writes its JSON itself, byte for byte as
// encoding/json would, where that costs much less (long arrays of
// numbers, which encoding/json writes by reflection and, through a
// json.Marshaler, checks again).
type Appender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// JSON writes v as the JSON body of an answer with status. An Appender
// writes into the response's own body buffer, which fasthttp pools with
// its responses, and other answers are handed over as encoding/json made
// them: no answer is copied (an eight-year hourly series is 1.3 MB).
func JSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	if a, ok := v.(Appender); ok {
		body := ctx.Response.SwapBody(nil)
		data, err := a.AppendJSON(body[:0])
		if err != nil {
			panic(fmt.Sprintf("BUG: cannot marshal answer: %v", err))
		}
		ctx.Response.SwapBody(data)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal answer: %v", err))
	}
	ctx.Response.SetBodyRaw(data)
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

// Bounds on what an error answer quotes: a caller's value, the reason
// given for refusing it (which may quote the value again), and the whole
// message, so that no error grows with the input that caused it.
const (
	maxEcho    = 64
	maxReason  = 256
	maxMessage = 1000
)

// Error writes err as an error answer with status.
func Error(ctx *fasthttp.RequestCtx, status int, err error) {
	JSON(ctx, status, errorBody{cut(err.Error(), maxMessage)})
}

// Clip cuts a caller's input quoted in an error to a short prefix.
func Clip(s string) string { return cut(s, maxEcho) }

// cut cuts s to at most n bytes and a mark, at a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
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
// parameter, the value and what was wrong with it. The value is quoted
// cut to a short prefix, the reason to a few lines.
type ParamError struct {
	Param, Value, Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %q: value %q: %s", e.Param, Clip(e.Value), cut(e.Reason, maxReason))
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
