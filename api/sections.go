package api

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// networkCache keeps the metro network of the registry's current state.
type networkCache struct {
	mu  sync.Mutex
	gen uint64
	net *geo.Network
	// cells are the ranges of every station cell of the network.
	cells []vocab.CellRange
}

// get returns the network of the registry's stations, built again only
// when the registry changed.
func (c *networkCache) get(reg *geo.Registry) (*geo.Network, []vocab.CellRange, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen := reg.Generation(); c.net == nil || gen != c.gen {
		n := geo.NewNetwork(reg.Stations())
		cells := make([]h3.Cell, 0, len(n.Stations))
		for _, st := range n.Stations {
			cells = append(cells, st.Cell)
		}
		ranges, err := geo.Ranges(cells, reg.Res())
		if err != nil {
			return nil, nil, err
		}
		c.net, c.cells, c.gen = n, ranges, gen
	}
	return c.net, c.cells, nil
}

// sectionsQuery asks for the load of each link of a line, per direction
// and step.
type sectionsQuery struct {
	line           string
	source         odSource
	group          string
	from, to, step int64 // unix minutes; step in minutes
	net            *geo.Network
	cells          []vocab.CellRange
}

// sectionsAnswer is the reply of GET /api/v1/sections.
type sectionsAnswer struct {
	Line   string   `json:"line"`
	Source odSource `json:"source"`
	Group  string   `json:"group,omitempty"`
	Tier   string   `json:"tier"`
	period
	Step string `json:"step"`
	// Sections are the line's links in line order, each way: A→B, then
	// B→A.
	Sections []section    `json:"sections"`
	Peak     *sectionPeak `json:"peak"` // null when the line carried nothing
	// Trips is how many trips (or legs) were assigned to the network,
	// Unassigned how many had an end at no station of a line, or no path:
	// exact counts, for an admin only.
	Trips      *int64 `json:"trips,omitempty"`
	Unassigned *int64 `json:"unassigned,omitempty"`
	remoteNote
	answer.Took
	released
}

// section is one link of the line one way, with its load per step.
type section struct {
	From  string  `json:"from"` // station ids
	To    string  `json:"to"`
	Km    float64 `json:"km"`
	Total int64   `json:"total"`
	Loads []int64 `json:"loads"`
}

// sectionPeak is the most loaded section and step.
type sectionPeak struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	Time time.Time `json:"time"`
	Load int64     `json:"load"`
}

// parseSections reads GET /api/v1/sections: line, source, from, to and
// step (default 1h).
func (s *Server) parseSections(q *query) (sq sectionsQuery, err error) {
	if sq.line, err = q.required("line"); err != nil {
		return sq, err
	}
	if sq.net, sq.cells, err = s.network.get(s.Registry); err != nil {
		return sq, err
	}
	if _, ok := sq.net.Lines[sq.line]; !ok {
		known := make([]string, 0, len(sq.net.Lines))
		for l := range sq.net.Lines {
			known = append(known, l)
		}
		slices.Sort(known)
		return sq, &paramError{Param: "line", Value: sq.line, Reason: "no station of the registry is on this line" + answer.DidYouMean(sq.line, known) + " (GET /api/v1/stations lists the stations and their lines)"}
	}
	if sq.source, err = parseSource(q); err != nil {
		return sq, err
	}
	if sq.group, err = q.group(); err != nil {
		return sq, err
	}
	if sq.from, sq.to, err = q.span(24 * 60); err != nil {
		return sq, err
	}
	if sq.step, err = q.minutes("step", time.Hour); err != nil {
		return sq, err
	}
	sq.from, sq.to, sq.step = q.rel.Span(sq.source.settled(), sq.from, sq.to, sq.step)
	n, err := q.steps(sq.from, sq.to, sq.step, maxPoints, "per query: use a larger step")
	if err != nil {
		return sq, err
	}
	if loads := n * int64(2*len(sq.net.Lines[sq.line])); loads > maxCorridorLoads {
		return sq, &paramError{Param: "step", Value: q.str("step"), Reason: fmt.Sprintf("%d loads (steps × sections); at most %d: use a larger step or a shorter from–to", loads, maxCorridorLoads)}
	}
	tier := s.Store.TierFor(sq.from, sq.step)
	cost := queryCost{figures: n * int64(2*len(sq.net.Lines[sq.line])), tiers: tier.String()}
	for _, m := range sq.source.legMetrics() {
		cost.rows += s.Store.RowsToRead(tier, grouped(m, sq.group), sq.cells, sq.from, sq.to)
	}
	return sq, s.checkCost(cost, withHourStep("ask a shorter from–to", tier, "step=1h from a whole hour"))
}

// sections assigns the trips of the span, matched or inferred legs, to
// the shortest path of the network between their stations and sums, per
// step of their tap-in, the load of each link of the line each way. Each
// load is a figure of the release; the peak is of the released loads.
func (s *Server) sections(q sectionsQuery, rel *privacy.Release) (*sectionsAnswer, error) {
	n := (q.to - q.from + q.step - 1) / q.step
	tier := s.Store.TierFor(q.from, q.step)
	links := q.net.Lines[q.line]
	index := make(map[int]int, len(links)) // link → position in the line
	for i, l := range links {
		index[l] = i
	}
	ans := &sectionsAnswer{Line: q.line, Source: q.source, Group: q.group, Tier: tier.String(), period: periodOf(q.from, q.to), Step: stepName(q.step)}
	type pathOf struct {
		steps []geo.Step
		ok    bool
	}
	paths := map[[2]uint64]pathOf{}
	src := s.sources(false)
	var trips, unassigned int64
	exact := true
	for _, metric := range q.source.legMetrics() {
		metric = grouped(metric, q.group)
		exact = exact && !rel.Noised(metric)
		// loads[2i] is link i forward, loads[2i+1] back.
		loads := make([][]int64, 2*len(links))
		for i := range loads {
			loads[i] = make([]int64, n)
		}
		err := src.scanSub(tier, metric, q.cells, q.from, q.to, func(o, d uint64, minute, v int64) {
			p, seen := paths[[2]uint64{o, d}]
			if !seen {
				p.steps, p.ok = q.net.Path(h3.Cell(o), h3.Cell(d))
				paths[[2]uint64{o, d}] = p
			}
			if !p.ok {
				unassigned += v
				return
			}
			trips += v
			k := (minute - q.from) / q.step
			for _, st := range p.steps {
				if i, on := index[st.Link]; on {
					if st.Forward {
						loads[2*i][k] += v
					} else {
						loads[2*i+1][k] += v
					}
				}
			}
		})
		if err != nil {
			return nil, err
		}
		s.releaseSections(ans, q, metric, links, loads, rel)
	}
	if exact {
		ans.Trips, ans.Unassigned = &trips, &unassigned
	}
	for _, sec := range ans.Sections {
		for k, v := range sec.Loads {
			if v > 0 && (ans.Peak == nil || v > ans.Peak.Load) {
				ans.Peak = &sectionPeak{From: sec.From, To: sec.To, Time: time.Unix((q.from+int64(k)*q.step)*60, 0).UTC(), Load: v}
			}
		}
	}
	ans.remoteNote = src.note()
	return ans, nil
}

// releaseSections adds the loads of one metric, each released as a
// figure of the trips from the section's two stations to its head, into
// the answer's sections.
func (s *Server) releaseSections(ans *sectionsAnswer, q sectionsQuery, metric string, links []int, loads [][]int64, rel *privacy.Release) {
	if ans.Sections == nil {
		ans.Sections = make([]section, 2*len(links))
		for i, l := range links {
			lk := q.net.Links[l]
			a, b := q.net.Stations[q.net.Nodes[lk.A].Station], q.net.Stations[q.net.Nodes[lk.B].Station]
			km := float64(int64(lk.Km*1000+0.5)) / 1000
			ans.Sections[2*i] = section{From: a.ID, To: b.ID, Km: km, Loads: make([]int64, len(loads[0]))}
			ans.Sections[2*i+1] = section{From: b.ID, To: a.ID, Km: km, Loads: make([]int64, len(loads[0]))}
		}
	}
	// A trip adds to each link of its path: at most every link of the
	// line, one way each, in the step of its tap-in. The bound holds
	// whatever trips there were, so what it costs tells nothing of them.
	rel.Within(metric, len(links))
	for i := range ans.Sections {
		sec := &ans.Sections[i]
		tail, _ := s.Registry.StationCell(sec.From)
		head, _ := s.Registry.StationCell(sec.To)
		both, _ := geo.Ranges([]h3.Cell{tail, head}, s.Res)
		area, dest := rel.Area(both), rel.CellArea(head)
		for k, v := range loads[i] {
			t := q.from + int64(k)*q.step
			if v, ok := rel.Count(privacy.Figure{Metric: metric, Area: area, Dest: dest, From: t, To: min(t+q.step, q.to)}, v); ok {
				sec.Loads[k] += v
				sec.Total += v
			}
		}
	}
}

// appendCSV appends the loads as rows from,to,time,load, section by
// section.
func (a *sectionsAnswer) appendCSV(dst []byte) []byte {
	dst = append(dst, "from,to,time,load\n"...)
	start := a.From.Unix()
	step, _ := time.ParseDuration(a.Step)
	for _, sec := range a.Sections {
		for k, v := range sec.Loads {
			dst = append(dst, sec.From...)
			dst = append(dst, ',')
			dst = append(dst, sec.To...)
			dst = append(dst, ',')
			dst = time.Unix(start+int64(k)*int64(step/time.Second), 0).UTC().AppendFormat(dst, time.RFC3339)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, v, 10)
			dst = append(dst, '\n')
		}
	}
	return dst
}
