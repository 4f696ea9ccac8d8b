package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Two cameras 20 m apart share a res-9 cell: sensor= answers each one's
// own counts, which sum to the cell's, minute-by-minute and hourly
// readings alike; a camera alone in its cell answers its cell's.
func TestSensorSeriesOfCamerasSharingACell(t *testing.T) {
	fs := camerasSharingACell(t, true)
	a, _ := fs.Registry.SensorCell("cam-a")
	b, _ := fs.Registry.SensorCell("cam-b")
	if a != b {
		t.Fatalf("the cameras are in cells %s and %s; the test wants them in one", a, b)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	var lines []string
	for m := range 60 {
		at := hour.Add(time.Duration(m) * time.Minute).Format(time.RFC3339)
		lines = append(lines, fmt.Sprintf(`{"time":%q,"sensor":"cam-a","class":"person","count":%d}`, at, 1+m%3))
		lines = append(lines, fmt.Sprintf(`{"time":%q,"sensor":"cam-c","class":"person","count":5}`, at))
	}
	// cam-b reports once an hour: 600 over the hour, 10 a minute.
	lines = append(lines, fmt.Sprintf(`{"time":%q,"sensor":"cam-b","class":"person","count":600,"interval":3600}`, hour.Format(time.RFC3339)))
	resp, err := http.Post(fs.URL+"/api/v1/ingest/counts", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	series := func(sel string) []int64 {
		r := get(t, fmt.Sprintf("%s/api/v1/series?metric=count_person&%s&from=%d&to=%d&step=15m", fs.URL, sel, hour.Unix(), hour.Add(time.Hour).Unix()))
		var s struct{ Points [][2]int64 }
		if err := json.Unmarshal(r.body, &s); err != nil || r.status != 200 {
			t.Fatalf("series %s: %d %s", sel, r.status, r.body)
		}
		var vs []int64
		for _, p := range s.Points {
			vs = append(vs, p[1])
		}
		return vs
	}
	ownA, ownB, cell, ownC := series("sensor=cam-a"), series("sensor=cam-b"), series("cells="+a.String()), series("sensor=cam-c")
	wantA := []int64{30, 30, 30, 30} // 1, 2, 3, … over each quarter hour
	if fmt.Sprint(ownA) != fmt.Sprint(wantA) || fmt.Sprint(ownB) != "[150 150 150 150]" || fmt.Sprint(ownC) != "[75 75 75 75]" {
		t.Errorf("own series: cam-a %v, cam-b %v, cam-c %v; want %v, [150 150 150 150], [75 75 75 75]", ownA, ownB, ownC, wantA)
	}
	for i := range cell {
		if cell[i] != ownA[i]+ownB[i] {
			t.Errorf("quarter %d: the cell counted %d, its cameras %d + %d", i, cell[i], ownA[i], ownB[i])
		}
	}
	for _, tc := range []struct{ query, param string }{
		{"metric=count_person&sensor=cam-x", "sensor"},
		{"metric=swipes_in&sensor=cam-a", "metric"},
		{"metric=count_person&sensor=cam-a&bbox=144.9,-37.9,145,-37.8", "sensor"},
		{"metric=count_person@sensor&cells=" + a.String(), "metric"},
	} {
		r := get(t, fs.URL+"/api/v1/series?"+tc.query)
		if r.status != 400 || !strings.Contains(string(r.body), fmt.Sprintf(`parameter \"%s\"`, tc.param)) {
			t.Errorf("series?%s: %d %s; want a 400 naming %s", tc.query, r.status, r.body, tc.param)
		}
	}
}

// Two stations of different lines 30 m apart share a res-9 cell: station=
// answers each one's own taps, which sum to the cell's.
func TestStationSeriesOfStationsSharingACell(t *testing.T) {
	fs := entityServer(t, true, func(reg *geo.Registry) error {
		return reg.PutStations([]geo.Station{
			{ID: "S1", Name: "Wulin Square (line 1)", Line: "1", Lat: 30.27100, Lng: 120.16500},
			{ID: "S2", Name: "Wulin Square (line 3)", Line: "3", Lat: 30.27100, Lng: 120.16531},
		})
	})
	c1, _ := fs.Registry.StationCell("S1")
	c2, _ := fs.Registry.StationCell("S2")
	if c1 != c2 {
		t.Fatalf("the stations are in cells %s and %s; the test wants them in one", c1, c2)
	}
	at := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	var lines []string
	for i := range 8 {
		st := "S1"
		if i >= 3 {
			st = "S2"
		}
		lines = append(lines, fmt.Sprintf(`{"time":%q,"card":"c%d","dir":"in","station":%q}`, at.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i, st))
	}
	resp, err := http.Post(fs.URL+"/api/v1/ingest/swipes", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	total := func(sel string) int64 {
		r := get(t, fmt.Sprintf("%s/api/v1/series?metric=swipes_in&%s&from=%d&to=%d&step=1h", fs.URL, sel, at.Unix(), at.Add(time.Hour).Unix()))
		var s struct{ Total int64 }
		if err := json.Unmarshal(r.body, &s); err != nil || r.status != 200 {
			t.Fatalf("series %s: %d %s", sel, r.status, r.body)
		}
		return s.Total
	}
	if s1, s2, cell := total("station=S1"), total("station=S2"), total("cells="+c1.String()); s1 != 3 || s2 != 5 || cell != 8 {
		t.Errorf("taps in: S1 %d, S2 %d, their cell %d; want 3, 5, 8", s1, s2, cell)
	}
	if r := get(t, fs.URL+"/api/v1/series?metric=count_car&station=S1"); r.status != 400 || !strings.Contains(string(r.body), `parameter \"metric\"`) {
		t.Errorf("station= of a detector metric: %d %s; want a 400 naming metric", r.status, r.body)
	}
}

// A scenic spot inside a larger site, its centre 50 m from the site's, in
// the same cell: site= answers each one's own gates' footfall, which sum
// to the cell's — not the larger site's outline, which holds both.
func TestSiteFootfallOfNestedSites(t *testing.T) {
	square := func(id string, lat, lng, half float64) string {
		return fmt.Sprintf(`{"type":"Feature","properties":{"id":%q,"name":%q,"capacity":1000},"geometry":{"type":"Polygon","coordinates":[[[%[3]f,%[4]f],[%[5]f,%[4]f],[%[5]f,%[6]f],[%[3]f,%[6]f],[%[3]f,%[4]f]]]}}`,
			id, id, lng-half, lat-half, lng+half, lat+half)
	}
	fs := entityServer(t, true, func(reg *geo.Registry) error {
		sites, err := geo.ReadSitesGeoJSON(strings.NewReader(`{"type":"FeatureCollection","features":[` +
			square("lake", 30.25, 120.15, 0.02) + "," + square("island", 30.2504, 120.1504, 0.001) + `]}`))
		if err != nil {
			return err
		}
		return reg.PutSites(sites)
	})
	lake, _ := fs.Registry.SitePlace("lake")
	island, _ := fs.Registry.SitePlace("island")
	if lake.Cell != island.Cell || lake.Key == island.Key {
		t.Fatalf("places %+v and %+v; the test wants one cell and two keys", lake, island)
	}
	at := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour).Format(time.RFC3339)
	body := fmt.Sprintf(`{"time":%q,"site":"lake","in":100}`+"\n"+`{"time":%q,"site":"island","in":30}`, at, at)
	resp, err := http.Post(fs.URL+"/api/v1/ingest/footfall", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	total := func(sel string) int64 {
		r := get(t, fmt.Sprintf("%s/api/v1/series?metric=footfall_in&%s&from=-3h&step=1h", fs.URL, sel))
		var s struct{ Total int64 }
		if err := json.Unmarshal(r.body, &s); err != nil || r.status != 200 {
			t.Fatalf("series %s: %d %s", sel, r.status, r.body)
		}
		return s.Total
	}
	if l, i, cell := total("site=lake"), total("site=island"), total("cells="+lake.Cell.String()); l != 100 || i != 30 || cell != 130 {
		t.Errorf("footfall in: lake %d, island %d, their cell %d; want 100, 30, 130", l, i, cell)
	}
}

// Without -entity-series a reading of a camera sharing its cell costs its
// cell's rows alone: no per-sensor family is written, and sensor= of such a
// camera is refused with the flag named, while a camera alone in its cell
// still answers its cell's counts.
func TestEntitySeriesOffKeepsCellsOnly(t *testing.T) {
	fs := camerasSharingACell(t, false)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	body := fmt.Sprintf(`{"time":%q,"sensor":"cam-a","class":"person","count":4}`+"\n"+`{"time":%q,"sensor":"cam-c","class":"person","count":5}`, at.Format(time.RFC3339), at.Format(time.RFC3339))
	resp, err := http.Post(fs.URL+"/api/v1/ingest/counts", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	if _, ok := fs.Store.LookupMetric("count_person" + vocab.SensorSuffix); ok {
		t.Errorf("a per-sensor family was written without -entity-series")
	}
	span := fmt.Sprintf("&from=%d&to=%d&step=1h", at.Unix(), at.Add(time.Hour).Unix())
	if r := get(t, fs.URL+"/api/v1/series?metric=count_person&sensor=cam-a"+span); r.status != 400 || !strings.Contains(string(r.body), `parameter \"sensor\"`) || !strings.Contains(string(r.body), "-entity-series") {
		t.Errorf("sensor= of a camera sharing its cell: %d %s; want a 400 naming sensor and -entity-series", r.status, r.body)
	}
	r := get(t, fs.URL+"/api/v1/series?metric=count_person&sensor=cam-c"+span)
	var s struct{ Points [][2]int64 }
	if err := json.Unmarshal(r.body, &s); err != nil || r.status != 200 || len(s.Points) != 1 || s.Points[0][1] != 5 {
		t.Errorf("sensor= of a camera alone in its cell: %d %s; want its cell's 5", r.status, r.body)
	}
}

// camerasSharingACell serves flowd with two cameras 20 m apart in one res-9
// cell (cam-a, cam-b) and one alone (cam-c), keeping entity series or not.
func camerasSharingACell(t *testing.T, entitySeries bool) *flowdtest.Server {
	return entityServer(t, entitySeries, func(reg *geo.Registry) error {
		return reg.PutSensors([]geo.Sensor{
			{ID: "cam-a", Name: "Swanston St west", Lat: -37.81100, Lng: 144.96500},
			{ID: "cam-b", Name: "Swanston St east", Lat: -37.81100, Lng: 144.96523},
			{ID: "cam-c", Name: "Elsewhere", Lat: -37.82000, Lng: 144.98000},
		})
	})
}

// entityServer serves flowd with the registry load fills, keeping the own
// figures of entities sharing a cell apart when entitySeries is set.
func entityServer(t *testing.T, entitySeries bool, load func(*geo.Registry) error) *flowdtest.Server {
	dir := t.TempDir()
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if err := load(reg); err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, EntitySeries: entitySeries}
		return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
	})
	fs.API.EntitySeries = entitySeries
	return fs.Serve()
}
