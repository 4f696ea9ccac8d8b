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

// normal is a standard normal deviate (Box–Muller, one of the pair).
func (r *rng) normal() float64 {
	u := 1 - r.float64()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*r.float64())
}

// poisson draws a Poisson count: Knuth's product method for small means and
// the rounded normal approximation above 12, where it is good to a few per cent.
func (r *rng) poisson(mean float64) int {
	switch {
	case mean <= 0:
		return 0
	case mean < 12:
		l := math.Exp(-mean)
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
