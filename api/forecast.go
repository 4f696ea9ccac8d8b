package api

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// maxForecastHorizon and maxForecastSteps bound a forecast query: a day
// ahead, in at most a day of minutes.
const (
	maxForecastHorizon = 24 * time.Hour
	maxForecastSteps   = 1440
	maxForecastSeries  = 1000
)

// forecasts serves the forecast and anomaly endpoints over a tracker.
type forecasts struct {
	s *Server
	t *forecast.Tracker
}

// served returns h, or when the server has no tracker, a handler that
// answers 404.
func (f forecasts) served(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	if f.t == nil {
		return notServed
	}
	return h
}

// forecastQuery asks for the forecasts of the series a request names.
type forecastQuery struct {
	place       forecast.Place
	metric      string
	queries     []forecast.Query
	step, steps int64
}

// forecastAnswer is the reply of GET /api/v1/forecast.
type forecastAnswer struct {
	Place    string           `json:"place"`
	Metric   string           `json:"metric"`
	Step     string           `json:"step"`
	Horizon  string           `json:"horizon"`
	Coverage float64          `json:"coverage"`
	Series   []forecastSeries `json:"series"`
	answer.Took
	released
}

// forecastSeries is one series' forecast: a point a step, each the sum of
// the step's minutes (a count) or the reading at its first minute (a level).
type forecastSeries struct {
	ID     string          `json:"id"`
	Name   string          `json:"name,omitempty"`
	Cell   string          `json:"cell"`
	Kind   string          `json:"kind"`
	Known  *time.Time      `json:"known_until,omitempty"` // absent while the model has learnt nothing
	Points []forecastPoint `json:"points"`
}

type forecastPoint struct {
	Time     time.Time `json:"t"`
	Expected float64   `json:"expected"`
	Lower    float64   `json:"lower"`
	Upper    float64   `json:"upper"`
}

// parseForecast reads GET /api/v1/forecast: one of site, station or cells,
// metric (by default a site's occupancy, a station's taps in), horizon
// (default 1h, at most 24h) and step (default 10m).
func (f forecasts) parseForecast(q *query) (fq forecastQuery, err error) {
	if fq.place, fq.metric, err = f.parseSeriesOf(q, &fq.queries); err != nil {
		return fq, err
	}
	if fq.step, err = q.minutes("step", 10*time.Minute); err != nil {
		return fq, err
	}
	horizon, err := q.minutes("horizon", time.Hour)
	if err != nil {
		return fq, err
	}
	if horizon > int64(maxForecastHorizon/time.Minute) {
		return fq, &paramError{Param: "horizon", Value: q.str("horizon"), Reason: "at most 24h"}
	}
	released := q.rel.Noised(fq.metric)
	if released {
		fq.step = q.rel.Step(fq.metric, fq.step)
	}
	// A caller below admin gets a card-derived series forecast from its
	// released figures only; the note says up to when those were released
	// (for an admin, that the forecast is of exact figures).
	now := q.now.Unix() / 60
	q.rel.Span(fq.metric, now-fq.step, now, fq.step)
	if fq.steps = (horizon + fq.step - 1) / fq.step; fq.steps > maxForecastSteps {
		return fq, &paramError{Param: "step", Value: q.str("step"), Reason: fmt.Sprintf("%d steps; at most %d", fq.steps, maxForecastSteps)}
	}
	for i := range fq.queries {
		fq.queries[i].Step, fq.queries[i].Steps, fq.queries[i].Released = fq.step, int(fq.steps), released
	}
	return fq, nil
}

// parseSeriesOf reads which series a request names: a site, a station or
// cells, and the metric, into queries.
func (f forecasts) parseSeriesOf(q *query, queries *[]forecast.Query) (forecast.Place, string, error) {
	metric := q.str("metric")
	switch {
	case q.str("site") != "":
		id := q.str("site")
		site, ok := f.s.Registry.Site(id)
		if !ok {
			return 0, "", &paramError{Param: "site", Value: id, Reason: "unknown site"}
		}
		metric = cmpOr(metric, forecast.Occupancy)
		if metric != forecast.Occupancy && metric != vocab.FootfallIn && metric != vocab.FootfallOut {
			return 0, "", &paramError{Param: "metric", Value: metric, Reason: "a site's forecasts are of occupancy, footfall_in and footfall_out"}
		}
		*queries = append(*queries, forecast.Query{Place: forecast.PlaceSite, ID: id, Cell: uint64(site.Cell), Metric: metric})
		return forecast.PlaceSite, metric, nil
	case q.str("station") != "":
		id := q.str("station")
		station, ok := f.s.Registry.Station(id)
		if !ok {
			return 0, "", &paramError{Param: "station", Value: id, Reason: "unknown station"}
		}
		metric = cmpOr(metric, vocab.SwipesIn)
		if metric != vocab.SwipesIn && metric != vocab.SwipesOut {
			return 0, "", &paramError{Param: "metric", Value: metric, Reason: "a station's forecasts are of swipes_in and swipes_out"}
		}
		*queries = append(*queries, forecast.Query{Place: forecast.PlaceStation, ID: id, Cell: uint64(station.Cell), Metric: metric})
		return forecast.PlaceStation, metric, nil
	case q.str("cells") != "":
		return forecast.PlaceCell, metric, f.parseCells(q, metric, queries)
	}
	return 0, "", &paramError{Param: "site", Reason: "give one of site, station or cells"}
}

// parseCells reads the cells of a forecast of cells: base-resolution
// cells, each its own series.
func (f forecasts) parseCells(q *query, metric string, queries *[]forecast.Query) error {
	if metric == "" {
		return &paramError{Param: "metric", Reason: "required with cells"}
	}
	if err := q.resAllowed(metric, f.s.Res, "cells"); err != nil {
		return err
	}
	v := q.str("cells")
	cells, err := geo.ParseCells(v)
	if err != nil {
		return &paramError{Param: "cells", Value: v, Reason: err.Error()}
	}
	if len(cells) > maxForecastSeries {
		return &paramError{Param: "cells", Value: fmt.Sprint(len(cells), " cells"), Reason: fmt.Sprintf("at most %d", maxForecastSeries)}
	}
	for _, c := range cells {
		if c.Resolution() != f.s.Res {
			return &paramError{Param: "cells", Value: c.String(), Reason: fmt.Sprintf("forecasts are kept per cell of the base resolution %d", f.s.Res)}
		}
		*queries = append(*queries, forecast.Query{Place: forecast.PlaceCell, Cell: uint64(c), Metric: metric})
	}
	return nil
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// forecast answers the forecasts of the series q names. For a caller
// below admin a card-derived series is forecast from the figures the
// privacy layer released of it, so the answer holds nothing the caller
// could not have computed from those.
func (f forecasts) forecast(q forecastQuery, _ *privacy.Release) (*forecastAnswer, error) {
	ans := &forecastAnswer{Place: q.place.String(), Metric: q.metric, Step: stepName(q.step),
		Horizon: stepName(q.step * q.steps), Series: make([]forecastSeries, 0, len(q.queries))}
	for _, fq := range q.queries {
		fc, err := f.t.Forecast(fq)
		if errors.Is(err, forecast.ErrNotWatched) {
			return nil, &paramError{Param: q.place.String(), Value: cmpOr(fq.ID, cellName(fq.Cell)), Reason: err.Error()}
		}
		if err != nil {
			return nil, err
		}
		ans.Coverage = fc.Coverage
		ans.Series = append(ans.Series, seriesOf(fc, q.step))
	}
	return ans, nil
}

func cellName(c uint64) string {
	if c == 0 {
		return ""
	}
	return h3.Cell(c).String()
}

// seriesOf writes a forecast's points, rounded to a tenth.
func seriesOf(fc forecast.Forecast, step int64) forecastSeries {
	s := forecastSeries{ID: fc.ID, Name: fc.Name, Cell: h3.Cell(fc.Cell).String(), Kind: "count",
		Points: make([]forecastPoint, len(fc.Points))}
	if fc.Known > 0 {
		known := time.Unix((fc.Known+1)*60, 0).UTC()
		s.Known = &known
	}
	if fc.Level {
		s.Kind = "level"
	}
	for i, p := range fc.Points {
		s.Points[i] = forecastPoint{Time: time.Unix((fc.From+int64(i)*step)*60, 0).UTC(),
			Expected: round1(p.Expected), Lower: round1(p.Lo), Upper: round1(p.Hi)}
	}
	return s
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// appendCSV appends the points as rows id,time,expected,lower,upper.
func (a *forecastAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "id,time,expected,lower,upper\n"...)
	for _, s := range a.Series {
		id := s.ID
		if id == "" {
			id = s.Cell
		}
		for _, p := range s.Points {
			dst = append(dst, id...)
			dst = append(dst, ',')
			dst = p.Time.AppendFormat(dst, time.RFC3339)
			for _, v := range []float64{p.Expected, p.Lower, p.Upper} {
				dst = append(dst, ',')
				dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
			}
			dst = append(dst, '\n')
		}
	}
	return dst
}
