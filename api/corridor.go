package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
)

// maxCorridorLoads bounds steps × segments of one corridor answer.
const maxCorridorLoads = 2000000

// corridorRequest is the body of POST /api/v1/corridor.
type corridorRequest struct {
	Path  json.RawMessage `json:"path"`
	Width float64         `json:"width"`
	bodyParams
	From    json.RawMessage `json:"from"`
	To      json.RawMessage `json:"to"`
	Segment json.RawMessage `json:"segment"`
	Format  string          `json:"format"`
}

// corridorQuery asks for the section load of a corridor per step.
type corridorQuery struct {
	metric         string
	from, to, step int64 // unix minutes; step in minutes
	corridor       *geo.Corridor
	loc            *geo.CorridorLocator
}

// corridorAnswer is the reply of POST /api/v1/corridor.
type corridorAnswer struct {
	Metric  string  `json:"metric"`
	Res     int     `json:"res"`
	Width   float64 `json:"width_m"`
	Rings   int     `json:"rings"`
	Segment string  `json:"segment"`
	Length  float64 `json:"length_m"`
	Cells   int     `json:"cells"`
	Tier    string  `json:"tier"`
	period
	Step     string            `json:"step"`
	Total    int64             `json:"total"`
	Peak     *corridorPeak     `json:"peak"` // null when the corridor saw nothing
	Segments []corridorSegment `json:"segments"`
	Steps    []corridorStep    `json:"steps"`
	remoteNote
	answer.Took
	released
	Comment string `json:"comment,omitempty"`
}

// corridorSegment describes one segment of a corridor answer.
type corridorSegment struct {
	Index     int        `json:"index"`
	From      float64    `json:"from_m"`
	To        float64    `json:"to_m"`
	Length    float64    `json:"length_m"`
	Mid       [2]float64 `json:"mid"` // [lat, lng]
	PathCells int        `json:"path_cells"`
	Cells     []string   `json:"cells"`
	Total     int64      `json:"total"`
}

// corridorStep is the load of every segment, in path order, over one step.
type corridorStep struct {
	Time  time.Time `json:"time"`
	Total int64     `json:"total"`
	Loads []int64   `json:"loads"`
}

// corridorPeak is the largest load of one segment over one step.
type corridorPeak struct {
	Segment int       `json:"segment"`
	Time    time.Time `json:"time"`
	Load    int64     `json:"load"`
}

// parseCorridorQuery reads the JSON body of POST /api/v1/corridor: a
// path, width and segment choice, metric, from, to, step, res and format.
func (s *Server) parseCorridorQuery(q *query) (cq corridorQuery, err error) {
	var req corridorRequest
	if err := decodeBody(q.body, &req); err != nil {
		return cq, err
	}
	if req.Format == "csv" {
		q.csv = true
	}
	bq := q.fromBody(req.bodyParams, map[string]json.RawMessage{"from": req.From, "to": req.To})
	if cq.metric, err = bq.metric(); err != nil {
		return cq, err
	}
	if cq.from, cq.to, err = bq.span(60); err != nil {
		return cq, err
	}
	if cq.step, err = bq.minutes("step", 5*time.Minute); err != nil {
		return cq, err
	}
	if cq.corridor, cq.loc, err = s.corridorOf(bq, "path", req.Path, req.Width, req.Segment); err != nil {
		return cq, err
	}
	if err := q.resAllowed(cq.metric, cq.corridor.Res, "res"); err != nil {
		return cq, err
	}
	cq.from, cq.to, cq.step = q.rel.Span(cq.metric, cq.from, cq.to, cq.step)
	nseg := int64(len(cq.corridor.Segments))
	if n := (cq.to - cq.from + cq.step - 1) / cq.step; n > maxPoints || n*nseg > maxCorridorLoads {
		return cq, &paramError{Param: "step", Value: bq.str("step"), Reason: fmt.Sprintf("%d steps of %d segments; at most %d loads per query: use a larger step or longer segments", n, nseg, maxCorridorLoads)}
	}
	return cq, nil
}

// corridor answers the section load of a corridor, per step and per
// segment in the path's order, each load a figure of the release, with
// the totals and the peak of the released loads. One scan covers the
// whole corridor; each stored bucket is placed in its segment by a binary
// search over the corridor's cells.
func (s *Server) corridor(q corridorQuery, rel *privacy.Release) (*corridorAnswer, error) {
	nseg := len(q.corridor.Segments)
	n := (q.to - q.from + q.step - 1) / q.step
	tier := s.Store.TierFor(q.from, q.step)
	loads := make([]int64, int(n)*nseg) // step-major
	lastCell, lastSeg := uint64(0), -1
	src := s.sources(false)
	err := src.scan(tier, q.metric, q.loc.Ranges, q.from, q.to, func(cell uint64, minute, v int64) {
		if cell != lastCell || lastSeg < 0 {
			lastCell = cell
			_, lastSeg = q.loc.Find(cell)
		}
		if lastSeg >= 0 {
			loads[int((minute-q.from)/q.step)*nseg+lastSeg] += v
		}
	})
	if err != nil {
		return nil, err
	}
	if err := s.releaseLoads(q, rel, loads); err != nil {
		return nil, err
	}
	ans := newCorridorAnswer(q)
	ans.Tier = tier.String()
	ans.remoteNote = src.note()
	ans.Steps = make([]corridorStep, n)
	for i := range ans.Steps {
		st := corridorStep{Time: time.Unix((q.from+int64(i)*q.step)*60, 0).UTC(), Loads: loads[i*nseg : (i+1)*nseg : (i+1)*nseg]}
		for j, v := range st.Loads {
			st.Total += v
			ans.Segments[j].Total += v
			if v > 0 && (ans.Peak == nil || v > ans.Peak.Load) {
				ans.Peak = &corridorPeak{Segment: j, Time: st.Time, Load: v}
			}
		}
		ans.Total += st.Total
		ans.Steps[i] = st
	}
	ans.Comment = s.noDataComment(q.metric)
	return ans, nil
}

// releaseLoads replaces each load, step-major, by its released figure:
// the segment's cells over the step.
func (s *Server) releaseLoads(q corridorQuery, rel *privacy.Release, loads []int64) error {
	if !rel.Noised(q.metric) {
		return nil
	}
	nseg := len(q.corridor.Segments)
	areas := make([]*privacy.Area, nseg)
	for j, seg := range q.corridor.Segments {
		rs, err := geo.Ranges(seg.Cells, s.Res)
		if err != nil {
			return err
		}
		areas[j] = rel.Area(rs)
	}
	for i := range loads {
		t := q.from + int64(i/nseg)*q.step
		loads[i], _ = rel.Count(privacy.Figure{Metric: q.metric, Area: areas[i%nseg], From: t, To: min(t+q.step, q.to)}, loads[i])
	}
	return nil
}

// newCorridorAnswer describes the corridor and its segments, without
// loads.
func newCorridorAnswer(q corridorQuery) *corridorAnswer {
	c := q.corridor
	segName := "cell"
	if c.SegmentLength > 0 {
		segName = strconv.FormatFloat(c.SegmentLength, 'f', -1, 64)
	}
	ans := &corridorAnswer{
		Metric: q.metric, Res: c.Res, Width: c.Width, Rings: c.Rings, Segment: segName,
		Length: roundDm(c.Length), Cells: len(c.Cells), period: periodOf(q.from, q.to),
		Step: stepName(q.step), Segments: make([]corridorSegment, len(c.Segments)),
	}
	for i, seg := range c.Segments {
		cs := corridorSegment{
			Index: i, From: roundDm(seg.From), To: roundDm(seg.To), Length: roundDm(seg.To - seg.From),
			Mid: [2]float64{seg.Mid.Lat, seg.Mid.Lng}, PathCells: seg.PathCells, Cells: make([]string, len(seg.Cells)),
		}
		for j, cell := range seg.Cells {
			cs.Cells[j] = cell.String()
		}
		ans.Segments[i] = cs
	}
	return ans
}

// appendCSV appends the loads as rows time,segment,from_m,to_m,load, in
// time order and path order within a time.
func (a *corridorAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "time,segment,from_m,to_m,load\n"...)
	for _, st := range a.Steps {
		for j, v := range st.Loads {
			dst = st.Time.AppendFormat(dst, time.RFC3339)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, int64(j), 10)
			dst = append(dst, ',')
			dst = strconv.AppendFloat(dst, a.Segments[j].From, 'f', -1, 64)
			dst = append(dst, ',')
			dst = strconv.AppendFloat(dst, a.Segments[j].To, 'f', -1, 64)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, v, 10)
			dst = append(dst, '\n')
		}
	}
	return dst
}

// corridorOf reads a path, width and segment choice into a cached corridor
// at the query's res (the base resolution by default), and its locator for
// base cells. pathParam names the path in errors.
func (s *Server) corridorOf(q *query, pathParam string, rawPath json.RawMessage, width float64, rawSegment json.RawMessage) (*geo.Corridor, *geo.CorridorLocator, error) {
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		return nil, nil, err
	}
	if len(rawPath) == 0 || string(rawPath) == "null" {
		return nil, nil, &paramError{Param: pathParam, Reason: "required: [[lat,lng],...] or a GeoJSON LineString"}
	}
	path, err := geo.ParsePath(rawPath)
	if err != nil {
		return nil, nil, &paramError{Param: pathParam, Value: string(rawPath), Reason: err.Error()}
	}
	segLen := 0.0
	if v := scalar(rawSegment); v != "" && v != "cell" {
		if segLen, err = strconv.ParseFloat(v, 64); err != nil || segLen <= 0 {
			return nil, nil, &paramError{Param: "segment", Value: v, Reason: `want "cell" or a length in metres`}
		}
	}
	c, err := s.corridors.Get(path, width, res, segLen)
	if err != nil {
		return nil, nil, corridorParamError(pathParam, err)
	}
	loc, err := c.Locator(s.Res)
	if err != nil {
		return nil, nil, corridorParamError("", err)
	}
	return c, loc, nil
}

// corridorParamError turns a corridor input error into a 400 naming the
// parameter; a path error is reported under pathParam.
func corridorParamError(pathParam string, err error) error {
	var ce *geo.CorridorError
	if !errors.As(err, &ce) {
		return err
	}
	name := ce.Input
	if name == "path" && pathParam != "" {
		name = pathParam
	}
	return &paramError{Param: name, Value: ce.Value, Reason: ce.Reason}
}

// roundDm rounds metres to decimetres for answers.
func roundDm(m float64) float64 { return math.Round(m*10) / 10 }
