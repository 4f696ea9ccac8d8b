package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

func (s *Server) metricNames(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"metrics": s.Store.Metrics()})
}

// prometheus serves GET /metrics in the Prometheus text format.
func (s *Server) prometheus(ctx *fasthttp.RequestCtx) {
	st := s.Store.Stats()
	var b strings.Builder
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	b.WriteString("# HELP flowd_parts Parts on disk per tier.\n# TYPE flowd_parts gauge\n")
	for _, t := range []storage.Tier{storage.TierMinute, storage.TierHour} {
		fmt.Fprintf(&b, "flowd_parts{tier=%q} %d\n", t, st.Parts[t])
		fmt.Fprintf(&b, "flowd_part_rows{tier=%q} %d\n", t, st.PartRows[t])
		fmt.Fprintf(&b, "flowd_part_bytes{tier=%q} %d\n", t, st.PartBytes[t])
		fmt.Fprintf(&b, "flowd_memtable_rows{tier=%q} %d\n", t, st.MemtableRows[t])
	}
	gauge("flowd_pending_flushes", "Memtables waiting to be written as parts.", st.PendingFlush)
	gauge("flowd_quarantined_parts", "Damaged parts set aside.", st.Quarantined)
	gauge("flowd_block_cache_bytes", "Decoded blocks kept for repeated queries.", st.BlockCache)
	gauge("flowd_metrics", "Known metric names.", st.Metrics)
	gauge("flowd_uptime_seconds", "Seconds since start.", int64(time.Since(startTime).Seconds()))
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBodyString(b.String())
}

var startTime = time.Now()
