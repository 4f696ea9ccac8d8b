package forecast

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// The methods a backtest scores: the model and the two baselines the
// issue holds it against.
const (
	methodModel = iota
	methodLastWeek
	methodYesterday
	numMethods
)

var methodNames = [numMethods]string{"flowd model", "same time last week", "copy yesterday"}

// mapeFloor is the smallest actual value a percentage error is taken of:
// below it (night hours, a closed station) one person is tens of per cent.
const mapeFloor = 10

// score accumulates one method's errors at one horizon.
type score struct {
	absSum     float64
	n          int
	pctSum     float64
	pctN       int
	inside, of int // actuals inside the model's interval
}

func (s *score) add(forecast, actual float64) {
	s.absSum += math.Abs(forecast - actual)
	s.n++
	if actual >= mapeFloor {
		s.pctSum += math.Abs(forecast-actual) / actual
		s.pctN++
	}
}

func (s *score) mae() float64  { return s.absSum / float64(s.n) }
func (s *score) mape() float64 { return 100 * s.pctSum / float64(s.pctN) }

// backtest is the scores of every method at each horizon of one data set.
type backtest struct {
	name     string
	horizons []string
	scores   [][numMethods]score // by horizon
}

func newBacktest(name string, horizons ...string) *backtest {
	return &backtest{name: name, horizons: horizons, scores: make([][numMethods]score, len(horizons))}
}

// add scores one forecast target at horizon h: the model's point and
// interval and the two baselines' values, against the actual value.
// Targets where a baseline has no value are not scored at all, so that
// every method is scored on the same targets.
func (bt *backtest) add(h int, model Point, lastWeek, yesterday, actual float64) {
	if math.IsNaN(actual) || math.IsNaN(lastWeek) || math.IsNaN(yesterday) {
		return
	}
	s := &bt.scores[h]
	s[methodModel].add(model.Expected, actual)
	s[methodLastWeek].add(lastWeek, actual)
	s[methodYesterday].add(yesterday, actual)
	s[methodModel].of++
	if actual >= model.Lo && actual <= model.Hi {
		s[methodModel].inside++
	}
}

// table is the results as a Markdown table, for BENCH.md.
func (bt *backtest) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n| horizon | targets | method | MAE | MAPE (actual ≥ %d) | 90 %% interval held |\n|---|---:|---|---:|---:|---:|\n", bt.name, mapeFloor)
	for h, name := range bt.horizons {
		for k := range numMethods {
			s := &bt.scores[h][k]
			cover := ""
			if k == methodModel {
				cover = fmt.Sprintf("%.1f %%", 100*float64(s.inside)/float64(s.of))
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %.2f | %.1f %% | %s |\n", name, s.n, methodNames[k], s.mae(), s.mape(), cover)
		}
	}
	return b.String()
}

// check fails t unless the model beats both baselines in MAE and MAPE at
// every horizon.
func (bt *backtest) check(t *testing.T) {
	t.Helper()
	for h, name := range bt.horizons {
		s := &bt.scores[h]
		if s[methodModel].n == 0 {
			t.Errorf("%s, %s: nothing scored", bt.name, name)
			continue
		}
		for _, k := range []int{methodLastWeek, methodYesterday} {
			if s[methodModel].mae() >= s[k].mae() {
				t.Errorf("%s, %s: model MAE %.2f, %s %.2f: want the model better", bt.name, name, s[methodModel].mae(), methodNames[k], s[k].mae())
			}
			if s[methodModel].mape() >= s[k].mape() {
				t.Errorf("%s, %s: model MAPE %.1f %%, %s %.1f %%: want the model better", bt.name, name, s[methodModel].mape(), methodNames[k], s[k].mape())
			}
		}
	}
}
