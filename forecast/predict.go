package forecast

import "math"

// Point is the forecast of one minute: the expected value and the
// interval that should hold the value Coverage of the time. For a
// counting series the values are per minute (a step's forecast is the sum
// of its minutes); for a level they are the reading at that minute.
type Point struct {
	Expected, Lo, Hi float64
}

// Last returns the last minute observed; ok is false before any.
func (m *Model) Last() (minute int64, ok bool) { return m.last, m.minutes > 0 }

// At forecasts minute t, after the last minute observed. The profile gives
// the baseline at t; the deviation seen lately is added, faded by its
// decay over the bins from now to t; the interval is the error this model
// made at that horizon, in spreads of the profile at t.
func (m *Model) At(t int64) Point {
	if m.minutes == 0 {
		return Point{}
	}
	bin := int64(m.p.Bin)
	mean, s, ok := m.baselineAt(t)
	r := m.nowcast()
	if !ok {
		// No day seen at this time yet: the series as it is now.
		mean, s, r = float64(m.corr.prevZ), priorSpread, 0
		if m.p.Level {
			mean = math.Log1p(math.Max(m.acc, 0))
		}
	}
	h := m.horizon(t)
	z := mean + math.Pow(float64(m.corr.phi), h)*r + float64(m.corr.slope)*trendSum(h)
	hw := m.quantile() * m.errorAt(h) * s
	// A deviation below the profile can take a night's zeros below zero.
	p := Point{Expected: math.Max(math.Expm1(z), 0), Lo: math.Max(math.Expm1(z-hw), 0), Hi: math.Max(math.Expm1(z+hw), 0)}
	if !m.p.Level {
		p.Expected, p.Lo, p.Hi = p.Expected/float64(bin), p.Lo/float64(bin), p.Hi/float64(bin)
	}
	return p
}

// horizon is how many bins ahead of the last minute observed minute t
// is: for a count, from the bin in progress to t's; for a level, the
// minutes between them in bins.
func (m *Model) horizon(t int64) float64 {
	bin := int64(m.p.Bin)
	if m.p.Level {
		return float64(t-m.last) / float64(bin)
	}
	return float64(t/bin - m.bin)
}

// halfWidth is the half-width, in log space, of the interval of minute t.
func (m *Model) halfWidth(t int64) float64 {
	_, s, ok := m.baselineAt(t)
	if !ok {
		s = priorSpread
	}
	return m.quantile() * m.errorAt(m.horizon(t)) * s
}

// knows reports whether the profile knows the time of day of minute t.
func (m *Model) knows(t int64) bool {
	_, _, ok := m.baselineAt(t)
	return ok
}

// quantile is the half-width of the central Coverage of a Laplace
// distribution in units of its mean absolute deviation: forecast errors
// in log space have heavier tails than a normal's.
func (m *Model) quantile() float64 { return -math.Log(1 - m.p.Coverage) }

// errorAt is the model's mean absolute error h bins ahead, in spreads:
// measured up to Horizons, then widening towards the profile's own
// spread (1) as the correction fades.
func (m *Model) errorAt(h float64) float64 {
	c := &m.corr
	n := len(c.err)
	switch {
	case h < 1:
		return float64(c.err[0])
	case h <= float64(n):
		i := int(math.Ceil(h)) - 1
		return float64(c.err[i])
	}
	e := float64(c.err[n-1])
	fade := math.Pow(float64(c.phi), h-float64(n))
	return math.Max(e, 1-(1-e)*fade)
}

// nowcast is the deviation from the profile now, in log space: for a
// level, that of the last reading; for a count, the last finished bin's,
// faded one bin and moved towards the bin in progress as its minutes
// come in.
func (m *Model) nowcast() float64 {
	c := &m.corr
	if m.p.Level {
		mean, _, ok := m.baselineAt(m.last)
		if !ok {
			return 0
		}
		return math.Log1p(math.Max(m.acc, 0)) - mean
	}
	prior := float64(c.phi) * float64(c.r)
	mean, _, ok := m.prof.baseline(m.p.binOfWeek(m.bin), m.p.perDay())
	if !ok {
		return prior
	}
	share := float64(m.minutes) / float64(m.p.Bin)
	expected := math.Expm1(mean) * share
	e := math.Log1p(math.Max(m.acc, 0)) - math.Log1p(expected)
	return prior + m.p.Smooth*share*(e-prior)
}

// baselineAt is the profile at minute t, in log space, with its spread:
// for a count, that of t's bin; for a level, interpolated between the
// readings the profile holds at the bins' last minutes.
func (m *Model) baselineAt(t int64) (mean, spread float64, ok bool) {
	bin := int64(m.p.Bin)
	perDay := m.p.perDay()
	if !m.p.Level {
		return m.prof.baseline(m.p.binOfWeek(t/bin), perDay)
	}
	// Bin b's reading sits at minute (b+1)·Bin-1.
	b0 := (t+1)/bin - 1
	f := float64(t+1-(b0+1)*bin) / float64(bin)
	m0, s0, ok0 := m.prof.baseline(m.p.binOfWeek(b0), perDay)
	m1, s1, ok1 := m.prof.baseline(m.p.binOfWeek(b0+1), perDay)
	switch {
	case ok0 && ok1:
		return m0 + f*(m1-m0), s0 + f*(s1-s0), true
	case ok0:
		return m0, s0, true
	case ok1:
		return m1, s1, true
	}
	return 0, 0, false
}
