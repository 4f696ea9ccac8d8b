package forecast

import "math"

// anomalyWindow is the minutes a count is summed over before it is held
// against its baseline: short enough to find a new crowd within minutes,
// long enough that one odd minute of a quiet cell is not a crowd.
const anomalyWindow = 5

// Deviation is how far a series stands from its baseline band now: its
// value (a count over the last anomalyWindow minutes, or the last
// reading), what the profile expected, and the score, the difference in
// units of the usual variation: Poisson noise for counts (the square root
// of the expected count) together with the profile's own spread.
type Deviation struct {
	Value, Expected, Score float64
}

// Deviation returns the series' deviation at its last minute; ok is false
// before the profile knows that time of day.
func (m *Model) Deviation() (Deviation, bool) {
	if m.minutes == 0 {
		return Deviation{}, false
	}
	var d Deviation
	var spread float64
	if m.p.Level {
		mean, s, ok := m.baselineAt(m.last)
		if !ok {
			return d, false
		}
		d.Value, d.Expected, spread = m.acc, math.Expm1(mean), s
	} else {
		for t := m.last - anomalyWindow + 1; t <= m.last; t++ {
			d.Value += float64(m.recent[(t%anomalyWindow+anomalyWindow)%anomalyWindow])
		}
		var ok bool
		if d.Expected, spread, ok = m.usualCount(m.last-anomalyWindow+1, m.last); !ok {
			return d, false
		}
	}
	return deviation(d.Value, d.Expected, spread), true
}

// rateAt is a counting series' usual count in minute t, interpolated
// between the rates of the bins' middles: a rush hour climbs through a
// bin, and a rate held flat across it would call the bin's last minutes
// unusual every morning.
func (m *Model) rateAt(t int64) (rate, spread float64, ok bool) {
	bin := float64(m.p.Bin)
	x := float64(t) + 0.5 - bin/2 // minutes from the first bin's middle
	b0 := int64(math.Floor(x / bin))
	f := x/bin - float64(b0)
	m0, s0, ok0 := m.prof.baseline(m.p.binOfWeek(b0), m.p.perDay())
	m1, s1, ok1 := m.prof.baseline(m.p.binOfWeek(b0+1), m.p.perDay())
	switch {
	case ok0 && ok1:
		return ((1-f)*math.Expm1(m0) + f*math.Expm1(m1)) / bin, max(s0, s1), true
	case ok0:
		return math.Expm1(m0) / bin, s0, true
	case ok1:
		return math.Expm1(m1) / bin, s1, true
	}
	return 0, 0, false
}

// usualCount is the usual count of the minutes [first, last], summed from
// rateAt's straight pieces: on one piece the sum is the count of minutes
// times the mean of its two ends.
func (m *Model) usualCount(first, last int64) (sum, spread float64, ok bool) {
	bin := int64(m.p.Bin)
	for a := first; a <= last; {
		// The piece holding a ends at the next bin's middle, minute bin/2-1 of it.
		b := min(last, ((a+bin/2)/bin)*bin+bin/2-1)
		if b < a {
			b = a
		}
		ra, sa, okA := m.rateAt(a)
		rb, sb, okB := m.rateAt(b)
		if !okA || !okB {
			return 0, 0, false
		}
		sum += float64(b-a+1) * (ra + rb) / 2
		spread = max(spread, sa, sb)
		a = b + 1
	}
	return sum, spread, true
}

// AssumeZero records that the series was zero in the bins [from, to)
// (bin numbers), where the profile knows nothing yet: a cell that had
// nothing while it was watched, before its first count. At most a week of
// bins is marked.
func (m *Model) AssumeZero(from, to int64) {
	from = max(from, to-int64(m.p.perWeek()))
	for b := from; b < to; b++ {
		i := m.p.binOfWeek(b)
		if m.prof.seen[i] == 0 {
			m.prof.mean[i], m.prof.spread[i], m.prof.seen[i] = 0, priorSpread, 1
		}
	}
}

// BinDeviation returns how far v, the whole value of bin b (unix minute /
// Bin) that is yet to be learnt, stands from the profile.
func (m *Model) BinDeviation(b int64, v float64) (Deviation, bool) {
	mean, s, ok := m.prof.baseline(m.p.binOfWeek(b), m.p.perDay())
	if !ok {
		return Deviation{}, false
	}
	return deviation(v, math.Expm1(mean), s), true
}

// deviation scores value against expected with the profile's spread s.
func deviation(value, expected, s float64) Deviation {
	rel := math.Expm1(s) * expected
	return Deviation{Value: value, Expected: expected, Score: (value - expected) / math.Sqrt(expected+rel*rel+1)}
}
