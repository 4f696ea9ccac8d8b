package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus' own client (what Grafana's Prometheus data source speaks)
// queries flowd's /api/v1/query_range and /api/v1/query and gets the
// sums /api/v1/series and /api/v1/density answer for the same spans.
func TestPrometheusClientGetsTheSeriesSums(t *testing.T) {
	fs, _ := startFullServer(t)
	if r := do(t, "PUT", fs.URL+"/api/v1/sensors", "text/csv", []byte("id,name,lat,lng\nA,a,30.25,120.12\nB,b,30.27,120.17\n")); r.status != 200 {
		t.Fatalf("PUT sensors: %d %s", r.status, r.body)
	}
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var lines strings.Builder
	for m := range 30 {
		fmt.Fprintf(&lines, `{"time":%d,"sensor":"A","class":"car","count":%d}`+"\n", t0.Add(time.Duration(m)*time.Minute).Unix(), m+1)
		fmt.Fprintf(&lines, `{"time":%d,"sensor":"B","class":"car","count":%d}`+"\n", t0.Add(time.Duration(m)*time.Minute).Unix(), 2*m)
	}
	if r := do(t, "POST", fs.URL+"/api/v1/ingest/counts", "application/x-ndjson", []byte(lines.String())); r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	const bbox = "120.10,30.20,120.20,30.30"
	from, to := t0, t0.Add(30*time.Minute)
	var series struct{ Points [][2]int64 }
	r := get(t, fmt.Sprintf("%s/api/v1/series?metric=count_car&bbox=%s&from=%d&to=%d&step=5m", fs.URL, bbox, from.Unix(), to.Unix()))
	if json.Unmarshal(r.body, &series) != nil || len(series.Points) != 6 {
		t.Fatalf("series: %d %s", r.status, r.body)
	}

	client, err := api.NewClient(api.Config{Address: fs.URL})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(client)
	ctx := context.Background()
	rng := promv1.Range{Start: from.Add(5 * time.Minute), End: to, Step: 5 * time.Minute}
	v, _, _, err := prom.QueryRange(ctx, `sum(count_car{bbox="`+bbox+`"})`, rng)
	if err != nil {
		t.Fatalf("query_range: %v", err)
	}
	m, ok := v.(model.Matrix)
	if !ok || len(m) != 1 || len(m[0].Values) != len(series.Points) {
		t.Fatalf("query_range of a sum: %v; want one series of %d points", v, len(series.Points))
	}
	for i, p := range m[0].Values {
		// The value at t sums the step ending at t; series' point i
		// starts at t - step.
		want := series.Points[i]
		if p.Timestamp.Unix() != want[0]+300 || int64(p.Value) != want[1] {
			t.Errorf("query_range point %d: %v at %d; series says %d from %d", i, p.Value, p.Timestamp.Unix(), want[1], want[0])
		}
	}

	// Per cell: each cell's steps add up to its density over the span.
	v, _, _, err = prom.QueryRange(ctx, `sum by (cell) (count_car{bbox="`+bbox+`"})`, rng)
	if err != nil {
		t.Fatalf("query_range by cell: %v", err)
	}
	var density struct {
		Cells []struct {
			Cell  string
			Value int64
		}
	}
	json.Unmarshal(get(t, fmt.Sprintf("%s/api/v1/density?metric=count_car&bbox=%s&from=%d&to=%d", fs.URL, bbox, from.Unix(), to.Unix())).body, &density)
	perCell := map[string]int64{}
	for _, s := range v.(model.Matrix) {
		for _, p := range s.Values {
			perCell[string(s.Metric["cell"])] += int64(p.Value)
		}
	}
	if len(density.Cells) != 2 || len(perCell) != 2 {
		t.Fatalf("by cell: %v; density %v", perCell, density.Cells)
	}
	for _, c := range density.Cells {
		if perCell[c.Cell] != c.Value {
			t.Errorf("cell %s: query_range adds up to %d, density says %d", c.Cell, perCell[c.Cell], c.Value)
		}
	}

	// An instant query sums the 5 minutes before its time.
	v, _, _, err = prom.Query(ctx, `sum(count_car{bbox="`+bbox+`"})`, to)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || int64(vec[0].Value) != series.Points[5][1] {
		t.Errorf("instant query: %v; want %d", v, series.Points[5][1])
	}

	// A number is a scalar: Grafana tests a data source with 1+1.
	v, _, _, err = prom.Query(ctx, "1+1", to)
	if sc, ok := v.(*model.Scalar); err != nil || !ok || sc.Value != 2 {
		t.Errorf("1+1: %v %v; want the scalar 2", v, err)
	}

	// What the subset does not take is refused, saying what it takes.
	_, _, _, err = prom.Query(ctx, `rate(count_car{bbox="`+bbox+`"}[5m])`, to)
	if err == nil || !strings.Contains(err.Error(), "flowd takes metric{...}, sum(metric{...}) and sum by (cell) (metric{...})") {
		t.Errorf("rate(): %v; want the subset named", err)
	}
}
