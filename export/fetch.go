package export

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/uber/h3-go/v4"
)

// station is a station as GET /api/v1/stations lists it.
type station struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Line string  `json:"line"`
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
	Cell h3.Cell `json:"cell"`
}

// odPair is a pair of GET /api/v1/od?by=station.
type odPair struct {
	Origin      string   `json:"origin"`
	Destination string   `json:"destination"`
	Trips       int64    `json:"trips"`
	MeanMinutes *float64 `json:"mean_minutes"`
}

// fetch holds the answers an export of one day is made of.
type fetch struct {
	c   Config
	cl  *client
	day time.Time

	metrics  []string
	bbox     string
	stations []station
	// cells: per hour of the day, per cell, the released figure of each
	// metric (absent: left out of the density answer, withheld or none).
	cells [24]map[h3.Cell]map[string]int64
	// stationHours: per station (as stations), per metric of
	// StationMetrics, the 24 hourly figures as /series answered them.
	stationHours [][][24]int64
	od           []odPair
	unmatched    [2]int64
	done, total  int
}

// all reads every answer of the day.
func (f *fetch) all(ctx context.Context) error {
	if err := f.cl.get(ctx, "/api/v1/stations", &f.stations); err != nil {
		return err
	}
	f.stations = slices.DeleteFunc(f.stations, func(s station) bool { return s.Cell == 0 })
	slices.SortFunc(f.stations, func(a, b station) int { return cmp.Compare(a.ID, b.ID) })
	f.metrics = f.c.Metrics
	if f.metrics == nil {
		var m struct{ Metrics []string }
		if err := f.cl.get(ctx, "/api/v1/metrics", &m); err != nil {
			return err
		}
		f.metrics = defaultMetrics(m.Metrics)
	}
	f.bbox = f.c.BBox
	if f.bbox == "" {
		var err error
		if f.bbox, err = f.extent(ctx); err != nil {
			return err
		}
	}
	f.total = 24*len(f.metrics) + len(f.stations)*len(StationMetrics) + 1
	if err := f.cellHours(ctx); err != nil {
		return err
	}
	if err := f.stationSeries(ctx); err != nil {
		return err
	}
	return f.odMatrix(ctx)
}

func (f *fetch) progress(what string) {
	f.done++
	if f.c.Progress != nil {
		f.c.Progress(f.done, f.total, what)
	}
}

func (f *fetch) span(from time.Time, d time.Duration) (string, string) {
	return strconv.FormatInt(from.Unix(), 10), strconv.FormatInt(from.Add(d).Unix(), 10)
}

// period is the span an answer says it released; it must be the one asked
// for, or the export would label figures with the wrong hours.
type period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (p period) check(path string, from time.Time, d time.Duration) error {
	if !p.From.Equal(from) || !p.To.Equal(from.Add(d)) {
		return fmt.Errorf("export: GET %s: the server released %s to %s, not the span asked for (%s to %s)",
			path, p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), from.Format(time.RFC3339), from.Add(d).Format(time.RFC3339))
	}
	return nil
}

// cellHours reads the density of each metric per cell and hour.
func (f *fetch) cellHours(ctx context.Context) error {
	for h := range 24 {
		f.cells[h] = map[h3.Cell]map[string]int64{}
	}
	for _, m := range f.metrics {
		for h := range 24 {
			at := f.day.Add(time.Duration(h) * time.Hour)
			from, to := f.span(at, time.Hour)
			path := query("/api/v1/density", "metric", m, "res", strconv.Itoa(f.c.Res), "bbox", f.bbox, "from", from, "to", to)
			var a struct {
				period
				Cells []struct {
					Cell  h3.Cell `json:"cell"`
					Value int64   `json:"value"`
				} `json:"cells"`
			}
			if err := f.cl.get(ctx, path, &a); err != nil {
				return err
			}
			if err := a.check(path, at, time.Hour); err != nil {
				return err
			}
			for _, c := range a.Cells {
				if f.cells[h][c.Cell] == nil {
					f.cells[h][c.Cell] = map[string]int64{}
				}
				f.cells[h][c.Cell][m] = c.Value
			}
			f.progress(fmt.Sprintf("%s %s hour %02d", f.day.Format(time.DateOnly), m, h))
		}
	}
	return nil
}

// stationSeries reads each station's hourly series of each station metric.
func (f *fetch) stationSeries(ctx context.Context) error {
	f.stationHours = make([][][24]int64, len(f.stations))
	from, to := f.span(f.day, 24*time.Hour)
	for i, s := range f.stations {
		f.stationHours[i] = make([][24]int64, len(StationMetrics))
		for j, m := range StationMetrics {
			path := query("/api/v1/series", "metric", m, "cells", s.Cell.String(), "step", "1h", "from", from, "to", to)
			var a struct {
				period
				Points [][2]int64 `json:"points"`
			}
			if err := f.cl.get(ctx, path, &a); err != nil {
				return err
			}
			if err := a.check(path, f.day, 24*time.Hour); err != nil {
				return err
			}
			if len(a.Points) != 24 {
				return fmt.Errorf("export: GET %s: %d points, want 24 hours", path, len(a.Points))
			}
			for h, p := range a.Points {
				f.stationHours[i][j][h] = p[1]
			}
			f.progress(fmt.Sprintf("%s station %s %s", f.day.Format(time.DateOnly), s.ID, m))
		}
	}
	return nil
}

// odMatrix reads the station OD matrix of the day, every pair released.
func (f *fetch) odMatrix(ctx context.Context) error {
	from, to := f.span(f.day, 24*time.Hour)
	path := query("/api/v1/od", "by", "station", "top", "100000", "from", from, "to", to)
	var a struct {
		period
		Pairs        []odPair `json:"pairs"`
		PairsTotal   int      `json:"pairs_total"`
		UnmatchedIn  int64    `json:"unmatched_in"`
		UnmatchedOut int64    `json:"unmatched_out"`
	}
	if err := f.cl.get(ctx, path, &a); err != nil {
		return err
	}
	if err := a.check(path, f.day, 24*time.Hour); err != nil {
		return err
	}
	if a.PairsTotal != len(a.Pairs) {
		return fmt.Errorf("export: GET %s: %d pairs of %d: more than the 100,000 one answer holds", path, len(a.Pairs), a.PairsTotal)
	}
	f.od = a.Pairs
	slices.SortFunc(f.od, func(a, b odPair) int {
		return cmp.Or(cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Destination, b.Destination))
	})
	f.unmatched = [2]int64{a.UnmatchedIn, a.UnmatchedOut}
	f.progress(f.day.Format(time.DateOnly) + " station OD matrix")
	return nil
}

// extent returns the box around the stations, sensors and sites, a
// hundredth of a degree (about a kilometre) wider on each side.
func (f *fetch) extent(ctx context.Context) (string, error) {
	w, s, e, n := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	add := func(lng, lat float64) {
		w, s, e, n = min(w, lng), min(s, lat), max(e, lng), max(n, lat)
	}
	for _, st := range f.stations {
		add(st.Lng, st.Lat)
	}
	var sensors []struct{ Lat, Lng float64 }
	if err := f.cl.get(ctx, "/api/v1/sensors", &sensors); err != nil {
		return "", err
	}
	for _, p := range sensors {
		add(p.Lng, p.Lat)
	}
	var sites struct {
		Features []struct {
			Geometry struct {
				Coordinates json.RawMessage `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := f.cl.get(ctx, "/api/v1/sites", &sites); err != nil {
		return "", err
	}
	for _, ft := range sites.Features {
		var v any
		json.Unmarshal(ft.Geometry.Coordinates, &v)
		walkPositions(v, add)
	}
	if math.IsInf(w, 1) {
		return "", fmt.Errorf("export: the server has no stations, sensors or sites to take the area from: give -bbox west,south,east,north")
	}
	const pad = 0.01
	return fmt.Sprintf("%.4f,%.4f,%.4f,%.4f", w-pad, s-pad, e+pad, n+pad), nil
}

// walkPositions calls add for each [lng, lat] of GeoJSON coordinates.
func walkPositions(v any, add func(lng, lat float64)) {
	a, ok := v.([]any)
	if !ok {
		return
	}
	if len(a) >= 2 {
		lng, ok1 := a[0].(float64)
		lat, ok2 := a[1].(float64)
		if ok1 && ok2 {
			add(lng, lat)
			return
		}
	}
	for _, x := range a {
		walkPositions(x, add)
	}
}
