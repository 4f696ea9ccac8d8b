package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
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
	family string
	// entity names the sensor or station asked for: "sensor=cam-1".
	entity         string
	area           *area
	from, to, step int64 // unix minutes; step in minutes
	// local asks this node's store only, as a query node asks its peers.
	local bool
}

// seriesAnswer is the reply of GET /api/v1/series.
type seriesAnswer struct {
	Metric  string `json:"metric"`
	Sensor  string `json:"sensor,omitempty"`
	Station string `json:"station,omitempty"`
	Group   string `json:"group,omitempty"`
	Res     int    `json:"res"`
	Cells   int    `json:"cells"`
	Tier    string `json:"tier"`
	period
	Step   string     `json:"step"`
	Total  int64      `json:"total"`
	Points [][2]int64 `json:"points"` // [unix seconds of the step's start, sum]
	// RemoteUntil is the end of the steps read from VictoriaMetrics (see
	// History); absent when every step was read locally.
	RemoteUntil *time.Time `json:"remote_until,omitempty"`
	// UnreachablePeers names the peers that did not answer their part of
	// the steps after RemoteUntil (see History.Peers).
	UnreachablePeers []string `json:"unreachable_peers,omitempty"`
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
	switch {
	case q.str("sensor") != "" && q.str("station") != "":
		err = &paramError{Param: "station", Value: q.str("station"), Reason: "give a sensor or a station, not both"}
	case q.str("sensor") != "":
		err = s.entityArea(q, &sq, "sensor")
	case q.str("station") != "":
		err = s.entityArea(q, &sq, "station")
	case q.str("site") != "" && (sq.metric == vocab.FootfallIn || sq.metric == vocab.FootfallOut):
		// A site's footfall is its gates' own: not that of other sites
		// inside its outline.
		err = s.entityArea(q, &sq, "site")
	default:
		sq.area, err = s.parseArea(q)
	}
	if err != nil {
		return sq, err
	}
	if err := seriesGroup(q, &sq); err != nil {
		return sq, err
	}
	if sq.from, sq.to, err = q.span(60); err != nil {
		return sq, err
	}
	if sq.step, err = q.minutes("step", time.Minute); err != nil {
		return sq, err
	}
	sq.local = q.str("local") == "1" || q.str("local") == "true"
	if err := q.resAllowed(sq.metric, sq.area.res, "res"); err != nil {
		return sq, err
	}
	sq.from, sq.to, sq.step = q.rel.Span(sq.metric, sq.from, sq.to, sq.step)
	n, err := q.steps(sq.from, sq.to, sq.step, maxPoints, "per query: use a larger step")
	if err != nil {
		return sq, err
	}
	tier := s.Store.TierFor(sq.from, sq.step)
	cost := s.areaCost(sq.area, tierSpan{tier: tier, from: sq.from, to: sq.to}, sq.family, n)
	return sq, s.checkCost(cost, withHourStep(adviceSeries, tier, "step=1h from a whole hour"))
}

// series answers the per-step sums of a metric over an area, each a
// figure of the release, and their total from the released points.
// Coarser cells sum their base-resolution children.
func (s *Server) series(q seriesQuery, rel *privacy.Release) (*seriesAnswer, error) {
	n := (q.to - q.from + q.step - 1) / q.step
	tier := s.Store.TierFor(q.from, q.step)
	if tier == storage.TierHour && (q.step%60 != 0 || q.from%60 != 0) && s.History.hasMinutesFrom(q.from) {
		// Minutes past the minute tier's retention: VictoriaMetrics
		// keeps them.
		tier = storage.TierMinute
	}
	sums := make([]int64, n)
	var remoteUntil *time.Time
	var unreachable []string
	var err error
	if q.family == "" || q.family == q.metric {
		remoteUntil, unreachable, err = s.sumSteps(tier, q, sums)
	} else {
		// An entity's or a rider group's own family: its buckets, from
		// VictoriaMetrics (under its labels), the store and the peers.
		src := s.sources(q.local)
		err = src.scan(tier, q.family, q.area.ranges, q.from, q.to, func(_ uint64, minute, v int64) {
			i := (minute - q.from) / q.step
			sums[i] = storage.SatAdd(sums[i], v)
		})
		remoteUntil, unreachable = src.remoteUntil, src.unreachable
	}
	if err != nil {
		return nil, err
	}
	ans := &seriesAnswer{
		Metric: q.metric, Res: q.area.res, Cells: len(q.area.cells), Tier: tier.String(),
		period: periodOf(q.from, q.to), Step: stepName(q.step), Points: make([][2]int64, n),
		RemoteUntil: remoteUntil, UnreachablePeers: unreachable,
	}
	if _, g, ok := strings.Cut(q.family, string(vocab.GroupSep)); ok {
		ans.Group = g
	}
	if kind, id, ok := strings.Cut(q.entity, "="); ok {
		switch kind {
		case "sensor":
			ans.Sensor = id
		case "station":
			ans.Station = id
		}
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

// seriesGroup reads group=: the swipes of a rider group's cards.
func seriesGroup(q *query, sq *seriesQuery) error {
	g, err := q.group()
	if err != nil || g == "" {
		return err
	}
	switch {
	case sq.metric != vocab.SwipesIn && sq.metric != vocab.SwipesOut:
		return &paramError{Param: "metric", Value: sq.metric, Reason: "group= answers swipes_in and swipes_out (and /od, /sections their trips)"}
	case sq.family != sq.metric:
		return &paramError{Param: "group", Value: g, Reason: "a rider group is counted per cell, not per station: give cells, bbox, polygon or site"}
	}
	sq.family = vocab.InGroup(sq.metric, g)
	return nil
}

// entityArea reads sensor=, station= or (for footfall) site=, one
// entity's own figures: a detector's counts (count_<class>,
// speed_<class>), a station's taps (swipes_in, swipes_out) or a site's
// footfall, from its cell, or, for one sharing its cell
// with another of its kind, from its key in the metric's per-entity
// family.
func (s *Server) entityArea(q *query, sq *seriesQuery, kind string) error {
	id := q.str(kind)
	if kind != "site" && q.hasArea("") || kind == "site" && (q.str("cells") != "" || q.str("bbox") != "" || q.str("polygon") != "") {
		return &paramError{Param: kind, Value: id, Reason: "give the " + kind + " alone, without cells, site, bbox or polygon"}
	}
	var place geo.Place
	var ok bool
	family := sq.metric
	switch kind {
	case "sensor":
		if !vocab.Spreads(sq.metric) {
			return &paramError{Param: "metric", Value: sq.metric, Reason: "sensor= answers a detector's metrics, count_<class> and speed_<class>"}
		}
		place, ok = s.Registry.SensorPlace(id)
		family += vocab.SensorSuffix
	case "site":
		place, ok = s.Registry.SitePlace(id)
		family += vocab.SiteSuffix
	default:
		if sq.metric != vocab.SwipesIn && sq.metric != vocab.SwipesOut {
			return &paramError{Param: "metric", Value: sq.metric, Reason: "station= answers a station's taps, swipes_in and swipes_out"}
		}
		place, ok = s.Registry.StationPlace(id)
		family += vocab.StationSuffix
	}
	if !ok {
		return &paramError{Param: kind, Value: id, Reason: "unknown " + kind + " (GET /api/v1/" + kind + "s lists them)"}
	}
	key := place.Cell
	if place.Key != 0 {
		if !s.EntitySeries {
			return &paramError{Param: kind, Value: id, Reason: kind + " " + id + " shares its cell with another " + kind + ", and this flowd keeps only the cell's figures, their sum (flowd serve -entity-series keeps each one's own, at twice the cost of such readings)"}
		}
		key, sq.family = place.Key, family
	}
	sq.entity = kind + "=" + id
	sq.area = &area{res: s.Res, cells: []h3.Cell{place.Cell}, ranges: []vocab.CellRange{{Lo: uint64(key), Hi: uint64(key)}}}
	return nil
}

// AppendJSON appends a as json.Marshal writes it, its points written
// here: encoding/json takes about 50 ns a point over them by reflection
// (three times that through a json.Marshaler, whose output it checks),
// most of a long series' answer (70,128 hourly points for eight years).
// The rest is json.Marshal's, with the points left out, and the points
// go where it wrote null for them.
func (a *seriesAnswer) AppendJSON(dst []byte) ([]byte, error) {
	const hole = `"points":null`
	rest := *a
	rest.Points = nil
	head, err := json.Marshal(&rest)
	if err != nil || a.Points == nil {
		return append(dst, head...), err
	}
	i := bytes.Index(head, []byte(hole))
	if i < 0 || bytes.Contains(head[i+len(hole):], []byte(hole)) {
		b, err := json.Marshal(a)
		return append(dst, b...), err
	}
	dst = append(dst, head[:i+len(hole)-len("null")]...)
	dst = appendPoints(dst, a.Points)
	return append(dst, head[i+len(hole):]...), nil
}

// appendPoints appends points as encoding/json writes a [][2]int64.
func appendPoints(dst []byte, points [][2]int64) []byte {
	dst = append(dst, '[')
	for i, p := range points {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, p[0], 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, p[1], 10)
		dst = append(dst, ']')
	}
	return append(dst, ']')
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
