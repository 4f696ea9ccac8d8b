package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// costBBox holds the cells the cost tests fill, around West Lake.
const costBBox = "120.13,30.23,120.19,30.27"

// startCostServer serves a store holding, for each of cells, one swipe a
// minute over the three days before this hour, in parts, with a query
// cost limit.
func startCostServer(t *testing.T, limit int64, cells []h3.Cell, flush bool) (*flowdtest.Server, time.Time) {
	t.Helper()
	now := time.Now().UTC()
	if now.Hour() == 0 {
		// A month back from the first hour of a day is whole days, which
		// the day tier answers: these tests are of the hour tier's cost.
		now = now.Add(-time.Hour)
	}
	fs := flowdtest.New(t, t.TempDir(), func(*storage.Store, *geo.Registry) (api.Parts, func()) { return api.Parts{}, nil })
	fs.API.Now = func() time.Time { return now }
	fs.API.Guard = api.NewGuard(api.Limits{MaxQueryCost: limit})
	id, err := fs.Store.MetricID(vocab.SwipesIn)
	if err != nil {
		t.Fatal(err)
	}
	end := now.Truncate(time.Hour).Unix() / 60 // whole hours, all of which a month's density reads
	var ds []storage.Delta
	for _, c := range cells {
		for m := end - 3*1440; m < end; m++ {
			ds = append(ds, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(c), Minute: m}, Value: 1})
		}
	}
	if err := fs.Store.Add(ds); err != nil {
		t.Fatal(err)
	}
	if flush {
		if err := fs.Store.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	fs.Serve()
	return fs, now
}

// costCells are 30 res-9 cells inside costBBox.
func costCells() []h3.Cell {
	var cells []h3.Cell
	for i := range 30 {
		cells = append(cells, cellAt(30.235+0.001*float64(i), 120.14+0.0015*float64(i)))
	}
	return cells
}

func cellAt(lat, lng float64) h3.Cell { return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, 9) }

// getStatus GETs path and returns the status and body.
func getStatus(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A month's density at res 7 reads the hour tier — its hours, not its
// minutes — and is answered under a limit its 129,600 minute rows are far
// over; so is a whole-hour series, while a series at one-minute steps
// over the same days is refused.
func TestLongRangesCostTheHoursTheyRead(t *testing.T) {
	cells := costCells()
	fs, now := startCostServer(t, 20_000, cells, true)
	for _, res := range []int{7, 9} {
		code, body := getStatus(t, fs.URL, fmt.Sprintf("/api/v1/density?metric=swipes_in&bbox=%s&res=%d&from=-720h", costBBox, res))
		want := fmt.Sprintf(`"total":%d`, len(cells)*3*1440)
		if code != 200 || !strings.Contains(body, want) || !strings.Contains(body, `"tier":"hour"`) {
			t.Errorf("a month's density at res %d: %d %.400s; want 200 from the hour tier with %s", res, code, body, want)
		}
	}
	hour := now.Truncate(time.Hour).Add(-72 * time.Hour).Unix()
	code, body := getStatus(t, fs.URL, fmt.Sprintf("/api/v1/series?metric=swipes_in&bbox=%s&from=%d&step=1h&to=%d", costBBox, hour, now.Unix()))
	if code != 200 || !strings.Contains(body, `"tier":"hour"`) {
		t.Errorf("three days' series at 1h steps: %d %.300s; want 200 from the hour tier", code, body)
	}
	code, body = getStatus(t, fs.URL, fmt.Sprintf("/api/v1/series?metric=swipes_in&bbox=%s&from=-72h&step=1m", costBBox))
	if code != 400 || !strings.Contains(body, "rows of the minute tier") || !strings.Contains(body, "limit of 20000") {
		t.Errorf("three days' series at 1m steps: %d %.300s; want 400 naming the minute rows and the limit", code, body)
	}
}

// Each route's refusal names what to change in that route's own
// parameters: density and top have no step, a series' step helps only
// while the minute tier answers, and a Prometheus query spells it in
// seconds.
func TestCostRefusalNamesTheRoutesKnobs(t *testing.T) {
	fs, now := startCostServer(t, 1_000, costCells(), true)
	hour := now.Truncate(time.Hour).Add(-72 * time.Hour).Unix()
	prom := url.QueryEscape(fmt.Sprintf(`sum(swipes_in{bbox=%q})`, costBBox))
	for _, tc := range []struct {
		route, path string
		want        []string
		notWant     string
	}{
		{"density", "/api/v1/density?metric=swipes_in&bbox=" + costBBox + "&window=3h", []string{"shorter window", "smaller area"}, "step"},
		{"density of a month", "/api/v1/density?metric=swipes_in&bbox=" + costBBox + "&from=-720h", []string{"rows of the hour tier", "shorter window"}, "step"},
		{"top", "/api/v1/top?metric=swipes_in&window=3h", []string{"shorter window", "smaller area"}, "step"},
		{"series by the minute", "/api/v1/series?metric=swipes_in&bbox=" + costBBox + "&from=-48h&step=15m", []string{"shorter from–to", "step=1h from a whole hour"}, "coarser res"},
		{"series by the hour", fmt.Sprintf("/api/v1/series?metric=swipes_in&bbox=%s&from=%d&step=1h", costBBox, hour), []string{"rows of the hour tier", "shorter from–to"}, "step="},
		{"query_range", fmt.Sprintf("/api/v1/query_range?query=%s&start=%d&end=%d&step=60", prom, now.Add(-48*time.Hour).Unix(), now.Unix()), []string{"shorter start–end", "step=3600 with start on the hour"}, "coarser res"},
	} {
		code, body := getStatus(t, fs.URL, tc.path)
		if code != 400 || !strings.Contains(body, "query cost limit of 1000 (-max-query-cost)") {
			t.Errorf("%s: %d %.400s; want 400 naming the cost limit", tc.route, code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %.400s; want it to advise %q", tc.route, body, w)
			}
		}
		if strings.Contains(body, tc.notWant) {
			t.Errorf("%s: %.400s; advises %q, which this route cannot use", tc.route, body, tc.notWant)
		}
	}
}

// A bbox covered at res 7 reaches past its edge into a cell full of rows;
// a res-9 cover does not. Whatever res 9 is allowed, res 7 is allowed too,
// and it answers the whole res-7 cell.
func TestCoarserResNeverCostsMore(t *testing.T) {
	inside := cellAt(30.2500, 120.1600)
	ll := inside.LatLng()
	bbox := fmt.Sprintf("%.5f,%.5f,%.5f,%.5f", ll.Lng-0.001, ll.Lat-0.001, ll.Lng+0.001, ll.Lat+0.001)
	box, err := geo.ParseBBox(bbox)
	if err != nil {
		t.Fatal(err)
	}
	fine, err := box.Cells(9, 1000)
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := box.Cells(7, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var outside h3.Cell
	for _, c7 := range coarse {
		for _, c := range c7.Children(9) {
			if !slicesContains(fine, c) {
				outside = c
				break
			}
		}
	}
	if outside == 0 {
		t.Fatalf("no res-9 cell of the res-7 cover %v lies outside the res-9 cover %v", coarse, fine)
	}
	// Three days of minutes in each cell, in the memtable: a scan reads
	// every one of them whatever the tier, so the limit lets one cell's
	// rows through but not two.
	fs, _ := startCostServer(t, 3*1440+500, []h3.Cell{inside, outside}, false)
	for _, res := range []int{9, 7} {
		code, body := getStatus(t, fs.URL, fmt.Sprintf("/api/v1/density?metric=swipes_in&bbox=%s&res=%d&from=-720h", bbox, res))
		if code != 200 {
			t.Errorf("density at res %d: %d %.400s; want 200", res, code, body)
		}
		if want := fmt.Sprintf(`"total":%d`, 2*3*1440); res == 7 && !strings.Contains(body, want) {
			t.Errorf("density at res 7: %.400s; want the whole res-7 cell, %s", body, want)
		}
	}
}

func slicesContains(cells []h3.Cell, c h3.Cell) bool {
	for _, x := range cells {
		if x == c {
			return true
		}
	}
	return false
}
