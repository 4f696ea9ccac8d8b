package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

// Handler serves the ingest endpoints. A request's valid lines are kept and
// its invalid ones are listed in the answer by line, field and reason; the
// answer comes only after the kept lines are durable.
type Handler struct {
	Bucketer *Bucketer
	// MaxDecompressed bounds a body after gzip or zstd decompression.
	MaxDecompressed int64
	// MaxLine bounds one line of a body.
	MaxLine int
	// MaxRejected bounds the rejected lines listed in one answer.
	MaxRejected int
	// MaxEvents bounds the lines (events) of one request; 0 is no limit.
	MaxEvents int
	// Yield, when set, is called before a request takes its place among
	// those in flight, and may wait: the live map's hub has ingest wait
	// while a tick's frames go out (dashboard.Hub.Yield), so that a burst
	// of writes to thousands of viewers has the cores to itself.
	Yield func()

	inflight chan struct{}
	metrics  *handlerMetrics
}

// NewHandler returns a Handler that serves at most maxInflight requests at
// once and answers 429 beyond that.
func NewHandler(b *Bucketer, maxInflight int) *Handler {
	return &Handler{
		Bucketer:        b,
		MaxDecompressed: 256 << 20,
		MaxLine:         64 << 10,
		MaxRejected:     1000,
		inflight:        make(chan struct{}, maxInflight),
		metrics:         newHandlerMetrics(),
	}
}

// Answer is the JSON reply to an ingest request.
type Answer struct {
	Accepted int `json:"accepted"`
	// HourlyOnly counts the accepted lines older than the minute tier's
	// retention: they are kept in the hourly tier only.
	HourlyOnly    int         `json:"hourly_only"`
	Rejected      []LineError `json:"rejected"`
	RejectedTotal int         `json:"rejected_total"`
	Error         string      `json:"error,omitempty"`
	TookMs        float64     `json:"took_ms"`
}

// Swipes serves POST /api/v1/ingest/swipes.
func (h *Handler) Swipes(ctx *fasthttp.RequestCtx) {
	h.serve(ctx, sourceSwipes, func(r io.Reader, f Format, bt *Batch) ([]LineError, error) {
		var err error
		errs, derr := DecodeSwipes(r, f, h.MaxLine, func(line int, s *Swipe) {
			if err == nil {
				err = bt.AddSwipe(line, s)
			}
		})
		return errs, errors.Join(derr, err)
	})
}

// Counts serves POST /api/v1/ingest/counts.
func (h *Handler) Counts(ctx *fasthttp.RequestCtx) {
	h.serve(ctx, sourceCounts, func(r io.Reader, f Format, bt *Batch) ([]LineError, error) {
		var err error
		errs, derr := decodeCountsAhead(r, f, h.MaxLine, bt.warmCounts, func(line int, c *Count) {
			if err == nil {
				err = bt.AddCount(line, c)
			}
		})
		return errs, errors.Join(derr, err)
	})
}

// Footfall serves POST /api/v1/ingest/footfall.
func (h *Handler) Footfall(ctx *fasthttp.RequestCtx) {
	h.serve(ctx, sourceFootfall, func(r io.Reader, f Format, bt *Batch) ([]LineError, error) {
		var err error
		errs, derr := DecodeFootfall(r, f, h.MaxLine, func(line int, ff *Footfall) {
			if err == nil {
				err = bt.AddFootfall(line, ff)
			}
		})
		return errs, errors.Join(derr, err)
	})
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx, source string, decode func(io.Reader, Format, *Batch) ([]LineError, error)) {
	start := time.Now()
	sm := h.metrics.source(source)
	if !h.admit(ctx, sm, start) {
		return
	}
	defer func() { <-h.inflight }()
	format, err := FormatOf(string(ctx.Request.Header.ContentType()))
	if err != nil {
		sm.refused("media_type")
		reply(ctx, fasthttp.StatusUnsupportedMediaType, &Answer{Error: err.Error()}, start)
		return
	}
	h.decode(ctx, sm, format, emptyBody(format), start, decode)
}

// admit takes one of the requests in flight, or answers 429; the caller
// gives it back. It first yields to a burst of live frames (Yield),
// holding no slot meanwhile.
func (h *Handler) admit(ctx *fasthttp.RequestCtx, sm *sourceMetrics, start time.Time) bool {
	if h.Yield != nil {
		h.Yield()
	}
	select {
	case h.inflight <- struct{}{}:
		return true
	default:
		sm.refused("busy")
		ctx.Response.Header.Set("Retry-After", "1")
		reply(ctx, fasthttp.StatusTooManyRequests, &Answer{Error: "too many ingest requests in flight; retry later"}, start)
		return false
	}
}

// decode opens the request's body, decodes it into a batch and commits
// it; empty is the error of a body without an event.
func (h *Handler) decode(ctx *fasthttp.RequestCtx, sm *sourceMetrics, format Format, empty string, start time.Time, decode func(io.Reader, Format, *Batch) ([]LineError, error)) {
	var lineErrs []LineError
	var err error
	bt := h.Bucketer.NewBatch()
	defer bt.Release()
	if identity(string(ctx.Request.Header.ContentEncoding())) {
		// Decoded in place, not through a reader's buffer.
		var m *Memory
		if m, err = memoryBody(ctx.PostBody(), format, h.MaxDecompressed, h.MaxEvents); err == nil {
			lineErrs, err = decode(m, format, bt)
		}
	} else {
		body, berr := Body(bytes.NewReader(ctx.PostBody()), string(ctx.Request.Header.ContentEncoding()), h.MaxDecompressed)
		if berr != nil {
			status := fasthttp.StatusBadRequest // a corrupt gzip or zstd header
			if errors.Is(berr, ErrUnsupportedMediaType) {
				status = fasthttp.StatusUnsupportedMediaType
			}
			sm.refused(refusedBody(status))
			reply(ctx, status, &Answer{Error: berr.Error()}, start)
			return
		}
		defer body.Close()
		lineErrs, err = decode(limitEvents(body, format, h.MaxEvents), format, bt)
	}
	if err != nil {
		status := fasthttp.StatusBadRequest
		switch {
		case errors.Is(err, ErrTooLarge) || errors.Is(err, ErrTooManyEvents):
			status = fasthttp.StatusRequestEntityTooLarge
		case errors.Is(err, storage.ErrUnavailable):
			// A new metric's name could not be made durable (a full disk).
			status = fasthttp.StatusServiceUnavailable
			ctx.Response.Header.Set("Retry-After", "1")
		}
		sm.refused(refusedBody(status))
		reply(ctx, status, &Answer{Error: fmt.Sprintf("nothing was kept: %v", err)}, start)
		return
	}
	if bt.Accepted() == 0 && len(lineErrs) == 0 && len(bt.Rejected()) == 0 {
		sm.refused("empty")
		reply(ctx, fasthttp.StatusBadRequest, &Answer{Error: empty}, start)
		return
	}
	h.commit(ctx, sm, bt, lineErrs, start)
}

// commit makes a decoded batch durable and answers what was kept and
// what was rejected.
func (h *Handler) commit(ctx *fasthttp.RequestCtx, sm *sourceMetrics, bt *Batch, lineErrs []LineError, start time.Time) {
	if err := bt.Commit(); err != nil {
		status := fasthttp.StatusInternalServerError
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrClosed) {
			status = fasthttp.StatusServiceUnavailable
			ctx.Response.Header.Set("Retry-After", "1")
		}
		sm.refused(refusedBody(status))
		reply(ctx, status, &Answer{Error: fmt.Sprintf("nothing was kept: %v", err)}, start)
		return
	}
	sm.batch(bt, lineErrs)
	h.metrics.legs.Add(bt.legsInferred)
	h.metrics.trips.Add(bt.tripsInferred)
	all := append(lineErrs, bt.Rejected()...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Line < all[j].Line })
	total := 0
	for i := range all {
		total += all[i].Lines()
	}
	a := &Answer{Accepted: bt.Accepted(), HourlyOnly: bt.HourlyOnly(), RejectedTotal: total, Rejected: all[:min(len(all), h.MaxRejected)]}
	status := fasthttp.StatusOK
	if a.Accepted == 0 && len(all) > 0 {
		status = fasthttp.StatusBadRequest
	}
	reply(ctx, status, a, start)
}

// emptyBody says what a body without a single event should have held.
func emptyBody(f Format) string {
	if f == CSV {
		return "the body holds no event: send a header row naming the columns, then one event per row"
	}
	return "the body holds no event: send one JSON object per line"
}

// refusedBody names, for /metrics, why a request answered status was
// refused whole.
func refusedBody(status int) string {
	switch status {
	case fasthttp.StatusUnsupportedMediaType:
		return "media_type"
	case fasthttp.StatusRequestEntityTooLarge:
		return "too_large"
	case fasthttp.StatusServiceUnavailable:
		return "unavailable"
	case fasthttp.StatusBadRequest:
		return "bad_body"
	}
	return "failed"
}

func reply(ctx *fasthttp.RequestCtx, status int, a *Answer, start time.Time) {
	if a.Rejected == nil {
		a.Rejected = []LineError{}
	}
	a.TookMs = answer.Since(start)
	answer.JSON(ctx, status, a)
}
