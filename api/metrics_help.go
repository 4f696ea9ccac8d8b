package api

import (
	"bytes"
	"strings"
)

// metricHelp is the HELP text of flowd's families: the library writes
// HELP lines without text, which Prometheus' lint refuses. Each family is
// described at more length in docs/metrics.md.
var metricHelp = map[string]string{
	"flowd_http_request_duration_seconds":   "Seconds from routing a request to its answer, by route.",
	"flowd_http_requests_total":             "Answered requests by route and status class.",
	"flowd_query_duration_seconds":          "Seconds a query took to parse, scan and release once it had its query slot.",
	"flowd_privacy_budget_exhausted_total":  "Queries refused because the token's daily privacy budget was spent.",
	"flowd_uptime_seconds":                  "Seconds since start.",
	"flowd_connections":                     "Open connections, live WebSockets included.",
	"flowd_connections_anonymous":           "Open connections that have not made a request with a token.",
	"flowd_connections_accepted_total":      "Connections accepted.",
	"flowd_connections_evicted_total":       "Anonymous connections closed to make room for new ones.",
	"flowd_connections_refused_total":       "Connections closed at once because every open one had shown a token and -max-conns was reached.",
	"flowd_accept_errors_total":             "Accepts that failed for want of file descriptors or memory.",
	"flowd_ingest_events_total":             "Events kept (durable), by source.",
	"flowd_ingest_hourly_only_events_total": "Events kept in the hourly tier only, older than the minute tier keeps.",
	"flowd_ingest_rejected_lines_total":     "Lines rejected in ingest requests, by source and reason.",
	"flowd_ingest_requests_refused_total":   "Ingest requests refused whole, by source and reason.",
	"flowd_wal_fsync_duration_seconds":      "Seconds one WAL group commit took to write and fsync.",
	"flowd_wal_group_commits_total":         "WAL group commits.",
	"flowd_wal_records_total":               "Batches written to the WAL.",
	"flowd_wal_written_bytes_total":         "Bytes of batches written to the WAL.",
	"flowd_wal_write_errors_total":          "WAL group commits that failed; none of their batches was acknowledged.",
	"flowd_wal_damaged_records_total":       "Damaged WAL ranges replay skipped since start (each at least one lost record).",
	"flowd_wal_damaged_segments":            "Damaged WAL segments kept in wal-damaged/.",
	"flowd_flush_duration_seconds":          "Seconds one flush of the in-memory table into parts took.",
	"flowd_flush_errors_total":              "Flushes that failed and will be retried.",
	"flowd_merge_duration_seconds":          "Seconds one merge of parts took, by tier.",
	"flowd_merged_parts_total":              "Parts merged away, by tier.",
	"flowd_parts":                           "Parts on disk, by tier.",
	"flowd_part_rows":                       "Rows in parts, by tier.",
	"flowd_part_bytes":                      "Bytes of parts, by tier.",
	"flowd_remote_lag_seconds":              "Seconds since the start of the oldest bucket not yet in VictoriaMetrics.",
	"flowd_remote_outbox_segments":          "Segments of final bucket values waiting to be shipped to VictoriaMetrics.",
	"flowd_remote_outbox_bytes":             "Bytes the remote outbox holds: segments waiting, and journals and late buckets waiting to be cut.",
	"flowd_remote_cut_samples_total":        "Final bucket values written to segments, late ones again included.",
	"flowd_remote_shipped_segments_total":   "Segments VictoriaMetrics took.",
	"flowd_remote_shipped_bytes_total":      "Compressed bytes of the segments VictoriaMetrics took.",
	"flowd_remote_ship_errors_total":        "Attempts to ship a segment that failed and will be retried.",
	"flowd_memtable_rows":                   "Rows in memory, not yet in parts, by tier.",
	"flowd_pending_flushes":                 "Memtables waiting to be written as parts.",
	"flowd_quarantined_parts":               "Damaged parts set aside.",
	"flowd_parts_missing":                   "Parts the manifest listed that were not found at start.",
	"flowd_memtable_pool_bytes":             "Bytes of the memtables' page pool written so far: memory outside Go's heap, resident, reused by each memtable (at most twice -memtable-bytes).",
	"flowd_block_cache_bytes":               "Bytes of decoded blocks kept for repeated queries (most compact: 4–14 bytes a row).",
	"flowd_metrics":                         "Known metric names.",
	"flowd_live_clients":                    "Live map WebSocket clients.",
	"flowd_live_clients_deflate":            "Live map clients that took permessage-deflate (their frames go compressed where -live-deflate-shared of a view's clients took it).",
	"flowd_live_subscriptions":              "Distinct views (viewport, resolution, metric) of the live clients.",
	"flowd_live_frames_sent_total":          "Frames sent to live clients.",
	"flowd_live_sent_bytes_total":           "Bytes sent to live clients.",
	"flowd_live_frames_skipped_total":       "Frames slow live clients missed.",
	"flowd_live_clients_dropped_total":      "Slow or silent live clients closed.",
	"flowd_live_clients_refused_total":      "Live clients refused past -live-max-clients.",
	"flowd_live_deltas_lost_total":          "Deltas the live hub's queue could not take.",
	"flowd_site_level":                      "A scenic site's warning level: 0 normal, 1 yellow, 2 orange, 3 red.",
	"flowd_site_occupancy":                  "A scenic site's occupancy.",
	"flowd_site_occupancy_ratio":            "A scenic site's occupancy over its approved capacity.",
}

// processMetricFix is what the exposition does to a family of the
// library's process metrics that Prometheus' lint refuses: "counter" for
// a counter the library types as a gauge, "" to leave it out (a counter
// or gauge whose name ends in _count).
var processMetricFix = map[string]string{
	"go_cgo_calls_count":                     "",
	"go_cpu_count":                           "",
	"go_gc_forced_count":                     "",
	"process_io_read_bytes_total":            "counter",
	"process_io_read_syscalls_total":         "counter",
	"process_io_storage_read_bytes_total":    "counter",
	"process_io_storage_written_bytes_total": "counter",
	"process_io_write_syscalls_total":        "counter",
	"process_io_written_bytes_total":         "counter",
}

// exposition returns the text format src with a HELP text for every
// family and the library's process metrics fixed as processMetricFix
// says, so that promtool check metrics accepts the page.
func exposition(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(src)/4)
	for line := range bytes.Lines(src) {
		text := strings.TrimSuffix(string(line), "\n")
		family := familyOf(text)
		if fix, ok := processMetricFix[family]; ok && fix == "" {
			continue
		}
		switch {
		case strings.HasPrefix(text, "# HELP ") && !strings.Contains(text[len("# HELP "):], " "):
			out = append(out, text...)
			out = append(out, ' ')
			out = append(out, helpOf(family)...)
			out = append(out, '\n')
		case strings.HasPrefix(text, "# TYPE ") && processMetricFix[family] == "counter":
			out = append(out, "# TYPE "+family+" counter\n"...)
		default:
			out = append(out, line...)
		}
	}
	return out
}

// familyOf returns the family a line of the text format is about.
func familyOf(line string) string {
	if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
		line = rest
	} else if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
		line = rest
	}
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		line = line[:i]
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(line, suffix); ok && (metricHelp[f] != "" || strings.HasSuffix(f, "_seconds")) {
			return f
		}
	}
	return line
}

func helpOf(family string) string {
	if h := metricHelp[family]; h != "" {
		return h
	}
	if strings.HasPrefix(family, "go_") || strings.HasPrefix(family, "process_") {
		return "Go runtime or process figure, as VictoriaMetrics' metrics library writes it."
	}
	return "See docs/metrics.md."
}
