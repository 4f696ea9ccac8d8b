package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
)

// rhythm is a weekly rhythm of counts per minute: a daytime bump,
// busier on weekdays, nothing at night.
func rhythm(minute int64) float64 {
	day := (minute / 1440) % 7
	h := float64(minute%1440) / 60
	peak := 30.0
	if day >= 5 {
		peak = 18
	}
	return peak * math.Exp(-(h-13)*(h-13)/18)
}

// poisson draws a Poisson count of mean lambda (normal approximation
// above 30).
func poisson(r *rand.Rand, lambda float64) float64 {
	if lambda > 30 {
		return math.Max(0, math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-lambda), 0.0, r.Float64()
	for p > l {
		k++
		p *= r.Float64()
	}
	return k
}

// dayFactor scales a whole day, as weather and events do: deviations
// from the weekly rhythm last for hours.
func dayFactor(minute int64) float64 {
	r := rand.New(rand.NewPCG(uint64(minute/1440), 7))
	return math.Exp(0.15 * r.NormFloat64())
}

// TestModelLearnsTheWeekAndFollowsADeviation feeds three weeks of a
// weekly rhythm with days running above or below it and Poisson noise:
// the profile then forecasts a day ahead within several per cent of the
// rhythm. A day running at 1.6 times
// the rhythm is then followed: an hour in, the next half hour's forecast
// is much nearer the raised level than the profile alone, and the
// intervals hold about their coverage.
func TestModelLearnsTheWeekAndFollowsADeviation(t *testing.T) {
	p := NewParams(Params{Bin: 10})
	m := New(p)
	r := rand.New(rand.NewPCG(1, 2))
	start := int64(0)
	end := start + 21*1440
	for x := start; x < end; x++ {
		m.Observe(x, poisson(r, dayFactor(x)*rhythm(x)))
	}
	// A day ahead, bin by bin, against the true rhythm.
	var errSum, sum float64
	for b := end / 10; b < end/10+144; b++ {
		var want, got float64
		for x := b * 10; x < b*10+10; x++ {
			want += rhythm(x)
			got += m.At(x).Expected
		}
		errSum += math.Abs(got - want)
		sum += want
	}
	if rel := errSum / sum; rel > 0.15 {
		t.Errorf("a day ahead: mean error %.1f %% of the rhythm, want under 15 %%", 100*rel)
	}

	// A raised day: from 08:00 to 09:00 at 1.6 times, then forecast 09:00-09:30.
	day := end + 1440
	for x := end; x < day+9*60; x++ {
		k := 1.0
		if x >= day+8*60 {
			k = 1.6
		}
		m.Observe(x, poisson(r, k*rhythm(x)))
	}
	var raised, profileOnly, got float64
	for x := day + 9*60; x < day+9*60+30; x++ {
		raised += 1.6 * rhythm(x)
		mean, _, _ := m.baselineAt(x)
		profileOnly += math.Expm1(mean) / 10
		got += m.At(x).Expected
	}
	if math.Abs(got-raised) > 0.5*math.Abs(profileOnly-raised) {
		t.Errorf("half an hour ahead of a raised day: forecast %.0f, raised level %.0f, profile alone %.0f: the correction should cover more than half the gap", got, raised, profileOnly)
	}
	// Coverage of the 10-minute intervals over a normal day, bin by bin,
	// one bin ahead.
	next := day + 1440
	inside, n := 0, 0
	for x := day + 9*60; x < next+1440; x += 10 {
		var lo, hi, v float64
		for u := x; u < x+10; u++ {
			pt := m.At(u)
			lo += pt.Lo
			hi += pt.Hi
		}
		for u := x; u < x+10; u++ {
			x := poisson(r, rhythm(u))
			v += x
			m.Observe(u, x)
		}
		if rhythm(x) < 1 {
			continue // the night's zeros fall inside any interval
		}
		n++
		if v >= lo && v <= hi {
			inside++
		}
	}
	if c := float64(inside) / float64(n); c < 0.8 || c > 0.99 {
		t.Errorf("one bin ahead, %d of %d daytime bins inside the 90 %% interval (%.0f %%), want 80-99 %%", inside, n, 100*c)
	}
}

// TestLevelModelInterpolates feeds a level that climbs and falls each day:
// a forecast between two bins' readings lies between them.
func TestLevelModelInterpolates(t *testing.T) {
	m := New(NewParams(Params{Bin: 10, Level: true}))
	level := func(t int64) float64 { return 1000 * math.Max(0, math.Sin(float64(t%1440)/1440*math.Pi)) }
	for x := int64(0); x < 7*1440; x++ {
		m.Observe(x, level(x))
	}
	at := int64(7*1440 + 300 + 4)
	got := m.At(at).Expected
	if math.Abs(got-level(at)) > 10 {
		t.Errorf("level at minute %d: forecast %.1f, want %.1f ± 10", at, got, level(at))
	}
}

// TestDeviationFindsANewCrowd marks a quiet series' week as zeros, then a
// crowd of 40 a minute: within two minutes its deviation passes a score of
// 5, while a normal minute of the quiet series scores under 1.
func TestDeviationFindsANewCrowd(t *testing.T) {
	m := New(NewParams(Params{Bin: 30}))
	start := int64(7 * 1440 * 10)
	m.AssumeZero(start/30-7*48, start/30)
	m.Observe(start, 0)
	if d, ok := m.Deviation(); !ok || d.Score > 1 {
		t.Fatalf("a quiet minute: %+v, %v; want a known baseline and a score under 1", d, ok)
	}
	m.Observe(start+1, 40)
	m.Observe(start+2, 40)
	d, ok := m.Deviation()
	if !ok || d.Score < 5 || d.Value != 80 {
		t.Fatalf("two minutes of 40: %+v, %v; want a value of 80 scoring 5 or more", d, ok)
	}
}

// TestUsualCountSumsTheInterpolatedRates checks the piecewise sum of the
// usual count against the minute-by-minute sum, across bin middles.
func TestUsualCountSumsTheInterpolatedRates(t *testing.T) {
	m := New(NewParams(Params{Bin: 10}))
	for x := int64(0); x < 8*1440; x++ {
		m.Observe(x, rhythm(x))
	}
	for first := int64(8*1440 + 400); first < 8*1440+430; first++ {
		for n := int64(1); n <= 12; n++ {
			var want float64
			for x := first; x < first+n; x++ {
				r, _, _ := m.rateAt(x)
				want += r
			}
			got, _, ok := m.usualCount(first, first+n-1)
			if !ok || math.Abs(got-want) > 1e-9*math.Max(1, want) {
				t.Fatalf("usual count of minutes %d..%d: %v, want %v", first, first+n-1, got, want)
			}
		}
	}
}
