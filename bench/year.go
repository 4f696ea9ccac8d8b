package bench

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/storage"
	"github.com/uber/h3-go/v4"
)

// Year is a year of the synthetic city's car counts, hour by hour, per
// base cell holding a detector: what flowd's hour tier keeps of a year.
// An hour's count of a detector is sixty times what the city draws for
// the hour's middle minute (one draw an hour keeps a year's generation
// to seconds, and follows the city's hours, weekends and holidays).
type Year struct {
	Start  time.Time // a UTC midnight
	Hours  int
	Cells  []h3.Cell // base cells with a detector counting cars, sorted
	Values []int64   // Values[h*len(Cells)+i]: cell i, hour h
	Cover  []h3.Cell // the cells' parents at CoverRes, which the queries name
	// CoverRes is the resolution of Cover.
	CoverRes int
	GenTime  time.Duration
}

// YearMetric is the metric the year holds.
const YearMetric = "count_car"

// GenerateYear draws hours of c's car counts from start (a UTC midnight)
// into base cells of resolution res, on all cores.
func GenerateYear(c *city.City, start time.Time, hours, res, coverRes int) (*Year, error) {
	t0 := time.Now()
	reg, err := cityRegistry(c, res)
	if err != nil {
		return nil, err
	}
	index := map[string]int{} // sensor id → cell index
	var cells []h3.Cell
	for _, s := range c.Sensors {
		sn, ok := reg.Sensor(s.ID)
		if !ok {
			return nil, fmt.Errorf("sensor %s is not in the registry", s.ID)
		}
		cells = append(cells, sn.Cell)
	}
	slices.Sort(cells)
	cells = slices.Compact(cells)
	for _, s := range c.Sensors {
		sn, _ := reg.Sensor(s.ID)
		i, _ := slices.BinarySearch(cells, sn.Cell)
		index[s.ID] = i
	}
	y := &Year{Start: start, Hours: hours, Cells: cells, Values: make([]int64, hours*len(cells)), CoverRes: coverRes}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range next {
				row := y.Values[h*len(cells) : (h+1)*len(cells)]
				c.Counts(start.Add(time.Duration(h)*time.Hour+30*time.Minute), func(e *city.Event) {
					if e.Class == city.ClassCar {
						row[index[e.ID]] += 60 * int64(e.Count)
					}
				})
			}
		}()
	}
	for h := range hours {
		next <- h
	}
	close(next)
	wg.Wait()
	seen := map[h3.Cell]bool{}
	for i, cl := range cells {
		// A cell where no car passed all year is no cell of the metric.
		has := false
		for h := 0; h < hours && !has; h++ {
			has = y.Values[h*len(cells)+i] != 0
		}
		if p := cl.Parent(coverRes); has && !seen[p] {
			seen[p] = true
			y.Cover = append(y.Cover, p)
		}
	}
	slices.Sort(y.Cover)
	y.GenTime = time.Since(t0)
	return y, nil
}

// Rows is the number of (cell, hour) values the year holds.
func (y *Year) Rows() int { return len(y.Values) }

// hourMinute is the unix minute of hour h of the year.
func (y *Year) hourMinute(h int) int64 { return y.Start.Unix()/60 + int64(h)*60 }

// Total sums the hours [from, to) of every cell.
func (y *Year) Total(from, to int) int64 {
	var n int64
	for _, v := range y.Values[from*len(y.Cells) : to*len(y.Cells)] {
		n += v
	}
	return n
}

// DensityCells is the number of cells at res with a count in hours [from, to).
func (y *Year) DensityCells(res, from, to int) int {
	sums := map[h3.Cell]int64{}
	for h := from; h < to; h++ {
		for i, c := range y.Cells {
			sums[c.Parent(res)] += y.Values[h*len(y.Cells)+i]
		}
	}
	n := 0
	for _, v := range sums {
		if v != 0 {
			n++
		}
	}
	return n
}

// WriteFlowd writes the year into a flowd store in dataDir (stopped) as
// ingest writes hourly readings: per cell and hour, a run of the hour's 60
// minutes. The minute tier is left out (the year lies past its
// retention); flushes a week at a time write the hour and day tiers, and
// the store is then left to merge until its parts hold still.
func (y *Year) WriteFlowd(dataDir string) (StoreSize, error) {
	dir := filepath.Join(dataDir, "store")
	st, err := storage.Open(dir, storage.Options{
		FlushInterval: time.Hour,
		Retention:     [storage.NumTiers]time.Duration{time.Hour, 876000 * time.Hour},
		Logf:          func(string, ...any) {},
	})
	if err != nil {
		return StoreSize{}, err
	}
	id, err := st.MetricID(YearMetric)
	if err != nil {
		st.Close()
		return StoreSize{}, err
	}
	const batchHours = 24
	for h0 := 0; h0 < y.Hours; h0 += batchHours {
		b := storage.NewBatch()
		for i, c := range y.Cells {
			s := b.SeriesSpread(id, uint64(c))
			for h := h0; h < min(h0+batchHours, y.Hours); h++ {
				if v := y.Values[h*len(y.Cells)+i]; v != 0 {
					b.AddRun(s, y.hourMinute(h), 60, v)
				}
			}
		}
		p, err := st.Submit(b, nil)
		if err == nil {
			err = p.Wait()
		}
		b.Release()
		if err == nil && (h0/batchHours)%7 == 6 {
			err = st.Flush()
		}
		if err != nil {
			st.Close()
			return StoreSize{}, err
		}
	}
	if err := st.Close(); err != nil {
		return StoreSize{}, err
	}
	return SettleFlowd(dataDir)
}

// PeerImport sends the year to the peer through /api/v1/import, a line a
// cell and month: each hour's count stamped at the hour's last minute, so
// that a [1h] window ending on the hour, the peer's way of asking for an
// hour, holds exactly that hour's sample. Labels: the base cell and its
// parents at resolutions 7 and CoverRes.
func (y *Year) PeerImport(p *Proc) error {
	const chunkHours = 24 * 30
	client := &http.Client{Timeout: 5 * time.Minute}
	var body []byte
	send := func() error {
		if len(body) == 0 {
			return nil
		}
		resp, err := client.Post(p.URL+"/api/v1/import", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("peer import: %s", resp.Status)
		}
		body = body[:0]
		return nil
	}
	for i, c := range y.Cells {
		head := fmt.Sprintf(`{"metric":{"__name__":%q,"cell":%q,"cell7":%q,"cell%d":%q},"values":[`,
			YearMetric, c.String(), c.Parent(7).String(), y.CoverRes, c.Parent(y.CoverRes).String())
		for h0 := 0; h0 < y.Hours; h0 += chunkHours {
			body = append(body, head...)
			n := 0
			for h := h0; h < min(h0+chunkHours, y.Hours); h++ {
				if v := y.Values[h*len(y.Cells)+i]; v != 0 {
					if n > 0 {
						body = append(body, ',')
					}
					body = strconv.AppendInt(body, v, 10)
					n++
				}
			}
			body = append(body, `],"timestamps":[`...)
			n = 0
			for h := h0; h < min(h0+chunkHours, y.Hours); h++ {
				if y.Values[h*len(y.Cells)+i] != 0 {
					if n > 0 {
						body = append(body, ',')
					}
					body = strconv.AppendInt(body, (y.hourMinute(h)+59)*60000, 10)
					n++
				}
			}
			body = append(body, "]}\n"...)
		}
		if len(body) > 8<<20 {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := send(); err != nil {
		return err
	}
	resp, err := http.Get(p.URL + "/internal/force_flush")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// unix is the unix second of hour h of the year.
func (y *Year) unix(h int) int64 { return y.hourMinute(h) * 60 }

// FlowdYearDensity asks flowd for the per-cell sums at res over hours
// [from, to) of the year, the whole city at once.
func FlowdYearDensity(p *Proc, y *Year, res, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("metric", YearMetric)
	q.Set("cells", cellList(y.Cover))
	q.Set("res", strconv.Itoa(res))
	q.Set("from", strconv.FormatInt(y.unix(from), 10))
	q.Set("to", strconv.FormatInt(y.unix(to), 10))
	var ans struct {
		Tier  string `json:"tier"`
		Total int64  `json:"total"`
		Cells []struct {
			Value int64 `json:"value"`
		} `json:"cells"`
	}
	took, n, err := getJSON(p.URL+"/api/v1/density?"+q.Encode(), &ans)
	return Timed{Took: took, Total: ans.Total, Items: len(ans.Cells), Bytes: n, Tier: ans.Tier}, err
}

// FlowdYearSeries asks flowd for the hourly sums of every cell of the year
// over hours [from, to), at a 1-hour step.
func FlowdYearSeries(p *Proc, y *Year, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("metric", YearMetric)
	q.Set("cells", cellList(y.Cover))
	q.Set("res", "9")
	q.Set("from", strconv.FormatInt(y.unix(from), 10))
	q.Set("to", strconv.FormatInt(y.unix(to), 10))
	q.Set("step", "1h")
	var ans struct {
		Tier   string     `json:"tier"`
		Total  int64      `json:"total"`
		Points [][2]int64 `json:"points"`
	}
	took, n, err := getJSON(p.URL+"/api/v1/series?"+q.Encode(), &ans)
	return Timed{Took: took, Total: ans.Total, Items: len(ans.Points), Bytes: n, Tier: ans.Tier}, err
}

// PeerYearDensity is the peer's FlowdYearDensity: an instant query at the
// end of hour to-1 of sum by (cell7) (sum_over_time(count_car{…}[Nh])).
func PeerYearDensity(p *Proc, y *Year, res, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum by (cell%d) (sum_over_time(%s{cell%d=~"%s"}[%dh]))`, res, YearMetric, y.CoverRes, peerRegex(y.Cover), to-from))
	q.Set("time", strconv.FormatInt(y.unix(to), 10))
	return peerQuery(p, "query", q)
}

// PeerYearSeries is the peer's FlowdYearSeries: query_range of
// sum(sum_over_time(count_car{…}[1h])) at a 1-hour step, each point at the
// end of its hour.
func PeerYearSeries(p *Proc, y *Year, from, to int) (Timed, error) {
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum(sum_over_time(%s{cell%d=~"%s"}[1h]))`, YearMetric, y.CoverRes, peerRegex(y.Cover)))
	q.Set("start", strconv.FormatInt(y.unix(from+1), 10))
	q.Set("end", strconv.FormatInt(y.unix(to), 10))
	q.Set("step", "3600")
	return peerQuery(p, "query_range", q)
}
