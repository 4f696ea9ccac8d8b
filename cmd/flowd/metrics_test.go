package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads /metrics into a map from series (name and labels, as
// written) to value.
func (c *child) scrape(t *testing.T) (map[string]float64, []byte) {
	t.Helper()
	r := c.get(t, "/metrics")
	if r.status != 200 {
		t.Fatalf("/metrics: %s", r)
	}
	vals := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		vals[line[:i]] = v
	}
	return vals, r.body
}

// The figures an operator graphs move with what the server does: events
// and rejected lines by source and reason, requests by route, queries,
// group commits and their fsyncs, flushes and parts, sites' levels and
// live clients; and the page is one promtool accepts.
func TestMetricsMoveWithIngestAndPassPromtool(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-flush-interval", "1s")...)
	before, _ := c.scrape(t)
	now := time.Now().UTC().Truncate(time.Second).Add(-time.Minute).Format(time.RFC3339)
	counts := fmt.Sprintf(`{"time":%[1]q,"sensor":"D1","class":"car","count":3}
{"time":%[1]q,"sensor":"D1","class":"bus","count":1}
{"time":%[1]q,"sensor":"D1","class":"car","count":2}
{"time":%[1]q,"sensor":"nowhere","class":"car","count":2}
{"time":%[1]q,"sensor":"D1","class":"car","count":-2}
`, now)
	if a := c.post(t, "counts", "application/x-ndjson", counts, false); a.Accepted != 3 {
		t.Fatalf("counts: %+v", a)
	}
	c.post(t, "footfall", "text/csv", "time,site,in,out\n"+now+",lake,50,20\n", false)
	c.series(t, "metric=count_car&bbox="+testBBox)

	var after map[string]float64
	var page []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		after, page = c.scrape(t)
		flushed := after[`flowd_parts{tier="minute"}`] >= 1 && after["flowd_flush_duration_seconds_count"] >= 1
		if flushed || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	moved := func(series string) float64 { return after[series] - before[series] }
	for _, w := range []struct {
		series string
		want   float64
	}{
		{`flowd_ingest_events_total{source="counts"}`, 3},
		{`flowd_ingest_events_total{source="footfall"}`, 1},
		{`flowd_ingest_rejected_lines_total{source="counts",reason="unknown_sensor"}`, 1},
		{`flowd_ingest_rejected_lines_total{source="counts",reason="invalid"}`, 1},
		{`flowd_http_requests_total{method="POST",route="/api/v1/ingest/counts",code="2xx"}`, 1},
		{`flowd_http_request_duration_seconds_count{method="POST",route="/api/v1/ingest/counts"}`, 1},
		{`flowd_query_duration_seconds_count{route="/api/v1/series"}`, 1},
		{`flowd_site_occupancy{site="lake"}`, 30},
	} {
		if got := moved(w.series); got != w.want {
			t.Errorf("%s moved by %g, want %g", w.series, got, w.want)
		}
	}
	for _, series := range []string{
		"flowd_wal_group_commits_total", "flowd_wal_fsync_duration_seconds_count", "flowd_wal_written_bytes_total",
		"flowd_flush_duration_seconds_count", `flowd_parts{tier="minute"}`, "flowd_uptime_seconds",
	} {
		if moved(series) <= 0 {
			t.Errorf("%s did not grow: %g then %g", series, before[series], after[series])
		}
	}
	for _, series := range []string{`flowd_site_level{site="lake"}`, "flowd_live_clients", "flowd_live_clients_deflate", "flowd_privacy_budget_exhausted_total", "process_resident_memory_bytes"} {
		if _, ok := after[series]; !ok {
			t.Errorf("/metrics has no %s", series)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0, as .ci/run does): /metrics not linted")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
