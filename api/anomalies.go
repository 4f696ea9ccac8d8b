package api

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// anomaliesQuery filters the series flagged now.
type anomaliesQuery struct {
	metric, place string
	bbox          *geo.BBox
	released      bool
	now           int64 // unix minutes
}

// anomaliesAnswer is the reply of GET /api/v1/anomalies.
type anomaliesAnswer struct {
	At        time.Time     `json:"at"`
	Margin    float64       `json:"margin"`
	MinExcess float64       `json:"min_excess"`
	Anomalies []anomalyItem `json:"anomalies"`
	answer.Took
	released
}

// anomalyItem is one flagged series. Value and Expected are counts over
// the anomaly window (five minutes), or readings; for a card-derived
// series shown to a caller below admin, counts over the last released bin.
type anomalyItem struct {
	Place    string    `json:"place"`
	Metric   string    `json:"metric"`
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"`
	Cell     string    `json:"cell"`
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	Since    time.Time `json:"since"`
	Time     time.Time `json:"t"`
	Value    float64   `json:"value"`
	Expected float64   `json:"expected"`
	Score    float64   `json:"score"`
	Released bool      `json:"released,omitempty"`
}

// parseAnomalies reads GET /api/v1/anomalies: optional metric, place
// (station, site or cell) and bbox.
func (f forecasts) parseAnomalies(q *query) (aq anomaliesQuery, err error) {
	aq.metric, aq.place = q.str("metric"), q.str("place")
	switch aq.place {
	case "", "station", "site", "cell":
	default:
		return aq, &paramError{Param: "place", Value: aq.place, Reason: "want station, site or cell"}
	}
	if v := q.str("bbox"); v != "" {
		b, err := geo.ParseBBox(v)
		if err != nil {
			return aq, &paramError{Param: "bbox", Value: v, Reason: err.Error()}
		}
		aq.bbox = &b
	}
	aq.released = q.rel.Noised(vocab.SwipesIn)
	aq.now = q.now.Unix() / 60
	return aq, nil
}

// anomalies lists the series flagged at the last minute fed. A caller
// below admin sees card-derived series as flagged on their released
// figures, and the answer's note says up to when those were released.
func (f forecasts) anomalies(q anomaliesQuery, rel *privacy.Release) (*anomaliesAnswer, error) {
	minute, list := f.t.Anomalies(q.released)
	margin, excess := f.t.Margin()
	ans := &anomaliesAnswer{At: time.Unix((minute+1)*60, 0).UTC(), Margin: margin, MinExcess: excess, Anomalies: []anomalyItem{}}
	for _, a := range list {
		if (q.metric != "" && a.Metric != q.metric) || (q.place != "" && a.Place.String() != q.place) {
			continue
		}
		ll := h3.Cell(a.Cell).LatLng()
		if q.bbox != nil && !q.bbox.Contains(ll.Lat, ll.Lng) {
			continue
		}
		if a.Released {
			rel.Span(a.Metric, q.now-1, q.now, 0)
		}
		ans.Anomalies = append(ans.Anomalies, anomalyItem{Place: a.Place.String(), Metric: a.Metric, ID: a.ID, Name: a.Name,
			Cell: h3.Cell(a.Cell).String(), Lat: math.Round(ll.Lat*1e6) / 1e6, Lng: math.Round(ll.Lng*1e6) / 1e6,
			Since: time.Unix(a.Since*60, 0).UTC(), Time: time.Unix(a.Minute*60, 0).UTC(),
			Value: round1(a.Value), Expected: round1(a.Expected), Score: round1(a.Score), Released: a.Released})
	}
	return ans, nil
}

// appendCSV appends the anomalies as rows.
func (a *anomaliesAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "place,metric,id,cell,since,value,expected,score\n"...)
	for _, x := range a.Anomalies {
		dst = fmt.Appendf(dst, "%s,%s,%s,%s,%s,", x.Place, x.Metric, x.ID, x.Cell, x.Since.Format(time.RFC3339))
		dst = strconv.AppendFloat(dst, x.Value, 'f', -1, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, x.Expected, 'f', -1, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, x.Score, 'f', -1, 64)
		dst = append(dst, '\n')
	}
	return dst
}
