package remote

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// Reader answers history from VictoriaMetrics with MetricsQL: the per-step
// sums of a metric over cells, the same figures the local store sums.
type Reader struct {
	url    string // the query_range endpoint
	base   string
	client *http.Client
	// labelled are the resolutions series carry a label of, the base one
	// (cell) last.
	labelled []int
	res      int

	names struct {
		sync.Mutex
		list []string
		at   time.Time
	}
}

// Knows reports whether VictoriaMetrics holds series of the flowd metric
// named name. It asks for the names at most once a minute, or every few
// seconds while name is not among them.
func (r *Reader) Knows(name string) bool {
	r.names.Lock()
	defer r.names.Unlock()
	age := time.Since(r.names.at)
	if age < time.Minute && (slices.Contains(r.names.list, name) || age < 2*time.Second) {
		return slices.Contains(r.names.list, name)
	}
	if err := r.loadNames(); err != nil {
		return false
	}
	return slices.Contains(r.names.list, name)
}

// loadNames asks VictoriaMetrics for its metric names; r.names is locked.
func (r *Reader) loadNames() error {
	resp, err := r.client.Get(r.base + "/api/v1/label/__name__/values")
	if err != nil {
		return fmt.Errorf("VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&ans); err != nil || ans.Status != "success" {
		return fmt.Errorf("VictoriaMetrics answered %s to the metric names", resp.Status)
	}
	r.names.list = r.names.list[:0]
	for _, n := range ans.Data {
		if !strings.HasSuffix(n, HourSuffix) {
			r.names.list = append(r.names.list, n)
		}
	}
	r.names.at = time.Now()
	return nil
}

// maxStepsPerQuery keeps each query_range under VictoriaMetrics'
// -search.maxPointsPerTimeseries (30,000 by default).
const maxStepsPerQuery = 10000

// NewReader returns a reader of VictoriaMetrics at base: a single node
// (http://host:8428) or vmselect with its tenant
// (http://host:8481/select/0/prometheus). parents and res are those of
// the shipped series (Config).
func NewReader(base string, parents []int, res int, client *http.Client) (*Reader, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-remote-read %q: want http(s)://host:port of VictoriaMetrics, or of vmselect followed by /select/<tenant>/prometheus", base)
	}
	if strings.Contains(u.Path, "/insert/") {
		return nil, fmt.Errorf("-remote-read %q: a vminsert address does not answer queries; give vmselect's, /select/<tenant>/prometheus", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/query_range"
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	r := &Reader{url: u.String(), base: strings.TrimSuffix(u.String(), "/api/v1/query_range"), client: client, res: res}
	for _, p := range parents {
		if p >= 0 && p < res && !slices.Contains(r.labelled, p) {
			r.labelled = append(r.labelled, p)
		}
	}
	slices.Sort(r.labelled)
	r.labelled = append(r.labelled, res)
	return r, nil
}

// maxSelector bounds the length of a query's selector, under
// VictoriaMetrics' -search.maxQueryLen (16 KiB by default).
const maxSelector = 12 << 10

// selection is how a query picks an area's series: by the values of one
// label, and, when those cover more than the area, keeping only the
// series whose cell lies in its ranges.
type selection struct {
	selector string
	filter   bool
}

// selection returns the selection of metric's series in tier t over
// cells of resolution res whose base cells are in ranges: by the cells'
// own label when the series carry it and the selector is short enough,
// else by their parents at a coarser labelled resolution, filtered; a
// resolution coarser than every label goes by its children at the
// coarsest.
func (r *Reader) selection(metric string, t storage.Tier, cells []h3.Cell, res int) (selection, error) {
	name := SeriesName(metric, t)
	var tried []int
	for i := len(r.labelled) - 1; i >= 0; i-- {
		l := r.labelled[i]
		if l > res && i > 0 {
			continue
		}
		seen := map[uint64]bool{}
		for _, c := range cells {
			switch {
			case l == res:
				seen[uint64(c)] = true
			case l < res:
				seen[uint64(c.Parent(l))] = true
			default:
				for _, k := range c.Children(l) {
					seen[uint64(k)] = true
				}
			}
			if len(seen) > maxSelector/16 { // too long whatever the rest
				break
			}
		}
		values := make([]string, 0, len(seen))
		for v := range seen {
			values = append(values, CellHex(v))
		}
		slices.Sort(values)
		label := ResLabel(l)
		if l == r.res {
			label = CellLabel
		}
		sel := fmt.Sprintf(`{__name__=%q,%s=~"%s"}`, name, label, strings.Join(values, "|"))
		if len(sel) <= maxSelector {
			return selection{selector: sel, filter: l != res}, nil
		}
		tried = append(tried, l)
	}
	return selection{}, fmt.Errorf("the area has too many cells at resolutions %v, those VictoriaMetrics' series are labelled with, for one query: ask a smaller area or a coarser res, or label the series with -remote-parents coarser", tried)
}

// SumSteps adds to sums[i] the sum of metric's buckets of tier t in cells
// (of resolution res, whose base cells are in ranges) over the i-th step
// of step minutes from minute from, for the steps that start before to.
func (r *Reader) SumSteps(t storage.Tier, metric string, cells []h3.Cell, res int, ranges []vocab.CellRange, from, to, step int64, sums []int64) error {
	if len(cells) == 0 || to <= from {
		return nil
	}
	sel, err := r.selection(metric, t, cells, res)
	if err != nil {
		return err
	}
	// Each bucket is stamped with its first minute: the step [a, a+step)
	// is the window (a-1ms, a+step-1ms] evaluated at a+step-1ms.
	query := fmt.Sprintf("sum(sum_over_time(%s[%ds]))", sel.selector, step*60)
	if sel.filter {
		query = fmt.Sprintf("sum by (%s) (sum_over_time(%s[%ds]))", CellLabel, sel.selector, step*60)
	}
	n := (to - from + step - 1) / step
	for first := int64(0); first < n; first += maxStepsPerQuery {
		last := min(n, first+maxStepsPerQuery) - 1
		at := func(i int64) string {
			return strconv.FormatFloat(float64((from+(i+1)*step)*60_000-1)/1000, 'f', 3, 64)
		}
		form := url.Values{"query": {query}, "start": {at(first)}, "end": {at(last)}, "step": {strconv.FormatInt(step*60, 10)}, "nocache": {"1"}}
		err := r.queryRange(form, func(labels map[string]string) bool {
			if !sel.filter {
				return true
			}
			c, err := strconv.ParseUint(labels[CellLabel], 16, 64)
			return err == nil && inRanges(ranges, c)
		}, func(ts float64, v float64) {
			i := (int64(ts*1000+1)/60_000 - from - step) / step
			if i >= first && i <= last {
				sums[i] = storage.SatAdd(sums[i], int64(v))
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SumByCell calls fn with the sum of metric's minute buckets over
// [from, to) in each base cell of the area (cells of resolution res, whose
// base cells are in ranges) that has any: one instant query,
// sum by (cell) over the window that ends a millisecond before to.
func (r *Reader) SumByCell(metric string, cells []h3.Cell, res int, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, v int64)) error {
	if len(cells) == 0 || to <= from {
		return nil
	}
	sel, err := r.selection(metric, storage.TierMinute, cells, res)
	if err != nil {
		return err
	}
	form := url.Values{
		"query":   {fmt.Sprintf("sum by (%s) (sum_over_time(%s[%ds]))", CellLabel, sel.selector, (to-from)*60)},
		"time":    {strconv.FormatFloat(float64(to*60_000-1)/1000, 'f', 3, 64)},
		"nocache": {"1"},
	}
	u := strings.TrimSuffix(r.url, "/api/v1/query_range") + "/api/v1/query"
	resp, err := r.client.PostForm(u, form)
	if err != nil {
		return fmt.Errorf("VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&ans); err != nil || ans.Status != "success" {
		return fmt.Errorf("VictoriaMetrics answered %s: %s", resp.Status, ans.Error)
	}
	for _, res := range ans.Data.Result {
		c, err := strconv.ParseUint(res.Metric[CellLabel], 16, 64)
		if err != nil || !inRanges(ranges, c) {
			continue
		}
		s, _ := res.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("VictoriaMetrics answered a value %v", res.Value)
		}
		fn(c, int64(v))
	}
	return nil
}

// inRanges reports whether c lies in one of ranges.
func inRanges(ranges []vocab.CellRange, c uint64) bool {
	for _, r := range ranges {
		if r.Contains(c) {
			return true
		}
	}
	return false
}

// queryRange POSTs a query_range and calls fn with each point of the
// series of its answer that keep takes.
func (r *Reader) queryRange(form url.Values, keep func(labels map[string]string) bool, fn func(ts, v float64)) error {
	resp, err := r.client.PostForm(r.url, form)
	if err != nil {
		return fmt.Errorf("VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("VictoriaMetrics: %w", err)
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		msg := ans.Error
		if msg == "" {
			msg = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		return fmt.Errorf("VictoriaMetrics answered %s: %s", resp.Status, msg)
	}
	for _, res := range ans.Data.Result {
		if !keep(res.Metric) {
			continue
		}
		for _, p := range res.Values {
			ts, ok := p[0].(float64)
			s, ok2 := p[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			if !ok || !ok2 || err != nil {
				return fmt.Errorf("VictoriaMetrics answered a point %v", p)
			}
			fn(ts, v)
		}
	}
	return nil
}
