package api

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/vocab"
	"github.com/valyala/fasthttp"
)

func (s *Server) metricNames(ctx *fasthttp.RequestCtx) {
	// The per-entity and per-group families are asked for by sensor=,
	// station=, site= and group=, not by name.
	names := s.Store.Metrics()
	if h := s.History; h != nil && h.Reader != nil {
		// A query node holds little of its own: the metrics are those
		// VictoriaMetrics holds too.
		for _, m := range h.Reader.Names() {
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
	}
	names = slices.DeleteFunc(names, func(m string) bool { return vocab.IsPerEntity(m) || vocab.IsGrouped(m) })
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{"metrics": names})
}

// prometheus serves GET /metrics in the Prometheus text format: the API's
// requests and queries, the store's commits, flushes, merges and parts,
// the figures of the parts mounted (ingest, the live view) and the
// process's. Each family is described in docs/metrics.md.
func (s *Server) prometheus(ctx *fasthttp.RequestCtx) {
	var b bytes.Buffer
	if s.Conns != nil {
		s.metrics.setConns(s.Conns.Stats())
	}
	s.metrics.set.WritePrometheus(&b)
	s.Store.WriteMetrics(&b)
	for _, p := range []any{s.parts.Ingest, s.parts.Live} {
		if m, ok := p.(metricsWriter); ok {
			m.WriteMetrics(&b)
		}
	}
	if s.parts.Remote != nil {
		s.parts.Remote.WriteMetrics(&b)
	}
	metrics.WriteProcessMetrics(&b)
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.SetBody(exposition(b.Bytes()))
}

// metricsWriter is a part that has figures of its own for /metrics.
type metricsWriter interface{ WriteMetrics(w io.Writer) }

var startTime = time.Now()

// health serves GET /healthz: 200 as long as the process answers. A
// liveness probe that failed on a full disk would have the process
// restarted, which cures nothing; /readyz says whether to send it work.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{"status": "alive", "uptime_s": int64(time.Since(startTime).Seconds())})
}

// ready serves GET /readyz: 200 when an ingest now would be kept and a
// query answered, else 503 with the reasons, the store's last error
// among them. With a remote tier it also says how far VictoriaMetrics
// lags and what the outbox holds: a VictoriaMetrics that is down makes
// the lag grow, not flowd unready, since ingest and queries go on.
func (s *Server) ready(ctx *fasthttp.RequestCtx) {
	st := s.Store.Stats()
	var reasons []string
	if st.PendingFlush > 1 {
		reasons = append(reasons, fmt.Sprintf("%d flushes of the in-memory table are pending: parts cannot be written fast enough, and ingest is refused a few flushes later", st.PendingFlush))
	}
	if free, err := freeBytes(st.DataDirectory); err != nil {
		reasons = append(reasons, fmt.Sprintf("the free space of the data disk is unknown: %v", err))
	} else if free < s.MinFreeDisk {
		reasons = append(reasons, fmt.Sprintf("the data disk has %d bytes free, under -min-free-disk %d", free, s.MinFreeDisk))
	}
	if len(reasons) > 0 && st.LastError != "" {
		reasons = append(reasons, "the store's last error: "+st.LastError)
	}
	out := map[string]any{"status": "ready", "last_storage_error": st.LastError, "wal_damaged_records": st.WALDamagedRecords}
	if s.parts.Remote != nil {
		out["remote"] = s.parts.Remote.Status()
	}
	if len(reasons) > 0 {
		out["status"], out["reasons"] = "not ready", reasons
		delete(out, "last_storage_error")
		answer.JSON(ctx, fasthttp.StatusServiceUnavailable, out)
		return
	}
	answer.JSON(ctx, fasthttp.StatusOK, out)
}

// freeBytes returns the bytes an unprivileged writer may still use on the
// file system holding dir.
func freeBytes(dir string) (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	return int64(fs.Bavail) * fs.Bsize, nil
}
