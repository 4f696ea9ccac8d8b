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

	"github.com/flowd/flowd/geo"
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
		list             []string
		entities, groups []string // the values of the family labels
		at               time.Time
	}
}

// Knows reports whether VictoriaMetrics holds series of the flowd metric
// named name. It asks for the names at most once a minute, or every few
// seconds while name is not among them.
//
// A per-entity or rider group's family (count_car@sensor,
// swipes_in#student) is known when its metric is and some series carries
// its entity or group label (Family).
func (r *Reader) Knows(name string) bool {
	r.names.Lock()
	defer r.names.Unlock()
	age := time.Since(r.names.at)
	if age < time.Minute && (r.knowsLocked(name) || age < 2*time.Second) {
		return r.knowsLocked(name)
	}
	if err := r.loadNames(); err != nil {
		return false
	}
	return r.knowsLocked(name)
}

// Names returns the flowd metrics VictoriaMetrics holds series of (their
// minute tier's), asking it at most once a minute.
func (r *Reader) Names() []string {
	r.names.Lock()
	defer r.names.Unlock()
	if time.Since(r.names.at) >= time.Minute {
		if err := r.loadNames(); err != nil {
			return nil
		}
	}
	return slices.DeleteFunc(slices.Clone(r.names.list), func(n string) bool { return strings.ContainsAny(n, "@#") })
}

func (r *Reader) knowsLocked(name string) bool {
	base, entity, group := Family(name)
	return slices.Contains(r.names.list, base) &&
		(entity == "" || slices.Contains(r.names.entities, entity)) && (group == "" || slices.Contains(r.names.groups, group))
}

// loadNames asks VictoriaMetrics for its metric names and the values of
// the family labels; r.names is locked.
func (r *Reader) loadNames() error {
	names, err := r.labelValues("__name__")
	if err != nil {
		return err
	}
	entities, err := r.labelValues(EntityLabel)
	if err != nil {
		return err
	}
	groups, err := r.labelValues(GroupLabel)
	if err != nil {
		return err
	}
	r.names.list = r.names.list[:0]
	for _, n := range names {
		if !strings.HasSuffix(n, HourSuffix) {
			r.names.list = append(r.names.list, n)
		}
	}
	r.names.entities, r.names.groups = entities, groups
	r.names.at = time.Now()
	return nil
}

// labelValues asks VictoriaMetrics for the values of a label over all
// time: without a start it answers for the current UTC day only, so that
// in a day's first hours the metrics shipped the day before were missing
// (a start of 0 counts as none).
func (r *Reader) labelValues(label string) ([]string, error) {
	resp, err := r.client.Get(r.base + "/api/v1/label/" + label + "/values?start=1")
	if err != nil {
		return nil, fmt.Errorf("VictoriaMetrics: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&ans); err != nil || ans.Status != "success" {
		return nil, fmt.Errorf("VictoriaMetrics answered %s to the values of %s", resp.Status, label)
	}
	return ans.Data, nil
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
		label, values := r.cellLabel(l, seen)
		sel := fmt.Sprintf(`{__name__=%q,%s,%s=~"%s"}`, name, familyMatchers(metric), label, values)
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
		}, func(_ map[string]string, ts float64, v float64) {
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
func (r *Reader) queryRange(form url.Values, keep func(labels map[string]string) bool, fn func(labels map[string]string, ts, v float64)) error {
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
			fn(res.Metric, ts, v)
		}
	}
	return nil
}

// Scan calls fn with each bucket of metric's tier t VictoriaMetrics holds
// from minute from to to (an hour's bucket by its first minute, the hours
// that start in the span) whose base cell lies in ranges, with its
// sub-key: a trip's destination cell, a sketch's register, the sub label
// of the others. It gives what storage.Store.ScanSub gives of the store,
// a bucket per series and minute, the replicas' samples deduplicated.
func (r *Reader) Scan(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, v int64)) error {
	unit := int64(1)
	if t == storage.TierHour {
		unit = 60
		from, to = t.Truncate(from+59), t.Truncate(to+59)
	}
	if to <= from || len(ranges) == 0 {
		return nil
	}
	sel := fmt.Sprintf(`{__name__=%q,%s%s}`, SeriesName(metric, t), familyMatchers(metric), r.rangeMatcher(ranges))
	sub, agg, over := subLabel(metric), "sum", "sum_over_time"
	if vocab.KindOf(metric) == vocab.Sketch {
		agg, over = "max", "max_over_time"
	}
	query := fmt.Sprintf("%s by (%s,%s) (%s(%s[%ds]))", agg, CellLabel, sub, over, sel, unit*60)
	n := (to - from) / unit
	for first := int64(0); first < n; first += maxStepsPerQuery {
		last := min(n, first+maxStepsPerQuery) - 1
		at := func(i int64) string {
			return strconv.FormatFloat(float64((from+(i+1)*unit)*60_000-1)/1000, 'f', 3, 64)
		}
		form := url.Values{"query": {query}, "start": {at(first)}, "end": {at(last)}, "step": {strconv.FormatInt(unit*60, 10)}, "nocache": {"1"}}
		var cell, subKey uint64
		var keepErr error
		err := r.queryRange(form, func(labels map[string]string) bool {
			var err error
			if cell, err = strconv.ParseUint(labels[CellLabel], 16, 64); err != nil || !inRanges(ranges, cell) {
				return false
			}
			subKey = 0
			if v, ok := labels[sub]; ok {
				base := 10
				if sub == destLabel {
					base = 16
				}
				if subKey, err = strconv.ParseUint(v, base, 64); err != nil {
					keepErr = fmt.Errorf("VictoriaMetrics answered a %s label %q", sub, v)
					return false
				}
			}
			return true
		}, func(_ map[string]string, ts, v float64) {
			minute := int64(ts*1000+1)/60_000 - unit
			if v != 0 && minute >= from && minute < to {
				fn(cell, subKey, minute, int64(v))
			}
		})
		if err != nil {
			return err
		}
		if keepErr != nil {
			return keepErr
		}
	}
	return nil
}

// destLabel holds a trip's destination cell.
const destLabel = "dest"

// subLabel returns the label holding the sub-key of metric's buckets
// (appendSeries).
func subLabel(metric string) string {
	switch base := vocab.BaseMetric(metric); {
	case base == vocab.Trips || base == vocab.TripSeconds:
		return destLabel
	case vocab.KindOf(base) == vocab.Sketch:
		return "reg"
	}
	return "sub"
}

// rangeMatcher returns a matcher of the series whose cells may lie in
// ranges, ",label=~\"…\"", by the finest labelled resolution at which
// each range lies within one cell, short enough for one query; or none,
// when no resolution does (the ranges are then checked on the answer).
func (r *Reader) rangeMatcher(ranges []vocab.CellRange) string {
	for i := len(r.labelled) - 1; i >= 0; i-- {
		l := r.labelled[i]
		seen := map[uint64]bool{}
		ok := true
		for _, rg := range ranges {
			lo, hi := parentAt(rg.Lo, l), parentAt(rg.Hi, l)
			if l == r.res {
				// The cell label holds the bucket's own key: a base cell,
				// or an entity's finer one.
				lo, hi = rg.Lo, rg.Hi
			}
			if lo == 0 || lo != hi {
				ok = false
				break
			}
			if seen[lo] = true; len(seen) > maxSelector/16 {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		label, values := r.cellLabel(l, seen)
		return fmt.Sprintf(`,%s=~"%s"`, label, values)
	}
	return ""
}

// parentAt returns the parent at resolution res of an H3 id, or 0 when
// the id is of a coarser resolution.
func parentAt(c uint64, res int) uint64 {
	if int(c>>52&0xf) < res || c>>59&0xf != 1 {
		return 0
	}
	return geo.Parent(c, res)
}

// cellLabel is the label naming cells at resolution l (the base label at
// the base resolution) and the cells of seen as an alternation of their
// ids, sorted, for a regular-expression matcher.
func (r *Reader) cellLabel(l int, seen map[uint64]bool) (label, values string) {
	vs := make([]string, 0, len(seen))
	for v := range seen {
		vs = append(vs, CellHex(v))
	}
	slices.Sort(vs)
	label = ResLabel(l)
	if l == r.res {
		label = CellLabel
	}
	return label, strings.Join(vs, "|")
}
