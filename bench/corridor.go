package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/uber/h3-go/v4"
)

// Corridor is a section-load query: a path through the city with a width,
// cut into segments, whose load per segment and minute both servers answer.
type Corridor struct {
	Metric   string
	Path     [][2]float64 // [lat, lng]
	Width    float64      // metres
	Segment  float64      // metres
	Cells    []h3.Cell    // flowd's corridor cells, learnt from its answer
	Segments [][]h3.Cell
}

// BenchCorridor runs from Wulin Square past West Lake to the south-east:
// about 12 km of the city's busiest roads.
func BenchCorridor(metric string) *Corridor {
	return &Corridor{
		Metric: metric,
		Path: [][2]float64{
			{city.CityCenter.Lat, city.CityCenter.Lng},
			{city.WestLake.Lat, city.WestLake.Lng},
			{30.2100, 120.2100},
		},
		Width:   300,
		Segment: 1000,
	}
}

// Total sums the day's buckets of the corridor's metric in its cells over
// minutes [from, to).
func (c *Corridor) Total(d *Day, from, to int) int64 {
	in := map[h3.Cell]bool{}
	for _, x := range c.Cells {
		in[x] = true
	}
	var n int64
	for _, s := range d.Samples {
		k := d.Series[s.Series]
		if int(s.Minute) >= from && int(s.Minute) < to && k.Metric == c.Metric && in[k.Cell] {
			n += s.Value
		}
	}
	return n
}

// FlowdCorridor asks flowd for the corridor's load per segment at a
// one-minute step over minutes [from, to), and learns its cells.
func FlowdCorridor(p *Proc, d *Day, c *Corridor, from, to int) (Timed, error) {
	req, err := json.Marshal(map[string]any{
		"path":    c.Path,
		"width":   c.Width,
		"metric":  c.Metric,
		"from":    strconv.FormatInt(d.Start.Unix()+int64(from)*60, 10),
		"to":      strconv.FormatInt(d.Start.Unix()+int64(to)*60, 10),
		"step":    "1m",
		"segment": c.Segment,
	})
	if err != nil {
		return Timed{}, err
	}
	start := time.Now()
	resp, err := queryClient.Post(p.URL+"/api/v1/corridor", "application/json", bytes.NewReader(req))
	if err != nil {
		return Timed{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return Timed{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Timed{}, fmt.Errorf("POST /api/v1/corridor: %s: %.500s", resp.Status, body)
	}
	var ans struct {
		Total    int64 `json:"total"`
		Segments []struct {
			Cells []string `json:"cells"`
		} `json:"segments"`
		Steps []struct {
			Loads []int64 `json:"loads"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return Timed{}, fmt.Errorf("POST /api/v1/corridor: %w", err)
	}
	c.Cells, c.Segments = c.Cells[:0], c.Segments[:0]
	for _, s := range ans.Segments {
		seg, err := geo.ParseCells(strings.Join(s.Cells, ","))
		if err != nil {
			return Timed{}, fmt.Errorf("corridor cells: %w", err)
		}
		c.Cells = append(c.Cells, seg...)
		c.Segments = append(c.Segments, seg)
	}
	return Timed{Took: took, Total: ans.Total, Items: len(ans.Steps) * len(ans.Segments), Bytes: len(body)}, nil
}

// PeerCorridor answers the same with the peer: query_range of
// sum by (cell) (sum_over_time(metric{cell=~…}[1m])) over the corridor's
// cells, the per-cell series then summed into segments here.
func PeerCorridor(p *Proc, d *Day, c *Corridor, from, to int) (Timed, error) {
	if len(c.Cells) == 0 {
		return Timed{}, fmt.Errorf("corridor cells unknown: ask flowd first")
	}
	segOf := map[string]int{}
	for i, seg := range c.Segments {
		for _, x := range seg {
			segOf[x.String()] = i
		}
	}
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum by (cell) (sum_over_time(%s{cell=~"%s"}[1m]))`, c.Metric, peerRegex(c.Cells)))
	q.Set("start", strconv.FormatInt(d.Start.Unix()+int64(from)*60, 10))
	q.Set("end", strconv.FormatInt(d.Start.Unix()+int64(to-1)*60, 10))
	q.Set("step", "60s")
	q.Set("nocache", "1")
	start := time.Now()
	resp, err := queryClient.PostForm(p.URL+"/api/v1/query_range", q)
	if err != nil {
		return Timed{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Timed{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Timed{}, fmt.Errorf("POST query_range: %s: %.500s", resp.Status, body)
	}
	var ans struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return Timed{}, err
	}
	loads := make([][]int64, to-from)
	for i := range loads {
		loads[i] = make([]int64, len(c.Segments))
	}
	t := Timed{Bytes: len(body)}
	for _, r := range ans.Data.Result {
		seg, ok := segOf[r.Metric["cell"]]
		if !ok {
			return t, fmt.Errorf("peer answered cell %q outside the corridor", r.Metric["cell"])
		}
		for _, v := range r.Values {
			ts, ok := v[0].(float64)
			if !ok {
				return t, fmt.Errorf("peer timestamp %v", v[0])
			}
			x, err := promValue(v[1])
			if err != nil {
				return t, err
			}
			loads[(int64(ts)-d.Start.Unix())/60-int64(from)][seg] += x
			t.Total += x
		}
	}
	t.Took = time.Since(start)
	t.Items = len(loads) * len(c.Segments)
	return t, nil
}
