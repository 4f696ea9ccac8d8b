package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/valyala/fasthttp"
)

// corridors caches the corridors built for corridor and path-density
// queries, which route planners repeat many times a second.
var corridors = geo.NewCorridorCache(1024)

// maxCorridorLoads bounds steps × segments of one corridor answer.
const maxCorridorLoads = 2000000

// corridorRequest is the body of POST /api/v1/corridor.
type corridorRequest struct {
	Path    json.RawMessage `json:"path"`
	Width   float64         `json:"width"`
	Metric  string          `json:"metric"`
	From    json.RawMessage `json:"from"`
	To      json.RawMessage `json:"to"`
	Step    json.RawMessage `json:"step"`
	Res     json.RawMessage `json:"res"`
	Segment json.RawMessage `json:"segment"`
	Format  string          `json:"format"`
}

// corridorAnswer is the reply of POST /api/v1/corridor.
type corridorAnswer struct {
	Metric   string            `json:"metric"`
	Res      int               `json:"res"`
	Width    float64           `json:"width_m"`
	Rings    int               `json:"rings"`
	Segment  string            `json:"segment"`
	Length   float64           `json:"length_m"`
	Cells    int               `json:"cells"`
	Tier     string            `json:"tier"`
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Step     string            `json:"step"`
	Total    int64             `json:"total"`
	Peak     *corridorPeak     `json:"peak"` // null when the corridor saw nothing
	Segments []corridorSegment `json:"segments"`
	Steps    []corridorStep    `json:"steps"`
	TookMs   float64           `json:"took_ms"`
	Comment  string            `json:"comment,omitempty"`
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

// corridor serves POST /api/v1/corridor: the section load of a corridor,
// per step and per segment in the path's order, with the corridor total
// and its peak. One scan covers the whole corridor; each stored bucket is
// placed in its segment by a binary search over the corridor's cells.
func (s *Server) corridor(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	var req corridorRequest
	if err := decodeBody(ctx, &req); err != nil {
		fail(ctx, err)
		return
	}
	q := s.bodyQuery(map[string]json.RawMessage{"from": req.From, "to": req.To, "step": req.Step, "res": req.Res})
	q.args.Set("metric", req.Metric)
	metric, err := q.metric()
	if err != nil {
		fail(ctx, err)
		return
	}
	from, to, err := q.span(60)
	if err != nil {
		fail(ctx, err)
		return
	}
	step, err := q.minutes("step", 5*time.Minute)
	if err != nil {
		fail(ctx, err)
		return
	}
	c, err := s.parseCorridor(q, "path", req.Path, req.Width, req.Segment)
	if err != nil {
		fail(ctx, err)
		return
	}
	loc, err := c.Locator(s.Res)
	if err != nil {
		fail(ctx, corridorParamError("", err))
		return
	}
	nseg := len(c.Segments)
	n := (to - from + step - 1) / step
	if n > maxPoints || n*int64(nseg) > maxCorridorLoads {
		fail(ctx, &paramError{"step", q.str("step"), fmt.Sprintf("%d steps of %d segments; at most %d loads per query: use a larger step or longer segments", n, nseg, maxCorridorLoads)})
		return
	}
	tier := s.Store.TierFor(from, step)
	loads := make([]int64, int(n)*nseg) // step-major
	lastCell, lastSeg := uint64(0), -1
	err = s.Store.Scan(tier, metric, storageRanges(loc.Ranges), from, to, func(cell uint64, minute, v int64) {
		if cell != lastCell || lastSeg < 0 {
			lastCell = cell
			_, lastSeg = loc.Find(cell)
		}
		if lastSeg >= 0 {
			loads[int((minute-from)/step)*nseg+lastSeg] += v
		}
	})
	if err != nil {
		fail(ctx, err)
		return
	}

	segName := "cell"
	if c.SegmentLength > 0 {
		segName = strconv.FormatFloat(c.SegmentLength, 'f', -1, 64)
	}
	ans := corridorAnswer{
		Metric: metric, Res: c.Res, Width: c.Width, Rings: c.Rings, Segment: segName,
		Length: roundDm(c.Length), Cells: len(c.Cells), Tier: tier.String(),
		From: time.Unix(from*60, 0).UTC(), To: time.Unix(to*60, 0).UTC(),
		Step:     (time.Duration(step) * time.Minute).String(),
		Segments: make([]corridorSegment, nseg), Steps: make([]corridorStep, n),
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
	for i := range ans.Steps {
		st := corridorStep{Time: time.Unix((from+int64(i)*step)*60, 0).UTC(), Loads: loads[i*nseg : (i+1)*nseg : (i+1)*nseg]}
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
	if _, known := s.Store.LookupMetric(metric); !known {
		ans.Comment = "no data has been stored for this metric yet"
	}
	if wantsCSV(ctx) || req.Format == "csv" {
		ctx.SetContentType("text/csv")
		ctx.SetBody(ans.appendCSV(make([]byte, 0, 32*len(loads)+64)))
		return
	}
	ans.TookMs = tookMs(start)
	writeJSON(ctx, fasthttp.StatusOK, ans)
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

// storageRanges converts geo's cell ranges into the store's.
func storageRanges(rs []vocab.CellRange) []vocab.CellRange {
	out := make([]vocab.CellRange, len(rs))
	for i, r := range rs {
		out[i] = vocab.CellRange(r)
	}
	return out
}

// roundDm rounds metres to decimetres for answers.
func roundDm(m float64) float64 { return math.Round(m*10) / 10 }

// parseCorridor reads a path, width and segment choice into a cached
// corridor at the query's res (the base resolution by default). pathParam
// names the path in errors.
func (s *Server) parseCorridor(q query, pathParam string, rawPath json.RawMessage, width float64, rawSegment json.RawMessage) (*geo.Corridor, error) {
	res, err := q.intParam("res", s.Res, 0, s.Res)
	if err != nil {
		return nil, err
	}
	if len(rawPath) == 0 || string(rawPath) == "null" {
		return nil, &paramError{pathParam, "", "required: [[lat,lng],...] or a GeoJSON LineString"}
	}
	path, err := geo.ParsePath(rawPath)
	if err != nil {
		return nil, &paramError{pathParam, clip(rawPath), err.Error()}
	}
	segLen := 0.0
	if v := scalar(rawSegment); v != "" && v != "cell" {
		if segLen, err = strconv.ParseFloat(v, 64); err != nil || segLen <= 0 {
			return nil, &paramError{"segment", v, `want "cell" or a length in metres`}
		}
	}
	c, err := corridors.Get(path, width, res, segLen)
	if err != nil {
		return nil, corridorParamError(pathParam, err)
	}
	return c, nil
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
	return &paramError{name, ce.Value, ce.Reason}
}

// decodeBody decodes a JSON request body into v, refusing unknown fields
// so that a misspelt parameter is an error rather than a silent default.
func decodeBody(ctx *fasthttp.RequestCtx, v any) error {
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &paramError{"body", clip(ctx.PostBody()), "want a JSON object: " + err.Error()}
	}
	return nil
}

// bodyQuery puts a JSON body's scalar fields into a query, so that they
// are parsed and reported exactly as the same parameters of a GET.
func (s *Server) bodyQuery(fields map[string]json.RawMessage) query {
	q := query{args: &fasthttp.Args{}, now: s.Now()}
	for name, raw := range fields {
		if v := scalar(raw); v != "" {
			q.args.Set(name, v)
		}
	}
	return q
}

// scalar returns a JSON string's text or a number's literal, "" for null
// or absent.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// clip cuts a value echoed in an error to a readable length.
func clip(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
