package api

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

func (s *Server) metricNames(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{"metrics": s.Store.Metrics()})
}

// prometheus serves GET /metrics in the Prometheus text format.
func (s *Server) prometheus(ctx *fasthttp.RequestCtx) {
	st := s.Store.Stats()
	var b strings.Builder
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	perTier := func(name, help string, v func(storage.Tier) any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		for _, t := range []storage.Tier{storage.TierMinute, storage.TierHour} {
			fmt.Fprintf(&b, "%s{tier=%q} %v\n", name, t, v(t))
		}
	}
	perTier("flowd_parts", "Parts on disk.", func(t storage.Tier) any { return st.Parts[t] })
	perTier("flowd_part_rows", "Rows in parts.", func(t storage.Tier) any { return st.PartRows[t] })
	perTier("flowd_part_bytes", "Bytes of parts.", func(t storage.Tier) any { return st.PartBytes[t] })
	perTier("flowd_memtable_rows", "Rows in memory, not yet in parts.", func(t storage.Tier) any { return st.MemtableRows[t] })
	gauge("flowd_pending_flushes", "Memtables waiting to be written as parts.", st.PendingFlush)
	gauge("flowd_quarantined_parts", "Damaged parts set aside.", st.Quarantined)
	fmt.Fprintf(&b, "# HELP flowd_wal_damaged_records_total Damaged WAL records replay skipped since start (each range at least one lost record).\n# TYPE flowd_wal_damaged_records_total counter\nflowd_wal_damaged_records_total %d\n", st.WALDamagedRecords)
	gauge("flowd_parts_missing", "Parts the manifest listed that were not found at start (removed by hand, lost with a disk).", st.PartsMissing)
	gauge("flowd_wal_damaged_segments", "Damaged WAL segments kept in wal-damaged/.", st.WALDamagedSegments)
	gauge("flowd_block_cache_bytes", "Decoded blocks kept for repeated queries.", st.BlockCache)
	gauge("flowd_metrics", "Known metric names.", st.Metrics)
	gauge("flowd_uptime_seconds", "Seconds since start.", int64(time.Since(startTime).Seconds()))
	if s.Conns != nil {
		cs := s.Conns.Stats()
		gauge("flowd_connections", "Open connections, live WebSockets included.", cs.Open)
		gauge("flowd_connections_anonymous", "Open connections that have not made a request with a token.", cs.Anonymous)
		counter := func(name, help string, v int64) {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
		}
		counter("flowd_connections_accepted_total", "Connections accepted.", cs.Accepted)
		counter("flowd_connections_evicted_total", "Anonymous connections closed to make room for new ones.", cs.Evicted)
		counter("flowd_connections_refused_total", "Connections closed at once: every open one had made a request with a token and -max-conns was reached.", cs.Refused)
		counter("flowd_accept_errors_total", "Accepts that failed for want of file descriptors or memory.", cs.AcceptError)
	}
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBodyString(b.String())
}

var startTime = time.Now()

// health serves GET /healthz: 200 as long as the process answers. A
// liveness probe that failed on a full disk would have the process
// restarted, which cures nothing; /readyz says whether to send it work.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{"status": "alive", "uptime_s": int64(time.Since(startTime).Seconds())})
}

// ready serves GET /readyz: 200 when an ingest now would be kept and a
// query answered, else 503 with the reasons, the store's last error
// among them.
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
	if len(reasons) > 0 {
		answer.JSON(ctx, fasthttp.StatusServiceUnavailable, map[string]any{"status": "not ready", "reasons": reasons, "wal_damaged_records": st.WALDamagedRecords})
		return
	}
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{"status": "ready", "last_storage_error": st.LastError, "wal_damaged_records": st.WALDamagedRecords})
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
