package api

import (
	"fmt"
	"strings"
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
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBodyString(b.String())
}

var startTime = time.Now()

// health serves GET /healthz: 503 while flushes fall behind.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	st := s.Store.Stats()
	status := fasthttp.StatusOK
	state := "ok"
	if st.PendingFlush > 1 {
		status, state = fasthttp.StatusServiceUnavailable, "degraded"
	}
	answer.JSON(ctx, status, map[string]any{"status": state, "last_storage_error": st.LastError, "wal_damaged_records": st.WALDamagedRecords})
}
