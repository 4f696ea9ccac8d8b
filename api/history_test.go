package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// fakeVM answers query_range with 7 at every step, and keeps the queries.
type fakeVM struct {
	mu      sync.Mutex
	queries []string
}

func (f *fakeVM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	r.ParseForm()
	f.mu.Lock()
	f.queries = append(f.queries, r.Form.Get("query"))
	f.mu.Unlock()
	start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
	end, _ := strconv.ParseFloat(r.Form.Get("end"), 64)
	step, _ := strconv.ParseFloat(r.Form.Get("step"), 64)
	var points []string
	for ts := start; ts <= end+1e-6; ts += step {
		points = append(points, fmt.Sprintf(`[%.3f,"7"]`, ts))
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[%s]}]}}`, strings.Join(points, ","))
}

// TestSeriesReadsStepsPastRetentionFromVictoriaMetrics: with a history
// reader, the hourly steps of a series that begin before the hour tier's
// retention come from VictoriaMetrics (metric:1h, the area's cells by
// their label, each step the window ending a millisecond before the next),
// the later ones from the store; minute steps from before the minute
// tier's retention read VictoriaMetrics' minutes instead of the hour tier
// (unless they are from before this flowd began shipping);
// with All, every step that ends before the first minute not shipped comes
// from VictoriaMetrics.
func TestSeriesReadsStepsPastRetentionFromVictoriaMetrics(t *testing.T) {
	vm := &fakeVM{}
	srv := httptest.NewServer(vm)
	defer srv.Close()
	s := newQueryServer(t)
	reader, err := remote.NewReader(srv.URL, []int{7, 8}, 9, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cutoff := s.Store.RetentionCutoff(storage.TierHour)
	// The first whole hour the store keeps: the cutoff's own hour when it
	// falls on the hour (in the first minute of an hour; the test failed
	// then, at 23:00 UTC, when it took the next one).
	h := storage.TierHour.Truncate(cutoff + 59)
	x := cellAt(30.25, 120.10)
	s.addBuckets(t, bucket{metric: "count_car", cell: x, minute: h + 5, value: 3}, bucket{metric: "count_car", cell: x, minute: h + 65, value: 4})
	area := &area{res: 9, cells: []h3.Cell{x}, ranges: []vocab.CellRange{{Lo: uint64(x), Hi: uint64(x)}}}
	q := seriesQuery{metric: "count_car", area: area, from: h - 180, to: h + 120, step: 60}

	s.History = &History{Reader: reader}
	ans, err := s.series(q, s.Privacy.Exact())
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{(h - 180) * 60, 7}, {(h - 120) * 60, 7}, {(h - 60) * 60, 7}, {h * 60, 3}, {(h + 60) * 60, 4}}
	if fmt.Sprint(ans.Points) != fmt.Sprint(want) || ans.RemoteUntil == nil || ans.RemoteUntil.Unix() != h*60 {
		t.Fatalf("points %v (remote until %v), want %v (until %v)", ans.Points, ans.RemoteUntil, want, time.Unix(h*60, 0).UTC())
	}
	wantQuery := fmt.Sprintf(`sum(sum_over_time({__name__="count_car:1h",entity="",group="",cell=~"%x"}[3600s]))`, uint64(x))
	if len(vm.queries) != 1 || vm.queries[0] != wantQuery {
		t.Fatalf("queries %q, want %q", vm.queries, wantQuery)
	}

	// Five-minute steps from before the minute tier's retention: its
	// minutes from VictoriaMetrics, the rest from the minute tier.
	m := s.Store.RetentionCutoff(storage.TierMinute)
	s.addBuckets(t, bucket{metric: "count_car", cell: x, minute: m + 12, value: 2})
	vm.queries = nil
	ans, err = s.series(seriesQuery{metric: "count_car", area: area, from: m - 7, to: m + 13, step: 5}, s.Privacy.Exact())
	if err != nil {
		t.Fatal(err)
	}
	want5 := [][2]int64{{(m - 7) * 60, 7}, {(m - 2) * 60, 7}, {(m + 3) * 60, 0}, {(m + 8) * 60, 2}}
	if fmt.Sprint(ans.Points) != fmt.Sprint(want5) || ans.Tier != "minute" || !strings.Contains(fmt.Sprint(vm.queries), `__name__="count_car",`) {
		t.Fatalf("5-minute steps: %v from the %s tier after %q, want %v from the minute tier", ans.Points, ans.Tier, vm.queries, want5)
	}

	// Unless this flowd shipped nothing before: its minutes are not there.
	s.History = &History{Reader: reader, First: func() int64 { return m }}
	if ans, err = s.series(seriesQuery{metric: "count_car", area: area, from: m - 7, to: m + 13, step: 5}, s.Privacy.Exact()); err != nil || ans.Tier != "hour" {
		t.Fatalf("5-minute steps from before what was shipped: the %s tier (%v), want the hour tier", ans.Tier, err)
	}

	s.History = &History{Reader: reader, All: true, Shipped: func() int64 { return h + 90 }}
	if ans, err = s.series(q, s.Privacy.Exact()); err != nil {
		t.Fatal(err)
	}
	want[3][1] = 7 // [h, h+60) ends before h+90; [h+60, h+120) does not
	if fmt.Sprint(ans.Points) != fmt.Sprint(want) || ans.RemoteUntil.Unix() != (h+60)*60 {
		t.Fatalf("with All: points %v (remote until %v), want %v", ans.Points, ans.RemoteUntil, want)
	}
}
