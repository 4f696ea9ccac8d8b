package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
)

// pathDensityReply is what the tests read of a path-density answer.
type pathDensityReply struct {
	Paths []struct {
		ID      string     `json:"id"`
		Cells   int        `json:"cells"`
		Current int64      `json:"current"`
		Recent  [][2]int64 `json:"recent"`
		MaxCell *struct {
			Cell  string `json:"cell"`
			Value int64  `json:"value"`
		} `json:"max_cell"`
	} `json:"paths"`
}

// corridorCells returns the cells of a path's corridor as the corridor
// endpoint lists them.
func (s *queryServer) corridorCells(t *testing.T, path []h3.LatLng, width float64) []string {
	var c corridorReply
	s.call(t, "/api/v1/corridor", map[string]any{"path": latLngs(path), "width": width, "metric": "swipes_in"}, 200, &c)
	var cells []string
	for _, seg := range c.Segments {
		cells = append(cells, seg.Cells...)
	}
	return cells
}

func TestPathDensityMatchesDensityAndSeries(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute).Add(-time.Hour).Add(20 * time.Second)
	s := startQueryServer(t, now)
	minute := now.Truncate(time.Minute)
	a := []h3.LatLng{{Lat: 30.25, Lng: 120.10}, {Lat: 30.25, Lng: 120.14}}
	b := []h3.LatLng{{Lat: 30.24, Lng: 120.10}, {Lat: 30.27, Lng: 120.12}, {Lat: 30.27, Lng: 120.15}}
	// Taps along both paths and beside them over the last 80 minutes.
	var swipes []swipe
	for i := range 40 {
		for _, p := range [][]h3.LatLng{a, b} {
			f := float64(i) / 40
			ll := h3.LatLng{Lat: p[0].Lat + f*(p[len(p)-1].Lat-p[0].Lat), Lng: p[0].Lng + f*(p[len(p)-1].Lng-p[0].Lng)}
			swipes = append(swipes, swipe{ll, minute.Add(-time.Duration(i*2) * time.Minute), 1 + i%5})
			ll.Lat += 0.004 // about 440 m off the line
			swipes = append(swipes, swipe{ll, minute.Add(-time.Duration(i) * time.Minute), 2})
		}
	}
	s.postSwipes(t, swipes)

	var got pathDensityReply
	s.call(t, "/api/v1/path/density", map[string]any{
		"paths":  []map[string]any{{"id": "a", "path": latLngs(a)}, {"id": "b", "path": map[string]any{"type": "LineString", "coordinates": [][2]float64{{b[0].Lng, b[0].Lat}, {b[1].Lng, b[1].Lat}, {b[2].Lng, b[2].Lat}}}}},
		"width":  500,
		"metric": "swipes_in",
		"window": "15m",
		"recent": "1h",
	}, 200, &got)
	if len(got.Paths) != 2 || got.Paths[0].ID != "a" || got.Paths[1].ID != "b" {
		t.Fatalf("paths %+v", got.Paths)
	}
	for i, p := range [][]h3.LatLng{a, b} {
		pd := got.Paths[i]
		cells := strings.Join(s.corridorCells(t, p, 500), ",")
		var dens struct {
			Total int64 `json:"total"`
			Cells []struct {
				Cell  string `json:"cell"`
				Value int64  `json:"value"`
			} `json:"cells"`
		}
		s.call(t, "/api/v1/density?metric=swipes_in&window=15m&cells="+url.QueryEscape(cells), nil, 200, &dens)
		if pd.Current == 0 || pd.Current != dens.Total {
			t.Errorf("path %s: current %d, density over its %d cells %d", pd.ID, pd.Current, pd.Cells, dens.Total)
		}
		var maxCell string
		var maxV int64
		for _, c := range dens.Cells {
			if c.Value > maxV {
				maxCell, maxV = c.Cell, c.Value
			}
		}
		if pd.MaxCell == nil || pd.MaxCell.Value != maxV {
			t.Errorf("path %s: max cell %+v, density's largest %s=%d", pd.ID, pd.MaxCell, maxCell, maxV)
		}
		var series struct {
			Points [][2]int64 `json:"points"`
		}
		to := minute.Add(time.Minute)
		s.call(t, fmt.Sprintf("/api/v1/series?metric=swipes_in&step=5m&from=%d&to=%d&cells=%s", to.Add(-time.Hour).Unix(), to.Unix(), url.QueryEscape(cells)), nil, 200, &series)
		if len(pd.Recent) != 12 || fmt.Sprint(pd.Recent) != fmt.Sprint(series.Points) {
			t.Errorf("path %s: recent\n%v, series\n%v", pd.ID, pd.Recent, series.Points)
		}
	}

	for _, tc := range []struct {
		body  map[string]any
		param string
	}{
		{map[string]any{"metric": "swipes_in"}, "paths"},
		{map[string]any{"metric": "swipes_in", "paths": []map[string]any{{"id": "x", "path": latLngs(a)}, {"id": "y", "path": [][2]float64{{30, 120}}}}}, "paths[1].path"},
		{map[string]any{"metric": "swipes_in", "paths": []map[string]any{{"id": "x", "path": latLngs(a)}}, "recent": "7m"}, "recent"},
		{map[string]any{"metric": "swipes_in", "paths": []map[string]any{{"id": "x", "path": latLngs(a)}}, "window": "0s"}, "window"},
	} {
		var e struct{ Error string }
		s.call(t, "/api/v1/path/density", tc.body, 400, &e)
		if !strings.Contains(e.Error, fmt.Sprintf("parameter %q", tc.param)) {
			t.Errorf("%v: error %q does not name %s", tc.body, e.Error, tc.param)
		}
	}
}

// BenchmarkPathDensity asks for three 10–25 km candidate paths, 500 m
// wide, the last 15 minutes and the last hour in 5-minute steps, over a
// store holding a synthetic day: what a route planner asks per request.
func BenchmarkPathDensity(b *testing.B) {
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	s := startQueryServer(b, day.Add(18*time.Hour))
	fillSyntheticDay(b, s.st, day)
	body := map[string]any{
		"paths": []map[string]any{
			{"id": "direct", "path": latLngs(path50km[:2])},
			{"id": "north", "path": [][2]float64{{30.10, 120.00}, {30.20, 120.05}, {30.25, 120.18}}},
			{"id": "short", "path": [][2]float64{{30.20, 120.10}, {30.25, 120.18}}},
		},
		"width": 500, "metric": "swipes_in", "window": "15m", "recent": "1h",
	}
	var got pathDensityReply
	s.call(b, "/api/v1/path/density", body, 200, &got)
	if got.Paths[0].Current == 0 {
		b.Fatalf("no density along %+v", got.Paths[0])
	}
	for b.Loop() {
		s.call(b, "/api/v1/path/density", body, 200, nil)
	}
}
