package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uber/h3-go/v4"
)

// Area is a query area: base cells that hold data, and the coarse cells
// whose children they are, which the queries name.
type Area struct {
	Metric string
	Cells  []h3.Cell // base cells with data for Metric
	Cover  []h3.Cell // their distinct parents at CoverRes
	Res    int       // CoverRes
}

// AreaOf is every base cell holding metric in the day, covered by its
// parents at res.
func (d *Day) AreaOf(metric string, res int) Area {
	a := Area{Metric: metric, Res: res}
	seen := map[h3.Cell]bool{}
	for _, k := range d.Series {
		if k.Metric != metric {
			continue
		}
		a.Cells = append(a.Cells, k.Cell)
		if p := k.Cell.Parent(res); !seen[p] {
			seen[p] = true
			a.Cover = append(a.Cover, p)
		}
	}
	sort.Slice(a.Cover, func(i, j int) bool { return a.Cover[i] < a.Cover[j] })
	return a
}

// Total sums the day's buckets of metric over minutes [from, to).
func (d *Day) Total(metric string, from, to int) int64 {
	var n int64
	for _, s := range d.Samples {
		if int(s.Minute) >= from && int(s.Minute) < to && d.Series[s.Series].Metric == metric {
			n += s.Value
		}
	}
	return n
}

func cellList(cells []h3.Cell) string {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}

func peerRegex(cells []h3.Cell) string {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = c.String()
	}
	return strings.Join(s, "|")
}

// Timed is one query's latency and the sum of what it answered, which must
// equal the day's own sum.
type Timed struct {
	Took  time.Duration
	Total int64
	Items int    // points or cells answered
	Bytes int    // size of the answer
	Tier  string // the tier flowd said answered, where the bench reads it
}

var queryClient = &http.Client{Timeout: 2 * time.Minute}

func getJSON(u string, v any) (time.Duration, int, error) {
	start := time.Now()
	resp, err := queryClient.Get(u)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %.200s: %s: %.500s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, 0, fmt.Errorf("GET %.200s: %w", u, err)
	}
	return took, len(body), nil
}

// FlowdSeries asks flowd for the per-minute sums of the area over minutes
// [from, to) of the day.
func FlowdSeries(p *Proc, d *Day, a Area, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("metric", a.Metric)
	q.Set("cells", cellList(a.Cover))
	q.Set("res", strconv.Itoa(d.Res))
	q.Set("from", strconv.FormatInt(d.Start.Unix()+int64(from)*60, 10))
	q.Set("to", strconv.FormatInt(d.Start.Unix()+int64(to)*60, 10))
	q.Set("step", "1m")
	var ans struct {
		Total  int64      `json:"total"`
		Points [][2]int64 `json:"points"`
	}
	took, n, err := getJSON(p.URL+"/api/v1/series?"+q.Encode(), &ans)
	return Timed{Took: took, Total: ans.Total, Items: len(ans.Points), Bytes: n}, err
}

// FlowdDensity asks flowd for the per-cell sums at res over minutes
// [from, to) of the day, the whole area at once.
func FlowdDensity(p *Proc, d *Day, a Area, res, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("metric", a.Metric)
	q.Set("cells", cellList(a.Cover))
	q.Set("res", strconv.Itoa(res))
	q.Set("from", strconv.FormatInt(d.Start.Unix()+int64(from)*60, 10))
	q.Set("to", strconv.FormatInt(d.Start.Unix()+int64(to)*60, 10))
	var ans struct {
		Total int64 `json:"total"`
		Cells []struct {
			Value int64 `json:"value"`
		} `json:"cells"`
	}
	took, n, err := getJSON(p.URL+"/api/v1/density?"+q.Encode(), &ans)
	return Timed{Took: took, Total: ans.Total, Items: len(ans.Cells), Bytes: n}, err
}

type promAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Value  [2]any   `json:"value"`
			Values [][2]any `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

func promValue(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(f + 0.5), err
}

// PeerSeries runs the peer's equivalent of FlowdSeries: query_range of
// sum(sum_over_time(metric{cell6=~…}[1m])) at a one-minute step, each
// point summing the samples of one minute.
func PeerSeries(p *Proc, d *Day, a Area, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum(sum_over_time(%s{cell%d=~"%s"}[1m]))`, a.Metric, a.Res, peerRegex(a.Cover)))
	q.Set("start", strconv.FormatInt(d.Start.Unix()+int64(from)*60, 10))
	q.Set("end", strconv.FormatInt(d.Start.Unix()+int64(to-1)*60, 10))
	q.Set("step", "60s")
	return peerQuery(p, "query_range", q)
}

// PeerDensity runs the peer's equivalent of FlowdDensity: an instant query
// of sum by (cell<res>) (sum_over_time(metric{cell6=~…}[window])).
func PeerDensity(p *Proc, d *Day, a Area, res, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum by (cell%d) (sum_over_time(%s{cell%d=~"%s"}[%dm]))`, res, a.Metric, a.Res, peerRegex(a.Cover), to-from))
	q.Set("time", strconv.FormatInt(d.Start.Unix()+int64(to-1)*60, 10))
	return peerQuery(p, "query", q)
}

// peerQuery asks the peer's /api/v1/<endpoint> (query or query_range) with
// q, uncached, and times it; the answer's total and items sum every sample
// of every series returned.
func peerQuery(p *Proc, endpoint string, q url.Values) (Timed, error) {
	q.Set("nocache", "1")
	var ans promAnswer
	took, n, err := getJSON(p.URL+"/api/v1/"+endpoint+"?"+q.Encode(), &ans)
	if err != nil {
		return Timed{}, err
	}
	t := Timed{Took: took, Bytes: n}
	for _, r := range ans.Data.Result {
		samples := r.Values
		if endpoint == "query" {
			samples = [][2]any{r.Value}
		}
		for _, v := range samples {
			x, err := promValue(v[1])
			if err != nil {
				return t, err
			}
			t.Total += x
			t.Items++
		}
	}
	return t, nil
}

// Median is the middle of ds (the mean of the middle two).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
