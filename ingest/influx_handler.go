package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// Influx serves POST /write and POST /api/v2/write: InfluxDB line
// protocol, so that devices and Telegraf push to flowd unchanged. Points
// of the counts and footfall measurements become counts and footfall
// readings (see DecodeInflux), with the same durability and per-line
// errors as the other ingest endpoints; precision (ns by default) says
// the unit of the timestamps. db, rp, bucket and org are accepted and
// ignored: flowd has one store.
func (h *Handler) Influx(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	sm := h.metrics.source(sourceInflux)
	if !h.admit(ctx, sm, start) {
		return
	}
	defer func() { <-h.inflight }()
	prec, err := ParsePrecision(string(ctx.QueryArgs().Peek("precision")))
	if err != nil {
		sm.refused("bad_body")
		reply(ctx, fasthttp.StatusBadRequest, &Answer{Error: "parameter \"precision\": " + err.Error()}, start)
		return
	}
	now := start.UnixMilli()
	// Any Content-Type: clients send text/plain, none, or (curl's
	// default) a form's, and a form body must not be parsed as one.
	h.decode(ctx, sm, NDJSON, "the body holds no point: send line protocol, one point a line", start, func(r io.Reader, _ Format, bt *Batch) ([]LineError, error) {
		var err error
		errs, derr := DecodeInflux(r, prec, now, h.MaxLine, func(line int, e *InfluxEvent) {
			if err != nil {
				return
			}
			if e.Kind == measureCounts {
				err = bt.AddCount(line, &e.Count)
			} else {
				err = bt.AddFootfall(line, &e.Footfall)
			}
		})
		return errs, errors.Join(derr, err)
	})
	if ctx.Response.StatusCode() >= 400 {
		influxError(ctx)
	}
}

// influxError adds to an error answer the code and message fields that
// InfluxDB clients show: the error, or the first rejected line.
func influxError(ctx *fasthttp.RequestCtx) {
	var a Answer
	if json.Unmarshal(ctx.Response.Body(), &a) != nil {
		return
	}
	msg := a.Error
	if msg == "" && len(a.Rejected) > 0 {
		msg = fmt.Sprintf("no point was kept; %d lines rejected, the first: %s", a.RejectedTotal, a.Rejected[0].Error())
	}
	code := "invalid"
	switch ctx.Response.StatusCode() {
	case fasthttp.StatusTooManyRequests, fasthttp.StatusServiceUnavailable:
		code = "unavailable"
	case fasthttp.StatusRequestEntityTooLarge:
		code = "request too large"
	}
	answer.JSON(ctx, ctx.Response.StatusCode(), struct {
		*Answer
		Code    string `json:"code"`
		Message string `json:"message"`
	}{&a, code, msg})
}
