package forecast

import (
	"math"

	"github.com/flowd/flowd/vocab"
)

// occupancy forecasts a site's occupancy for the n minutes from from: its
// last reading plus the entries less the exits that the models of its
// gates forecast minute by minute. Occupancy is whoever came in and has
// not left, so a surge of arrivals keeps raising it for as long as the
// entries' deviation lasts, which a level's own deviation, fading, would
// not say. The interval is the one the occupancy model has learnt it makes
// at each horizon. ok is false when the gates' profiles do not know the
// time yet (a site counted by occupancy readings alone): the occupancy
// model forecasts alone then.
func (b *book) occupancy(s *series, from int64, n int) (pts []Point, ok bool) {
	in := b.byKey[seriesKey{vocab.FootfallIn, s.cell}]
	out := b.byKey[seriesKey{vocab.FootfallOut, s.cell}]
	occ := s.model
	if in == nil || out == nil || occ.minutes == 0 || !in.model.knows(from) || !out.model.knows(from) {
		return nil, false
	}
	level := math.Max(occ.acc, 0)
	for t := occ.last + 1; t < from; t++ {
		level += in.model.At(t).Expected - out.model.At(t).Expected
	}
	pts = make([]Point, n)
	for i := range pts {
		t := from + int64(i)
		level = math.Max(level+in.model.At(t).Expected-out.model.At(t).Expected, 0)
		hw := occ.halfWidth(t)
		pts[i] = Point{Expected: level, Lo: math.Max(math.Expm1(math.Log1p(level)-hw), 0), Hi: math.Expm1(math.Log1p(level) + hw)}
	}
	return pts, true
}
