package forecast

import (
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// The month of the synthetic city the backtest generates: 30 days from
// Monday 7 January 2019, the first three weeks to learn from, and a
// three-day holiday (Tuesday to Thursday of the fourth week) that nothing
// before it announced.
const (
	cityDays       = 30
	cityTrainDays  = 21
	cityHolidayDay = 22 // first holiday, as a day of the month from 0
	cityHolidays   = 3
	cityScale      = 0.2
)

// cityMonth is every station's taps in and out per minute over the month:
// series 2i is station i's taps in, 2i+1 its taps out.
type cityMonth struct {
	minutes int
	series  [][]float32
}

// generateCityMonth generates the month's taps, day by day in parallel.
// Holidays come from a city built with the holiday rhythm, the same city
// otherwise: minutes are generated from the seed and the minute alone.
func generateCityMonth() *cityMonth {
	cfg := city.Config{Seed: 1, Scale: cityScale, Cameras: 1, Sites: 1}
	normal := city.New(cfg)
	cfg.Holiday = true
	holiday := city.New(cfg)
	cm := &cityMonth{minutes: cityDays * 1440, series: make([][]float32, 2*len(normal.Stations))}
	for i := range cm.series {
		cm.series[i] = make([]float32, cm.minutes)
	}
	days := make(chan int, cityDays)
	for d := range cityDays {
		days <- d
	}
	close(days)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for d := range days {
				c := normal
				if d >= cityHolidayDay && d < cityHolidayDay+cityHolidays {
					c = holiday
				}
				cm.generateDay(c, d)
			}
		})
	}
	wg.Wait()
	return cm
}

func (cm *cityMonth) generateDay(c *city.City, day int) {
	for m := day * 1440; m < (day+1)*1440; m++ {
		c.Minute(city.DefaultStart.Add(time.Duration(m)*time.Minute), func(e *city.Event) {
			if e.Kind != city.KindSwipe {
				return
			}
			st, err := strconv.Atoi(e.ID)
			if err != nil {
				panic("BUG: a generated station id that is not its index: " + e.ID)
			}
			s := 2 * st
			if e.Dir == city.DirOut {
				s++
			}
			cm.series[s][m]++
		})
	}
}

// binSum is the sum of series s over 10-minute bin b of the month, NaN
// before the month.
func (cm *cityMonth) binSum(s, b int) float64 {
	if b < 0 {
		return math.NaN()
	}
	var v float64
	for _, x := range cm.series[s][b*10 : b*10+10] {
		v += float64(x)
	}
	return v
}

// TestBacktestCityStations generates a month of the synthetic city's
// metro taps and forecasts every station's taps in and out in 10-minute
// bins over the last nine days, holiday included, feeding the model
// minute by minute as ingest does: the bin ending 15, 30 and 60 minutes
// after each minute it can, and at each midnight every bin of the coming
// day (one day ahead, as the 2019 Hangzhou metro challenge scored). The
// model must beat the same bin last week and the same bin yesterday in
// MAE and MAPE at every horizon.
func TestBacktestCityStations(t *testing.T) {
	start := time.Now()
	cm := generateCityMonth()
	generated := time.Since(start)
	bt := newBacktest("Synthetic city, 81 stations × taps in and out, 10-minute bins, 30 days (3-day holiday in the last 9)",
		"15 min", "30 min", "60 min", "1 day")
	p := NewParams(Params{Bin: 10})
	for s := range cm.series {
		backtestStation(bt, New(p), cm, s)
	}
	t.Logf("generated in %v, scored in %v\n%s", generated.Round(time.Millisecond), (time.Since(start) - generated).Round(time.Millisecond), bt.table())
	bt.check(t)
}

// backtestStation feeds series s minute by minute and scores the model's
// forecasts once the three weeks of learning are over.
func backtestStation(bt *backtest, m *Model, cm *cityMonth, s int) {
	horizons := []int{15, 30, 60}
	for x := 0; x < cm.minutes; x++ {
		m.Observe(int64(x), float64(cm.series[s][x]))
		origin := x + 1
		if origin < cityTrainDays*1440 {
			continue
		}
		for k, h := range horizons {
			if (origin+h)%10 != 0 || origin+h > cm.minutes {
				continue
			}
			backtestBin(bt, k, m, cm, s, (origin+h)/10-1)
		}
		if origin%1440 == 0 && origin < cm.minutes {
			for b := origin / 10; b < origin/10+144; b++ {
				backtestBin(bt, len(horizons), m, cm, s, b)
			}
		}
	}
}

// backtestBin scores the forecast of bin b at horizon k. A counting
// series' forecast is the same each minute of a bin.
func backtestBin(bt *backtest, k int, m *Model, cm *cityMonth, s, b int) {
	p := m.At(int64(b * 10))
	p.Expected, p.Lo, p.Hi = 10*p.Expected, 10*p.Lo, 10*p.Hi
	bt.add(k, p, cm.binSum(s, b-1008), cm.binSum(s, b-144), cm.binSum(s, b))
}
