package api

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// ODPair is one origin-destination pair of an OD answer. Trips and the
// mean travel time are absent when the pair is suppressed.
type ODPair struct {
	Origin      string   `json:"origin"`
	Destination string   `json:"destination"`
	Trips       *int64   `json:"trips,omitempty"`
	MeanMinutes *float64 `json:"mean_minutes,omitempty"`
	Suppressed  bool     `json:"suppressed,omitempty"`
}

type odAnswer struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	Res           int       `json:"res"`
	By            string    `json:"by"`
	Pairs         []ODPair  `json:"pairs"`
	PairsTotal    int       `json:"pairs_total"`
	Trips         int64     `json:"trips"`
	UnmatchedIn   int64     `json:"unmatched_in"`
	UnmatchedOut  int64     `json:"unmatched_out"`
	SuppressBelow int       `json:"suppress_below,omitempty"`
	TookMs        float64   `json:"took_ms"`
}

// odKey is a pair of cells, or of station indexes in the station view.
type odKey struct{ o, d uint64 }

// od serves GET /api/v1/od: trips between origins and destinations over
// [from, to), at a resolution (by=cell, the default) or between stations
// (by=station: both ends must be a station's cell), the top N pairs by
// trips. Origins are restricted by the usual area parameters (cells, site,
// bbox, polygon; everything by default), destinations by the same names
// prefixed with dest_. Pairs with fewer than the suppression threshold of
// trips are marked suppressed for callers below admin.
func (s *Server) od(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := query{args: requestArgs(ctx), now: s.Now()}
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		fail(ctx, err)
		return
	}
	top, err := q.intParam("top", 100, 1, 100000)
	if err != nil {
		fail(ctx, err)
		return
	}
	by := q.str("by")
	if by == "" {
		by = "cell"
	}
	if by != "cell" && by != "station" {
		fail(ctx, &paramError{"by", by, "want cell or station"})
		return
	}
	from, to, err := q.span(24 * 60)
	if err != nil {
		fail(ctx, err)
		return
	}
	origins, dests := vocab.Everywhere, vocab.Everywhere
	if q.hasArea("") {
		a, err := s.parseArea(q)
		if err != nil {
			fail(ctx, err)
			return
		}
		origins = a.ranges
	}
	if q.hasArea("dest_") {
		a, err := s.parseArea(query{args: q.prefixed("dest_"), now: q.now})
		if err != nil {
			fail(ctx, err)
			return
		}
		dests = a.ranges
	}
	tier := storage.TierMinute
	if from%60 == 0 && to%60 == 0 {
		tier = storage.TierHour
	}

	// In the station view each end is the station whose cell it is.
	var stationAt map[uint64]int
	var stations []geo.Station
	if by == "station" {
		stations = s.Registry.Stations()
		stationAt = make(map[uint64]int, len(stations))
		for i, st := range stations {
			if _, taken := stationAt[uint64(st.Cell)]; !taken {
				stationAt[uint64(st.Cell)] = i
			}
		}
	}
	var lastCell uint64
	var lastParent h3.Cell
	parent := func(c uint64) uint64 {
		if res == s.Res {
			return c
		}
		if c != lastCell {
			lastCell, lastParent = c, h3.Cell(c).Parent(res)
		}
		return uint64(lastParent)
	}
	keyOf := func(o, d uint64) (odKey, bool) {
		if !inRanges(dests, d) {
			return odKey{}, false
		}
		if stationAt != nil {
			oi, ok1 := stationAt[o]
			di, ok2 := stationAt[d]
			return odKey{uint64(oi), uint64(di)}, ok1 && ok2
		}
		return odKey{parent(o), parent(d)}, true
	}
	trips := map[odKey]int64{}
	seconds := map[odKey]int64{}
	err = s.Store.ScanSub(tier, vocab.Trips, origins, from, to, func(o, d uint64, _, v int64) {
		if k, ok := keyOf(o, d); ok {
			trips[k] += v
		}
	})
	if err == nil {
		err = s.Store.ScanSub(tier, vocab.TripSeconds, origins, from, to, func(o, d uint64, _, v int64) {
			if k, ok := keyOf(o, d); ok {
				seconds[k] += v
			}
		})
	}
	ans := odAnswer{From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(), Res: res, By: by}
	for _, m := range []struct {
		name string
		sum  *int64
	}{{vocab.UnmatchedIn, &ans.UnmatchedIn}, {vocab.UnmatchedOut, &ans.UnmatchedOut}} {
		if err == nil {
			err = s.Store.Scan(tier, m.name, origins, from, to, func(_ uint64, _, v int64) { *m.sum += v })
		}
	}
	if err != nil {
		fail(ctx, err)
		return
	}
	keys := make([]odKey, 0, len(trips))
	for k, n := range trips {
		keys = append(keys, k)
		ans.Trips += n
	}
	suppress := s.suppressBelow(ctx)
	ans.SuppressBelow = suppress
	// Shown pairs first, by trips; suppressed ones after, in id order, so
	// their place says nothing of their size.
	slices.SortFunc(keys, func(a, b odKey) int {
		sa, sb := trips[a] < int64(suppress), trips[b] < int64(suppress)
		if sa != sb {
			if sa {
				return 1
			}
			return -1
		}
		if !sa && trips[a] != trips[b] {
			if trips[a] > trips[b] {
				return -1
			}
			return 1
		}
		if a.o != b.o {
			return cmpUint(a.o, b.o)
		}
		return cmpUint(a.d, b.d)
	})
	ans.PairsTotal = len(keys)
	name := func(v uint64) string {
		if stationAt != nil {
			return stations[v].ID
		}
		return h3.Cell(v).String()
	}
	for _, k := range keys[:min(len(keys), top)] {
		p := ODPair{Origin: name(k.o), Destination: name(k.d)}
		if n := trips[k]; n < int64(suppress) {
			p.Suppressed = true
		} else {
			mean := float64(seconds[k]) / float64(n) / 60
			p.Trips, p.MeanMinutes = &n, &mean
		}
		ans.Pairs = append(ans.Pairs, p)
	}
	if ans.Pairs == nil {
		ans.Pairs = []ODPair{}
	}
	if wantsCSV(ctx) {
		buf := []byte("origin,destination,trips,mean_minutes\n")
		for _, p := range ans.Pairs {
			buf = append(buf, p.Origin...)
			buf = append(buf, ',')
			buf = append(buf, p.Destination...)
			if p.Suppressed {
				buf = append(buf, ",suppressed,\n"...)
				continue
			}
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, *p.Trips, 10)
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, *p.MeanMinutes, 'f', 1, 64)
			buf = append(buf, '\n')
		}
		ctx.SetContentType("text/csv")
		ctx.SetBody(buf)
		return
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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

// suppressBelow is the count under which numbers of people are hidden from
// this caller: the server's threshold, or 0 for an admin.
func (s *Server) suppressBelow(ctx *fasthttp.RequestCtx) int {
	if RoleOf(ctx) >= RoleAdmin {
		return 0
	}
	return s.SuppressBelow
}

// hasArea reports whether any area parameter with the prefix is given.
func (q query) hasArea(prefix string) bool {
	for _, p := range []string{"cells", "site", "bbox", "polygon"} {
		if q.str(prefix+p) != "" {
			return true
		}
	}
	return false
}

// prefixed returns the parameters named prefix+x as x, plus res.
func (q query) prefixed(prefix string) *fasthttp.Args {
	var out fasthttp.Args
	for _, p := range []string{"cells", "site", "bbox", "polygon"} {
		if v := q.args.Peek(prefix + p); len(v) > 0 {
			out.SetBytesV(p, v)
		}
	}
	if v := q.args.Peek("res"); len(v) > 0 {
		out.SetBytesV("res", v)
	}
	return &out
}

// distinctAnswer is the reply of GET /api/v1/distinct.
type distinctAnswer struct {
	From          time.Time  `json:"from"`
	To            time.Time  `json:"to"`
	Cells         int        `json:"cells"`
	Distinct      *int64     `json:"distinct,omitempty"`
	Suppressed    bool       `json:"suppressed,omitempty"`
	StdError      float64    `json:"std_error"`
	Points        []distinct `json:"points,omitempty"`
	SuppressBelow int        `json:"suppress_below,omitempty"`
	TookMs        float64    `json:"took_ms"`
}

type distinct struct {
	Time       int64  `json:"t"`
	Distinct   *int64 `json:"distinct,omitempty"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// distinctCards serves GET /api/v1/distinct: the number of distinct cards
// that swiped in an area over [from, to), from the union of per-cell,
// per-minute HyperLogLog sketches (so a card seen in many cells and minutes
// counts once), and with step, per step. Counts under the suppression
// threshold are marked suppressed for callers below admin.
func (s *Server) distinctCards(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	q := query{args: requestArgs(ctx), now: s.Now()}
	a, err := s.parseArea(q)
	if err != nil {
		fail(ctx, err)
		return
	}
	from, to, err := q.span(60)
	if err != nil {
		fail(ctx, err)
		return
	}
	step := to - from
	if q.str("step") != "" {
		if step, err = q.minutes("step", time.Minute); err != nil {
			fail(ctx, err)
			return
		}
	}
	n := (to - from + step - 1) / step
	if n > 1000 {
		fail(ctx, &paramError{"step", q.str("step"), fmt.Sprintf("%d steps; at most 1000 sketches per query", n)})
		return
	}
	tier := s.Store.TierFor(from, step)
	total := make([]uint8, vocab.HLLRegisters)
	var steps [][]uint8
	if q.str("step") != "" {
		steps = make([][]uint8, n)
	}
	err = s.Store.ScanSub(tier, vocab.DistinctCards, a.ranges, from, to, func(_, reg uint64, minute, rank int64) {
		r := uint8(rank)
		total[reg] = max(total[reg], r)
		if steps != nil {
			i := (minute - from) / step
			if steps[i] == nil {
				steps[i] = make([]uint8, vocab.HLLRegisters)
			}
			steps[i][reg] = max(steps[i][reg], r)
		}
	})
	if err != nil {
		fail(ctx, err)
		return
	}
	suppress := int64(s.suppressBelow(ctx))
	estimate := func(regs []uint8) (*int64, bool) {
		if regs == nil {
			zero := int64(0)
			return &zero, suppress > 0
		}
		v := int64(vocab.EstimateDistinct(regs) + 0.5)
		if v < suppress {
			return nil, true
		}
		return &v, false
	}
	ans := distinctAnswer{From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(), Cells: len(a.cells), StdError: vocab.HLLStdError, SuppressBelow: int(suppress)}
	ans.Distinct, ans.Suppressed = estimate(total)
	if ans.Suppressed {
		ans.Distinct = nil
	}
	for i, regs := range steps {
		p := distinct{Time: (from + int64(i)*step) * 60}
		p.Distinct, p.Suppressed = estimate(regs)
		if p.Suppressed {
			p.Distinct = nil
		}
		ans.Points = append(ans.Points, p)
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
}
