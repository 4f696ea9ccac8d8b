package privacy

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// Area is the place a figure is about: base-resolution cell ranges, merged
// and sorted as geo.Ranges makes them, so that one set of cells has one
// identity, and one noise, however a caller named it (a res-8 cell or its
// seven children, a bbox or the cells it covers). Its identity is worked
// out the first time a figure about it is noised.
type Area struct {
	ranges []vocab.CellRange
	known  bool
	digest [sha256.Size]byte
	// level is the resolution of the one pyramid cell the area is, or -1.
	level int
}

// Area returns the area of the base-resolution ranges rs, which must be
// merged and sorted (geo.Ranges, a corridor locator's Ranges).
func (r *Release) Area(rs []vocab.CellRange) *Area { return &Area{ranges: rs} }

// CellArea returns the area of one cell no finer than the base resolution.
func (r *Release) CellArea(c h3.Cell) *Area {
	return &Area{ranges: []vocab.CellRange{geo.ChildRange(c, r.l.p.BaseRes)}}
}

// identify works out the area's digest and pyramid level.
func (a *Area) identify(p *Policy) {
	if a.known {
		return
	}
	h := sha256.New()
	var b [16]byte
	for _, r := range a.ranges {
		binary.BigEndian.PutUint64(b[:8], r.Lo)
		binary.BigEndian.PutUint64(b[8:], r.Hi)
		h.Write(b[:])
	}
	h.Sum(a.digest[:0])
	a.level = pyramidLevel(p, a.ranges)
	a.known = true
}

// pyramidLevel returns the resolution of the pyramid cell whose children
// are exactly rs, or -1 when rs is not one such cell.
func pyramidLevel(p *Policy, rs []vocab.CellRange) int {
	if len(rs) != 1 {
		return -1
	}
	base := h3.Cell(rs[0].Lo)
	if !base.IsValid() || base.Resolution() != p.BaseRes {
		return -1
	}
	finest := min(p.FinestRes, p.BaseRes)
	for res := finest; res > finest-PyramidLevels && res >= 0; res-- {
		c := base
		if res < p.BaseRes {
			c = base.Parent(res)
		}
		if geo.ChildRange(c, p.BaseRes) == rs[0] {
			return res
		}
	}
	return -1
}
