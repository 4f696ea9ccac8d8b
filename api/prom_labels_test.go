package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Grafana's metric browser lists label names, a label's values and the
// series of a selector before it queries; Prometheus' own client asks
// flowd's /api/v1/labels, /api/v1/label/{name}/values and /api/v1/series
// with match[] and gets flowd's metrics, the sites and its area labels.
func TestPrometheusClientBrowsesMetrics(t *testing.T) {
	fs, _ := startFullServer(t)
	if r := do(t, "PUT", fs.URL+"/api/v1/sensors", "text/csv", []byte("id,name,lat,lng\nA,a,30.25,120.12\n")); r.status != 200 {
		t.Fatalf("PUT sensors: %d %s", r.status, r.body)
	}
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	body := fmt.Sprintf(`{"time":%d,"sensor":"A","class":"car","count":3,"speed":40}
{"time":%d,"sensor":"A","class":"bus","count":1}
`, t0.Unix(), t0.Unix())
	if r := do(t, "POST", fs.URL+"/api/v1/ingest/counts", "application/x-ndjson", []byte(body)); r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	var known struct{ Metrics []string }
	json.Unmarshal(get(t, fs.URL+"/api/v1/metrics").body, &known)
	if !slices.Contains(known.Metrics, "count_car") || !slices.Contains(known.Metrics, "speed_car") {
		t.Fatalf("/api/v1/metrics: %v", known.Metrics)
	}

	client, err := api.NewClient(api.Config{Address: fs.URL})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(client)
	ctx := context.Background()
	from, to := t0.Add(-time.Hour), time.Now()

	names, _, _, err := prom.LabelNames(ctx, nil, from, to)
	if err != nil || names.String() != "__name__, bbox, cell, polygon, res, site" {
		t.Errorf("label names: %v %v; want __name__ and the area labels", names, err)
	}
	values, _, _, err := prom.LabelValues(ctx, "__name__", nil, from, to)
	if err != nil || fmt.Sprint(values) != fmt.Sprint(known.Metrics) {
		t.Errorf("__name__ values: %v %v; want /api/v1/metrics' %v", values, err, known.Metrics)
	}
	values, _, _, err = prom.LabelValues(ctx, "__name__", []string{`{__name__=~"count_.*"}`}, from, to)
	if err != nil || fmt.Sprint(values) != "[count_bus count_car]" {
		t.Errorf("__name__ values matching count_.*: %v %v", values, err)
	}
	values, _, _, err = prom.LabelValues(ctx, "site", []string{"count_car"}, from, to)
	if err != nil || fmt.Sprint(values) != "[lake]" {
		t.Errorf("site values: %v %v; want the registry's [lake]", values, err)
	}
	if names, _, _, err := prom.LabelNames(ctx, []string{"count_nothing"}, from, to); err != nil || len(names) != 0 {
		t.Errorf("label names of a selector matching no metric: %v %v; want none", names, err)
	}

	const bbox = "120.10,30.20,120.20,30.30"
	sets, _, _, err := prom.Series(ctx, []string{`count_car{bbox="` + bbox + `"}`, `{__name__=~"speed_.*"}`}, from, to)
	want := []model.LabelSet{{"__name__": "count_car", "bbox": bbox}, {"__name__": "speed_bus"}, {"__name__": "speed_car"}}
	if err != nil || fmt.Sprint(sets) != fmt.Sprint(want) {
		t.Errorf("series: %v %v; want %v", sets, err, want)
	}
	// What the browser found, queried: the metric over its area.
	v, _, _, err := prom.Query(ctx, `sum(count_car{bbox="`+bbox+`"})`, time.Now())
	if err != nil || !strings.Contains(v.String(), "=> 3 @") {
		t.Errorf("query of the browsed series: %v %v; want 3", v, err)
	}

	// Errors name what was wrong.
	for path, param := range map[string]string{
		"/api/v1/label/cells/values":                                        `"name"`,
		"/api/v1/labels?match[]=" + url.QueryEscape("rate(count_car[5m])"):  `"match[]"`,
		"/api/v1/series?match[]=count_car&metric=count_car":                 `"metric"`,
		"/api/v1/series?metric=count_car&bbox=" + bbox + "&start=1":         `"start"`,
		"/api/v1/labels?match[]=" + url.QueryEscape(`count_car{cells="x"}`): `unknown label cells (did you mean cell?)`,
	} {
		r := get(t, fs.URL+path)
		var a struct{ Error string }
		json.Unmarshal(r.body, &a)
		if r.status != 400 || !strings.Contains(a.Error, param) {
			t.Errorf("GET %s: %d %s; want a 400 naming %s", path, r.status, r.body, param)
		}
	}
}
