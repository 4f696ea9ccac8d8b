package forecast

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sharedData finds the folder of real data samples: $FLOWD_SHARED_DATA,
// or ../shared/data beside the checkout (this package's ../../shared/data).
func sharedData(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("FLOWD_SHARED_DATA"), "../../shared/data"} {
		if dir == "" {
			continue
		}
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	t.Skip("no real data: set FLOWD_SHARED_DATA or put the shared data folder at ../shared/data beside the checkout")
	return ""
}

// pedestrianMonth is one January of Melbourne's hourly pedestrian counts:
// per sensor, 31 × 24 hours, NaN where the file has no count.
type pedestrianMonth struct {
	year    int
	sensors []string
	counts  [][]float64 // [sensor][hour of the month]
}

// readPedestrianMonth reads melbourne-pedestrian-counts-YYYY-01.csv: a
// header Date,Hour,<sensor>...; dates as 1-Jan-10 or 01/01/2014; -1,
// "undefined" and empty cells are missing; a totals row with no date and
// blank lines are skipped.
func readPedestrianMonth(path string, year int) (*pedestrianMonth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	pm := &pedestrianMonth{year: year, sensors: head[2:], counts: make([][]float64, len(head)-2)}
	for i := range pm.counts {
		pm.counts[i] = make([]float64, 31*24)
		for j := range pm.counts[i] {
			pm.counts[i][j] = math.NaN()
		}
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return pm, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(rec) < 2 || strings.TrimSpace(rec[0]) == "" {
			continue
		}
		day, err := dayOfJanuary(rec[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: field Date: %w", path, line, err)
		}
		hour, err := strconv.Atoi(strings.TrimSpace(rec[1]))
		if err != nil || hour < 0 || hour > 23 {
			return nil, fmt.Errorf("%s:%d: field Hour: value %q: want 0 to 23", path, line, rec[1])
		}
		for i, v := range rec[2:min(len(rec), len(head))] {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n >= 0 {
				pm.counts[i][(day-1)*24+hour] = n
			}
		}
	}
}

// dayOfJanuary reads a January date as 1-Jan-10 or 01/01/2014.
func dayOfJanuary(s string) (int, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2-Jan-06", "02/01/2006"} {
		if d, err := time.Parse(layout, s); err == nil && d.Month() == time.January {
			return d.Day(), nil
		}
	}
	return 0, fmt.Errorf("value %q: want a January date such as 1-Jan-10 or 01/01/2014", s)
}

// TestBacktestMelbournePedestrians fits the model, in hourly bins, on the
// first three weeks of each January of Melbourne's pedestrian counts
// (2010-2018, every sensor), then forecasts each remaining hour 1 and 3
// hours ahead, feeding each hour's counts as they come; it is scored
// against the same hour last week and the same hour yesterday on the same
// targets, and must beat both in MAE and MAPE at both horizons.
func TestBacktestMelbournePedestrians(t *testing.T) {
	dir := sharedData(t)
	bt := newBacktest("Melbourne pedestrian counts, Januaries 2010-2018, every sensor, hourly", "1 hour", "3 hours")
	years := 0
	for year := 2010; year <= 2018; year++ {
		path := filepath.Join(dir, fmt.Sprintf("melbourne-pedestrian-counts-%d-01.csv", year))
		if _, err := os.Stat(path); err != nil {
			continue
		}
		pm, err := readPedestrianMonth(path, year)
		if err != nil {
			t.Fatal(err)
		}
		years++
		p := NewParams(Params{Bin: 60})
		for _, counts := range pm.counts {
			backtestHourly(bt, New(p), counts, 21*24, []int{1, 3})
		}
	}
	if years == 0 {
		t.Skipf("%s holds no melbourne-pedestrian-counts-YYYY-01.csv", dir)
	}
	t.Logf("%d Januaries\n%s", years, bt.table())
	bt.check(t)
}

// backtestHourly feeds a model the hourly counts bin by bin (a missing
// hour is a gap) and, from hour train on, forecasts hour i+h from the end
// of hour i for each horizon h before feeding hour i+1.
func backtestHourly(bt *backtest, m *Model, counts []float64, train int, horizons []int) {
	for i, v := range counts {
		if !math.IsNaN(v) {
			m.ObserveBin(int64(i), v)
		}
		if i+1 < train {
			continue
		}
		for k, h := range horizons {
			j := i + h
			if j >= len(counts) || j < 7*24 {
				continue
			}
			p := m.At(int64(j)*60 + 30)
			p.Expected, p.Lo, p.Hi = 60*p.Expected, 60*p.Lo, 60*p.Hi
			bt.add(k, p, counts[j-7*24], counts[j-24], counts[j])
		}
	}
}
