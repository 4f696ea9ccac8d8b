package api

import (
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// maxPoints bounds the steps of one series query.
const maxPoints = 100000

// seriesQuery asks for the per-step sums of a metric over an area.
type seriesQuery struct {
	metric string
	// family is the metric read: metric, or for a sensor sharing its cell
	// its per-sensor family.
	family         string
	sensor         string
	area           *area
	from, to, step int64 // unix minutes; step in minutes
}

// seriesAnswer is the reply of GET /api/v1/series.
type seriesAnswer struct {
	Metric string `json:"metric"`
	Sensor string `json:"sensor,omitempty"`
	Res    int    `json:"res"`
	Cells  int    `json:"cells"`
	Tier   string `json:"tier"`
	period
	Step   string     `json:"step"`
	Total  int64      `json:"total"`
	Points [][2]int64 `json:"points"` // [unix seconds of the step's start, sum]
	answer.Took
	released
	Comment string `json:"comment,omitempty"`
}

// parseSeries reads GET /api/v1/series: metric, an area, from, to and step.
func (s *Server) parseSeries(q *query) (sq seriesQuery, err error) {
	if sq.metric, err = q.metric(); err != nil {
		return sq, err
	}
	sq.family = sq.metric
	if sq.sensor = q.str("sensor"); sq.sensor != "" {
		err = s.sensorArea(q, &sq)
	} else {
		sq.area, err = s.parseArea(q)
	}
	if err != nil {
		return sq, err
	}
	if sq.from, sq.to, err = q.span(60); err != nil {
		return sq, err
	}
	if sq.step, err = q.minutes("step", time.Minute); err != nil {
		return sq, err
	}
	if err := q.resAllowed(sq.metric, sq.area.res, "res"); err != nil {
		return sq, err
	}
	sq.from, sq.to, sq.step = q.rel.Span(sq.metric, sq.from, sq.to, sq.step)
	n, err := q.steps(sq.from, sq.to, sq.step, maxPoints, "per query: use a larger step")
	if err != nil {
		return sq, err
	}
	tier := s.Store.TierFor(sq.from, sq.step)
	cost := s.areaCost(sq.area, tierSpan{tier, sq.from, sq.to}, sq.family, n)
	return sq, s.checkCost(cost, withHourStep(adviceSeries, tier, "step=1h from a whole hour"))
}

// series answers the per-step sums of a metric over an area, each a
// figure of the release, and their total from the released points.
// Coarser cells sum their base-resolution children.
func (s *Server) series(q seriesQuery, rel *privacy.Release) (*seriesAnswer, error) {
	n := (q.to - q.from + q.step - 1) / q.step
	tier := s.Store.TierFor(q.from, q.step)
	sums := make([]int64, n)
	if err := s.Store.SumSteps(tier, q.family, q.area.ranges, q.from, q.to, q.step, sums); err != nil {
		return nil, err
	}
	ans := &seriesAnswer{
		Metric: q.metric, Sensor: q.sensor, Res: q.area.res, Cells: len(q.area.cells), Tier: tier.String(),
		period: periodOf(q.from, q.to), Step: stepName(q.step), Points: make([][2]int64, n),
	}
	area := rel.Area(q.area.ranges)
	for i, v := range sums {
		t := q.from + int64(i)*q.step
		v, _ = rel.Count(privacy.Figure{Metric: q.metric, Area: area, From: t, To: min(t+q.step, q.to)}, v)
		ans.Points[i] = [2]int64{t * 60, v}
		ans.Total += v
	}
	ans.Comment = s.noDataComment(q.metric)
	return ans, nil
}

// sensorArea reads sensor=, a detector's own counts: its cell, or, for a
// sensor sharing its cell with another, its key in the metric's
// per-sensor family.
func (s *Server) sensorArea(q *query, sq *seriesQuery) error {
	if q.hasArea("") {
		return &paramError{Param: "sensor", Value: sq.sensor, Reason: "give the sensor alone, without cells, site, bbox or polygon"}
	}
	if !vocab.Spreads(sq.metric) {
		return &paramError{Param: "metric", Value: sq.metric, Reason: "sensor= answers a detector's metrics, count_<class> and speed_<class>"}
	}
	place, ok := s.Registry.SensorPlace(sq.sensor)
	if !ok {
		return &paramError{Param: "sensor", Value: sq.sensor, Reason: "unknown sensor (GET /api/v1/sensors lists them)"}
	}
	key := place.Cell
	if place.Key != 0 {
		key, sq.family = place.Key, vocab.PerSensor(sq.metric)
	}
	sq.area = &area{res: s.Res, cells: []h3.Cell{place.Cell}, ranges: []vocab.CellRange{{Lo: uint64(key), Hi: uint64(key)}}}
	return nil
}

// appendCSV appends the points as rows time,value.
func (a *seriesAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "time,value\n"...)
	for _, p := range a.Points {
		dst = time.Unix(p[0], 0).UTC().AppendFormat(dst, time.RFC3339)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, p[1], 10)
		dst = append(dst, '\n')
	}
	return dst
}

// noDataComment tells a caller asking for a metric nothing was ever stored
// under, which is most often a misspelt name.
func (s *Server) noDataComment(metric string) string {
	if _, known := s.Store.LookupMetric(metric); !known {
		return "no data has been stored for this metric yet"
	}
	return ""
}
