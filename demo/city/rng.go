package city

import (
	"math"
	"math/bits"
)

// rng is a small deterministic generator (wyrand). Every stream of the city is
// seeded from (seed, salt, minute, part), so any minute regenerates on its own,
// in any order, on any goroutine, and identically across Go releases.
type rng struct{ s uint64 }

// Salts keep the streams of different generators apart.
const (
	saltTrip uint64 = iota + 1
	saltOrphan
	saltCamera
	saltRotate
	saltCard
	saltLayout
	saltDay
)

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seedOf folds a seed and three keys into one well-mixed stream seed.
func seedOf(seed int64, salt, a, b uint64) uint64 {
	h := mix64(uint64(seed) ^ 0x9e3779b97f4a7c15)
	h = mix64(h ^ salt*0xd1b54a32d192ed03)
	h = mix64(h ^ a)
	return mix64(h ^ b*0x8cb92ba72f3d8dd7)
}

func newRNG(seed int64, salt, a, b uint64) rng { return rng{seedOf(seed, salt, a, b)} }

func (r *rng) uint64() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float64 is uniform in [0, 1).
func (r *rng) float64() float64 { return float64(r.uint64()>>11) * 0x1p-53 }

// intn is uniform in [0, n) for 0 < n < 2^32.
func (r *rng) intn(n int) int { return int(((r.uint64() >> 32) * uint64(n)) >> 32) }

// normal is a standard normal deviate, read off a table of the inverse
// normal CDF with linear interpolation: a few nanoseconds instead of
// Box–Muller's log, sqrt and cos, and accurate to about 1e-3 within ±3.7σ
// (the tails beyond are clipped, harmless for synthetic counts).
func (r *rng) normal() float64 {
	x := r.uint64()
	i := x >> (64 - normalBits)
	f := float64(x<<normalBits>>11) * 0x1p-53
	return normalTable[i] + (normalTable[i+1]-normalTable[i])*f
}

const normalBits = 12

// normalTable[i] is the inverse normal CDF at (i + 0.5) / 2^normalBits, with
// one extra entry so interpolation never reads past the end.
var normalTable = func() (t [1<<normalBits + 1]float64) {
	for i := range t {
		p := (float64(min(i, 1<<normalBits-1)) + 0.5) / (1 << normalBits)
		t[i] = math.Sqrt2 * math.Erfinv(2*p-1)
	}
	return
}()

// poisson draws a Poisson count: Knuth's product method for small means and
// the rounded normal approximation above 12, where it is good to a few per cent.
func (r *rng) poisson(mean float64) int {
	switch {
	case mean <= 0:
		return 0
	case mean < 12:
		l := expNeg(mean)
		k, p := 0, r.float64()
		for p > l {
			k++
			p *= r.float64()
		}
		return k
	default:
		n := int(math.Round(mean + math.Sqrt(mean)*r.normal()))
		if n < 0 {
			return 0
		}
		return n
	}
}

// expNeg is e^-x for 0 <= x < 700 to about 2e-5 relative error, several
// times faster than math.Exp; Poisson draws need nothing finer.
func expNeg(x float64) float64 {
	y := -x * math.Log2E
	i := math.Floor(y)
	f := y - i
	p := 1 + f*(0.6931471805599453+f*(0.2402265069591007+f*(0.05550410866482158+f*(0.009618129107628477+f*(0.0013333558146428443+f*0.00015403530393381606)))))
	return math.Float64frombits(uint64(int64(i)+1023)<<52) * p
}
