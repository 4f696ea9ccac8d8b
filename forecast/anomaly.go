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
		bin := int64(m.p.Bin)
		for t := m.last - anomalyWindow + 1; t <= m.last; t++ {
			mean, s, ok := m.prof.baseline(m.p.binOfWeek(t/bin), m.p.perDay())
			if !ok {
				return d, false
			}
			d.Value += float64(m.recent[(t%anomalyWindow+anomalyWindow)%anomalyWindow])
			d.Expected += math.Expm1(mean) / float64(bin)
			spread = max(spread, s)
		}
	}
	rel := math.Expm1(spread) * d.Expected
	d.Score = (d.Value - d.Expected) / math.Sqrt(d.Expected+rel*rel+1)
	return d, true
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
