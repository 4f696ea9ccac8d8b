package privacy

import (
	"encoding/binary"
	"math"
)

// figure is one released figure outside the pyramid, kept to work out
// what its answer cost.
type figure struct {
	metric   string
	area     *Area
	dest     *Area
	from, to int64
	id       uint64
}

// Figure names one number an answer releases: a metric summed over an
// area and the minutes [From, To); for a trip, Dest is where it ended.
type Figure struct {
	Metric   string
	Area     *Area
	Dest     *Area // nil but for OD pairs
	From, To int64 // unix minutes
}

// digest returns the keyed hash of the figure's identity: its first 8
// bytes name it, the next 16 draw its noise. Nothing but the server's
// secret and the identity goes in, so the same figure gets the same noise
// in every route and every time it is asked.
func (r *Release) digest(f Figure) [32]byte {
	r.mac.Reset()
	var b [16]byte
	r.mac.Write([]byte(f.Metric))
	r.mac.Write([]byte{0})
	r.mac.Write(f.Area.digest[:])
	if f.Dest != nil {
		r.mac.Write(f.Dest.digest[:])
	}
	binary.BigEndian.PutUint64(b[:8], uint64(f.From))
	binary.BigEndian.PutUint64(b[8:], uint64(f.To))
	r.mac.Write(b[:])
	var d [32]byte
	r.mac.Sum(d[:0])
	return d
}

// geometric returns two-sided geometric noise drawn from 16 bytes of a
// digest, P(x) ∝ exp(-ε|x|/unit): the discrete Laplace mechanism, exactly
// ε-differentially private for a figure one event changes by at most
// unit. It is the difference of two geometric draws, each by inversion of
// a uniform in (0, 1). Integer output leaves no low-order bits of a
// floating-point sample to attack.
func geometric(draw []byte, epsilon float64, unit int64) int64 {
	lnAlpha := -epsilon / float64(unit)
	g := func(x uint64) int64 {
		u := (float64(x>>11) + 0.5) / (1 << 53)
		return int64(math.Floor(math.Log(u) / lnAlpha))
	}
	return g(binary.BigEndian.Uint64(draw[:8])) - g(binary.BigEndian.Uint64(draw[8:16]))
}
