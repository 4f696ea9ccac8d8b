package api

import (
	"cmp"
	"errors"
	"slices"
	"strconv"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// ODPair is one origin-destination pair of an OD answer. Trips are those
// of the query's source; Inferred says how many of them were inferred
// (with source=all). The mean travel time is that of the matched trips,
// whose tap-outs time them: null when there are none or their travel
// seconds were withheld.
type ODPair struct {
	Origin      string   `json:"origin"`
	Destination string   `json:"destination"`
	Trips       int64    `json:"trips"`
	Inferred    int64    `json:"inferred,omitempty"`
	MeanMinutes *float64 `json:"mean_minutes"`
}

// odSource is which trips an OD query counts: matched (a tap-in with
// its tap-out), inferred (destinations of tap-in-only legs, chained) or
// both.
type odSource string

const (
	sourceMatched  odSource = "matched"
	sourceInferred odSource = "inferred"
	sourceAll      odSource = "all"
)

func (src odSource) matched() bool  { return src != sourceInferred }
func (src odSource) inferred() bool { return src != sourceMatched }

// settled is the metric whose release line a span of the source's trips
// ends at: inferred ones settle later (a leg waits for the card's next
// tap).
func (src odSource) settled() string {
	if src.inferred() {
		return vocab.LegsInferred
	}
	return vocab.Trips
}

// legMetrics are the metrics of the source's rides through the network:
// matched trips (a tap-in and tap-out of one system) and inferred legs
// (one line each).
func (src odSource) legMetrics() []string {
	var ms []string
	if src.matched() {
		ms = append(ms, vocab.Trips)
	}
	if src.inferred() {
		ms = append(ms, vocab.LegsInferred)
	}
	return ms
}

// grouped returns metric's family for group, or metric when group is "".
func grouped(metric, group string) string {
	if group == "" {
		return metric
	}
	return vocab.InGroup(metric, group)
}

// parseSource reads the source parameter: matched by default.
func parseSource(q *query) (odSource, error) {
	switch src := odSource(q.str("source")); src {
	case "":
		return sourceMatched, nil
	case sourceMatched, sourceInferred, sourceAll:
		return src, nil
	default:
		return "", &paramError{Param: "source", Value: string(src), Reason: "want matched, inferred or all"}
	}
}

// odQuery asks for the top trips between origins and destinations.
type odQuery struct {
	res, top       int
	byStation      bool
	source         odSource
	group          string
	from, to       int64 // unix minutes
	origins, dests []vocab.CellRange
}

type odAnswer struct {
	period
	Res          int      `json:"res"`
	Tier         string   `json:"tier"`
	By           string   `json:"by"`
	Source       odSource `json:"source"`
	Group        string   `json:"group,omitempty"`
	Pairs        []ODPair `json:"pairs"`
	PairsTotal   int      `json:"pairs_total"`
	Trips        int64    `json:"trips"`
	UnmatchedIn  int64    `json:"unmatched_in"`
	UnmatchedOut int64    `json:"unmatched_out"`
	remoteNote
	answer.Took
	released
}

// parseOD reads GET /api/v1/od: res, top, by (cell or station), from, to,
// the origins' area (cells, site, bbox, polygon; everything by default)
// and the destinations' (the same names prefixed with dest_).
func (s *Server) parseOD(q *query) (oq odQuery, err error) {
	if oq.res, err = q.intParam("res", s.Res, 0, s.Res); err != nil {
		return oq, err
	}
	if oq.top, err = q.intParam("top", 100, 1, 100000); err != nil {
		return oq, err
	}
	switch by := q.str("by"); by {
	case "", "cell":
	case "station":
		oq.byStation = true
	default:
		return oq, &paramError{Param: "by", Value: by, Reason: "want cell or station"}
	}
	if oq.source, err = parseSource(q); err != nil {
		return oq, err
	}
	if oq.group, err = q.group(); err != nil { // matched trips by the card's tap-out, inferred ones by its tap-in
		return oq, err
	}
	if err := q.resAllowed(vocab.Trips, oq.res, "res"); err != nil {
		return oq, err
	}
	if oq.from, oq.to, err = q.span(24 * 60); err != nil {
		return oq, err
	}
	oq.from, oq.to, _ = q.rel.Span(oq.source.settled(), oq.from, oq.to, 0)
	if oq.origins, err = s.rangesOf(q, ""); err != nil {
		return oq, err
	}
	if oq.dests, err = s.rangesOf(q, "dest_"); err != nil {
		return oq, err
	}
	return oq, nil
}

// rangesOf returns the ranges of the area named by the area parameters
// with the prefix, everything when there are none.
func (s *Server) rangesOf(q *query, prefix string) ([]vocab.CellRange, error) {
	if !q.hasArea(prefix) {
		return vocab.Everywhere, nil
	}
	if prefix != "" {
		q = q.prefixed(prefix)
	}
	a, err := s.parseArea(q)
	var pe *paramError
	if errors.As(err, &pe) && pe.Param != "res" {
		// The area's parameters were read without their prefix; res is
		// shared.
		pe.Param = prefix + pe.Param
	}
	if err != nil {
		return nil, err
	}
	return a.ranges, nil
}

// od answers the trips between origins and destinations over [from, to),
// at a resolution or between stations (both ends must be a station's
// cell), the top pairs by trips. Each pair's trips and travel seconds are
// figures of the release; a pair whose trips it withholds is left out, so
// that not even its existence shows, and the totals are those of the
// pairs released.
func (s *Server) od(q odQuery, rel *privacy.Release) (*odAnswer, error) {
	// The tier as for series: hours for whole hours or a span reaching past
	// the minute tier's retention, read then over the whole hours the span
	// touches (the answer's from and to say which).
	tier := s.Store.TierFor(q.from, q.to-q.from)
	if tier == storage.TierHour {
		q.from, q.to = tier.Truncate(q.from), tier.Truncate(q.to+59)
	}
	ends := s.newODEnds(q)
	src := s.sources(false)
	trips, seconds, inferred, err := s.scanTrips(src, tier, q, ends)
	if err != nil {
		return nil, err
	}
	ans := &odAnswer{period: periodOf(q.from, q.to), Res: q.res, Tier: tier.String(), By: "cell", Source: q.source, Group: q.group, Pairs: []ODPair{}}
	if q.byStation {
		ans.By = "station"
	}
	origins := rel.Area(q.origins)
	for _, m := range []struct {
		name string
		sum  *int64
	}{{vocab.UnmatchedIn, &ans.UnmatchedIn}, {vocab.UnmatchedOut, &ans.UnmatchedOut}} {
		if err := src.scan(tier, m.name, q.origins, q.from, q.to, func(_ uint64, _, v int64) { *m.sum += v }); err != nil {
			return nil, err
		}
		*m.sum, _ = rel.Count(privacy.Figure{Metric: m.name, Area: origins, From: q.from, To: q.to}, *m.sum)
	}
	// A pair's matched and inferred trips are figures of their own; the
	// pair's trips are the sum of those released.
	pairs := map[odKey]*ODPair{}
	release := func(metric string, sums map[odKey]int64) {
		for k, n := range sums {
			o, d := rel.CellArea(ends.cell(k.o)), rel.CellArea(ends.cell(k.d))
			n, ok := rel.Count(privacy.Figure{Metric: metric, Area: o, Dest: d, From: q.from, To: q.to}, n)
			if !ok {
				continue
			}
			p := pairs[k]
			if p == nil {
				p = &ODPair{Origin: ends.name(k.o), Destination: ends.name(k.d)}
				pairs[k] = p
			}
			p.Trips += n
			ans.Trips += n
			if metric == grouped(vocab.TripsInferred, q.group) {
				p.Inferred = n
				continue
			}
			if sec, ok := rel.Count(privacy.Figure{Metric: grouped(vocab.TripSeconds, q.group), Area: o, Dest: d, From: q.from, To: q.to}, seconds[k]); ok {
				mean := float64(sec) / float64(n) / 60
				p.MeanMinutes = &mean
			}
		}
	}
	release(grouped(vocab.Trips, q.group), trips)
	release(grouped(vocab.TripsInferred, q.group), inferred)
	keys := make([]odKey, 0, len(pairs))
	for k, p := range pairs {
		if q.source != sourceAll {
			p.Inferred = 0 // the source says it
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b odKey) int {
		return cmp.Or(cmp.Compare(pairs[b].Trips, pairs[a].Trips), cmp.Compare(a.o, b.o), cmp.Compare(a.d, b.d))
	})
	ans.PairsTotal = len(keys)
	for _, k := range keys[:min(len(keys), q.top)] {
		ans.Pairs = append(ans.Pairs, *pairs[k])
	}
	ans.remoteNote = src.note()
	return ans, nil
}

// odKey is a pair of cells, or of station indexes in the station view.
type odKey struct{ o, d uint64 }

// odEnds names the ends of trips: cells at the query's resolution, or in
// the station view, the station whose cell each end is.
type odEnds struct {
	baseRes, res int
	dests        []vocab.CellRange
	stations     []geo.Station
	stationAt    map[uint64]int // nil in the cell view
	lastCell     uint64
	lastParent   h3.Cell
}

func (s *Server) newODEnds(q odQuery) *odEnds {
	e := &odEnds{baseRes: s.Res, res: q.res, dests: q.dests}
	if q.byStation {
		e.stations = s.Registry.Stations()
		e.stationAt = make(map[uint64]int, len(e.stations))
		for i, st := range e.stations {
			if _, taken := e.stationAt[uint64(st.Cell)]; !taken {
				e.stationAt[uint64(st.Cell)] = i
			}
		}
	}
	return e
}

// key returns the pair of a trip from base cell o to base cell d, false
// when d is outside the destinations or, in the station view, an end is
// at no station.
func (e *odEnds) key(o, d uint64) (odKey, bool) {
	if !inRanges(e.dests, d) {
		return odKey{}, false
	}
	if e.stationAt != nil {
		oi, ok1 := e.stationAt[o]
		di, ok2 := e.stationAt[d]
		return odKey{uint64(oi), uint64(di)}, ok1 && ok2
	}
	return odKey{e.parent(o), e.parent(d)}, true
}

func (e *odEnds) parent(c uint64) uint64 {
	if e.res == e.baseRes {
		return c
	}
	if c != e.lastCell {
		e.lastCell, e.lastParent = c, h3.Cell(c).Parent(e.res)
	}
	return uint64(e.lastParent)
}

// cell returns the cell of an end: the cell itself, or the station's.
func (e *odEnds) cell(v uint64) h3.Cell {
	if e.stationAt != nil {
		return e.stations[v].Cell
	}
	return h3.Cell(v)
}

func (e *odEnds) name(v uint64) string {
	if e.stationAt != nil {
		return e.stations[v].ID
	}
	return h3.Cell(v).String()
}

// scanTrips sums the matched trips and their travel seconds, and the
// inferred trips, of the query's source per pair.
func (s *Server) scanTrips(src *sources, tier storage.Tier, q odQuery, ends *odEnds) (trips, seconds, inferred map[odKey]int64, err error) {
	trips, seconds, inferred = map[odKey]int64{}, map[odKey]int64{}, map[odKey]int64{}
	type sum struct {
		name string
		sums map[odKey]int64
	}
	var sums []sum
	if q.source.matched() {
		sums = append(sums, sum{grouped(vocab.Trips, q.group), trips}, sum{grouped(vocab.TripSeconds, q.group), seconds})
	}
	if q.source.inferred() {
		sums = append(sums, sum{grouped(vocab.TripsInferred, q.group), inferred})
	}
	for _, m := range sums {
		err := src.scanSub(tier, m.name, q.origins, q.from, q.to, func(o, d uint64, _, v int64) {
			if k, ok := ends.key(o, d); ok {
				m.sums[k] += v
			}
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return trips, seconds, inferred, nil
}

// appendCSV appends the pairs as rows origin,destination,trips,mean_minutes;
// a withheld mean is an empty field.
func (a *odAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "origin,destination,trips,mean_minutes\n"...)
	for _, p := range a.Pairs {
		dst = append(dst, p.Origin...)
		dst = append(dst, ',')
		dst = append(dst, p.Destination...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, p.Trips, 10)
		dst = append(dst, ',')
		if p.MeanMinutes != nil {
			dst = strconv.AppendFloat(dst, *p.MeanMinutes, 'f', 1, 64)
		}
		dst = append(dst, '\n')
	}
	return dst
}

func inRanges(rs []vocab.CellRange, c uint64) bool {
	i, _ := slices.BinarySearchFunc(rs, c, func(r vocab.CellRange, c uint64) int {
		if r.Hi < c {
			return -1
		}
		if r.Lo > c {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Lo <= c && c <= rs[i].Hi
}
