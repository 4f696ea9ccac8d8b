// Package forecast predicts flowd's series a little ahead and finds the
// ones that stray from their usual rhythm. Each series (a station's taps
// in, a site's entries, a site's occupancy, a cell's counts) has a Model:
// its weekly profile (the seasonal baseline of each bin of the week, with
// its usual spread) and an online short-term correction, the recent
// deviation from the profile, which decays with the horizon at a rate
// learnt from the series itself. Intervals come from the errors the model
// made at each horizon, measured as it goes. A Model takes one value a
// finished minute, costs O(1) per update and a few kilobytes; a Tracker
// keeps the models of every watched series, fed by ingest once a minute.
// docs/forecast.md describes the model and its backtests.
package forecast

import "math"

// Params shape the models of one kind of series; a Model keeps a pointer
// to its Params, shared by every series of the kind. Zero fields take the
// defaults in brackets.
type Params struct {
	// Bin is the profile's bin in minutes; it divides a day [10].
	Bin int
	// Level marks a series of readings (occupancy): a bin's value is its
	// last reading. Otherwise the series counts (entries, taps) and a
	// bin's value is the sum of its minutes.
	Level bool
	// MinAlpha is the floor of the profile's learning rate: the weight of
	// the latest week once several have been seen [0.15].
	MinAlpha float64
	// Smooth is the weight of the latest bin's deviation in the
	// short-term correction [0.6].
	Smooth float64
	// Horizons is how many bins ahead the correction's errors are
	// measured; beyond, the interval widens towards the profile's own
	// spread [6].
	Horizons int
	// Coverage is the share of values the intervals should hold [0.9].
	Coverage float64
}

func (p Params) withDefaults() Params {
	if p.Bin <= 0 {
		p.Bin = 10
	}
	if 1440%p.Bin != 0 {
		panic("BUG: a forecast bin that does not divide a day")
	}
	if p.MinAlpha <= 0 {
		p.MinAlpha = 0.15
	}
	if p.Smooth <= 0 {
		p.Smooth = 0.6
	}
	if p.Horizons <= 0 {
		p.Horizons = 6
	}
	if p.Coverage <= 0 || p.Coverage >= 1 {
		p.Coverage = 0.9
	}
	return p
}

// NewParams returns p with its defaults filled in, for models to share.
func NewParams(p Params) *Params {
	p = p.withDefaults()
	return &p
}

func (p *Params) perDay() int  { return 1440 / p.Bin }
func (p *Params) perWeek() int { return 7 * 1440 / p.Bin }

// binOfWeek is the profile index of bin number b (unix minute / Bin).
// Bins are counted in UTC: a zone's rhythm is the same rhythm shifted.
func (p *Params) binOfWeek(b int64) int {
	n := int64(p.perWeek())
	return int((b%n + n) % n)
}

// Model forecasts one series. It is not safe for concurrent use.
type Model struct {
	p    *Params
	prof profile

	// The bin being filled: its number, the sum of its minutes (or the
	// last reading), the minutes seen and the last of them.
	bin     int64
	acc     float64
	minutes int32
	last    int64

	corr correction
	// recent holds the last anomalyWindow minute values, for anomalies.
	recent [anomalyWindow]float32
}

// correction is the short-term part of the model: the recent deviation
// from the profile, in log space, and how fast deviations fade.
type correction struct {
	r   float32 // smoothed deviation at the end of the last finished bin
	phi float32 // its decay per bin
	// Exponentially weighted moments of the deviations, for phi: e²,
	// e·e₋₁ and e·e₋₂, with the two previous deviations.
	m0, m1, m2 float32
	e1, e2     float32
	n          uint32 // deviations seen, saturating
	// past holds r at the ends of the last Horizons bins, newest first;
	// filled says how many are valid (a gap in the data empties it).
	past   []float32
	filled int32
	// err is, per horizon 1..Horizons, the mean absolute error of the
	// forecast made that many bins before, in spreads.
	err []float32
	// A level (occupancy) follows its deviation's trend too, damped: a
	// surge of arrivals keeps raising it. slope is the deviation's change
	// per bin, lastE the last bin's deviation, pastSlope the slopes at the
	// ends of the last Horizons bins. Counts have none (nil).
	slope, lastE float32
	pastSlope    []float32
	// prevZ is the last finished bin's value, the forecast of a series
	// with no profile yet.
	prevZ float32
}

// New returns an empty model with the shared params p (from NewParams).
func New(p *Params) *Model {
	m := &Model{p: p, prof: newProfile(p.perWeek()), bin: math.MinInt64}
	m.corr.phi = 0.8
	m.corr.past = make([]float32, p.Horizons)
	m.corr.err = make([]float32, p.Horizons)
	if p.Level {
		m.corr.pastSlope = make([]float32, p.Horizons)
	}
	for i := range m.corr.err {
		m.corr.err[i] = 1
	}
	return m
}

// Bytes is the model's size in memory.
func (m *Model) Bytes() int {
	const fixed = 8 + 3*8 + 8 + 4*anomalyWindow + 4*10 + 8 + 2*24 + 4
	return fixed + m.prof.bytes() + 4*len(m.corr.past) + 4*len(m.corr.err) + 4*len(m.corr.pastSlope)
}

// Observe feeds the value of one finished minute (unix minutes): a count
// for a counting series, a reading for a level. Minutes come in order; a
// minute at or before the last one observed is ignored.
func (m *Model) Observe(minute int64, v float64) {
	if m.minutes > 0 && minute <= m.last {
		return
	}
	b := minute / int64(m.p.Bin)
	if b != m.bin {
		if m.minutes > 0 {
			m.finish(b - m.bin)
		}
		m.bin, m.acc, m.minutes = b, 0, 0
	}
	if m.p.Level {
		m.acc = v
	} else {
		m.acc += v
	}
	m.minutes++
	m.last = minute
	m.recent[minute%anomalyWindow] = float32(v)
}

// ObserveBin feeds a whole bin at once (number b, unix minute / Bin): the
// sum of its minutes, or its last reading. Rebuilding a model from stored
// history goes bin by bin.
func (m *Model) ObserveBin(b int64, v float64) {
	end := (b+1)*int64(m.p.Bin) - 1
	if m.minutes > 0 && end <= m.last {
		return
	}
	if m.minutes > 0 {
		m.finish(b - m.bin)
	}
	m.bin, m.acc, m.minutes, m.last = b, v, int32(m.p.Bin), end
}

// finish learns the bin being filled; next is how many bins later the
// next one starts (more than 1 after a gap in the data).
func (m *Model) finish(next int64) {
	z := math.Log1p(math.Max(m.acc, 0))
	i := m.p.binOfWeek(m.bin)
	c := &m.corr
	if mean, s, ok := m.prof.baseline(i, m.p.perDay()); ok {
		e := z - mean
		c.learnErrors(e, s)
		c.learnDecay(math.Max(-clipSpreads, math.Min(clipSpreads, e/s)), weightOf(mean))
		prior := float64(c.phi) * float64(c.r)
		c.r = float32(prior + m.p.Smooth*(e-prior))
		if c.pastSlope != nil && c.filled > 0 {
			c.slope += trendWeight * (float32(e) - c.lastE - c.slope)
		}
		c.lastE = float32(e)
	} else {
		c.r, c.slope = 0, 0
	}
	c.push(c.r, c.slope)
	m.prof.learn(i, m.p.perDay(), z, m.p.MinAlpha)
	c.prevZ = float32(z)
	if next > 1 {
		// Bins without data: the deviation fades as it would have, and no
		// forecast of those bins can be scored.
		c.r *= float32(math.Pow(float64(c.phi), float64(min(next-1, 1000))))
		c.slope, c.filled = 0, 0
	}
}

// learnErrors scores the forecasts made 1..Horizons bins before this one,
// whose deviation turned out to be e, in spreads s.
func (c *correction) learnErrors(e, s float64) {
	k := float32(1 / 300.0)
	if c.n < 300 {
		k = 1 / float32(c.n+1)
	}
	phi := float64(c.phi)
	ph := phi
	for h := 0; h < int(c.filled); h++ {
		pred := ph * float64(c.past[h])
		if c.pastSlope != nil {
			pred += float64(c.pastSlope[h]) * trendSum(float64(h+1))
		}
		u := math.Min(math.Abs(e-pred)/s, 10)
		c.err[h] += k * (float32(u) - c.err[h])
		ph *= phi
	}
}

// weightOf is how much a bin whose profile mean is mean (log space)
// counts in learning the decay: a bin expecting a handful of people
// deviates by chance alone and says little about how long a deviation
// lasts.
func weightOf(mean float64) float32 {
	e := math.Expm1(mean)
	return float32(e / (e + 20))
}

// learnDecay updates how fast deviations fade, from the lag-1 and lag-2
// autocorrelations of the deviations (in spreads, clipped so that the
// first bins of a surge do not outweigh weeks, weighted by w): for a
// lasting deviation under noise, their ratio is the decay per bin.
func (c *correction) learnDecay(e float64, w float32) {
	k := float32(1 / 500.0)
	if c.n < 500 {
		k = 1 / float32(c.n+1)
	}
	k *= w
	ef := float32(e)
	c.m0 += k * (ef*ef - c.m0)
	c.m1 += k * (ef*c.e1 - c.m1)
	c.m2 += k * (ef*c.e2 - c.m2)
	c.e2, c.e1 = c.e1, ef
	if c.n < math.MaxUint32 {
		c.n++
	}
	if c.n < 24 || c.m0 <= 0 {
		return
	}
	rho1, rho2 := c.m1/c.m0, c.m2/c.m0
	phi := float32(0.5)
	if rho1 > 0.05 {
		phi = rho2 / rho1
	}
	phi = min(max(phi, 0.3), 0.98)
	// The ratio of two small correlations is a jumpy estimate: the decay
	// follows it slowly once the series is known, so that the first bins
	// of a surge do not swing every forecast.
	if c.n > 100 {
		phi = c.phi + phiRate*(phi-c.phi)
	}
	c.phi = phi
}

// phiRate is how fast the decay follows its estimate, per bin.
const phiRate = 0.05

// push records r and slope as the newest at a bin's end.
func (c *correction) push(r, slope float32) {
	copy(c.past[1:], c.past)
	c.past[0] = r
	if c.pastSlope != nil {
		copy(c.pastSlope[1:], c.pastSlope)
		c.pastSlope[0] = slope
	}
	c.filled = min(c.filled+1, int32(len(c.past)))
}

// The damped trend of a level's deviation: each bin the slope is learnt
// at trendWeight, and h bins ahead it adds slope × trendSum(h), at most
// trendDamping/(1-trendDamping) bins of it.
const (
	trendWeight  = 0.3
	trendDamping = 0.8
)

func trendSum(h float64) float64 {
	return trendDamping * (1 - math.Pow(trendDamping, h)) / (1 - trendDamping)
}
