package forecast

import "math"

// profile is a series' weekly rhythm: for each bin of the week, the
// typical value and how far values usually stray from it, both in log
// space (log(1+v)), where a busy hour twice as busy as usual and a quiet
// one twice as quiet are the same distance from their baselines.
//
// Each bin learns from the weeks it has seen with a rate of 1/n, so the
// first weeks weigh alike, falling to a floor that keeps the profile
// following a slow change of season. An innovation larger than a few
// spreads is clipped before it is learnt: one holiday or one surge moves
// the profile by a fraction of a spread, not by its own size.
type profile struct {
	mean   []float32 // per bin of the week, log(1+v)
	spread []float32 // mean absolute deviation from mean, log space
	seen   []uint8   // weeks learnt, saturating
}

// Spread bounds, in log space. minSpread keeps a bin that never varied
// (a station closed every night) from calling any change infinitely
// unusual; priorSpread is assumed of a bin seen once.
const (
	minSpread   = 0.02
	priorSpread = 0.25
	clipSpreads = 3 // innovations learnt at most this many spreads
)

// learnSpan weighs recent weeks more while a bin has seen few: its n-th
// week is learnt at a rate of span/(n+span-1) (1, then 2/3, 1/2, 2/5 for
// a span of 2) rather than 1/n, since a season turns within a month.
const learnSpan = 2

func newProfile(bins int) profile {
	return profile{mean: make([]float32, bins), spread: make([]float32, bins), seen: make([]uint8, bins)}
}

// baseline returns the bin's learnt mean and spread. A bin not seen yet
// borrows the same time of day on the nearest earlier day that has been
// seen (the first week of a series has only yesterday to go by); ok is
// false when no day has been seen at that time.
func (p *profile) baseline(b, perDay int) (mean, spread float64, ok bool) {
	n := len(p.mean)
	for d := 0; d < n/perDay; d++ {
		i := ((b-d*perDay)%n + n) % n
		if p.seen[i] > 0 {
			return float64(p.mean[i]), math.Max(float64(p.spread[i]), minSpread), true
		}
	}
	return 0, 0, false
}

// learn folds the value z (log space) of a finished bin b into the
// profile, at a rate of 1/n falling to minAlpha.
func (p *profile) learn(b, perDay int, z, minAlpha float64) {
	if p.seen[b] == 0 {
		spread := priorSpread
		if _, s, ok := p.baseline(b, perDay); ok {
			spread = s
		}
		p.mean[b], p.spread[b], p.seen[b] = float32(z), float32(spread), 1
		return
	}
	n := float64(p.seen[b]) + 1
	alpha := math.Max(learnSpan/(n+learnSpan-1), minAlpha)
	m, s := float64(p.mean[b]), math.Max(float64(p.spread[b]), minSpread)
	e := z - m
	clipped := math.Max(-clipSpreads*s, math.Min(clipSpreads*s, e))
	p.mean[b] = float32(m + alpha*clipped)
	p.spread[b] = float32(s + alpha*(math.Min(math.Abs(e), 2*clipSpreads*s)-s))
	if p.seen[b] < math.MaxUint8 {
		p.seen[b]++
	}
}

// bytes is the profile's size in memory.
func (p *profile) bytes() int { return len(p.mean)*4 + len(p.spread)*4 + len(p.seen) }
