package geo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/uber/h3-go/v4"
)

// kmPerDeg is the length of one degree of latitude on a sphere of the
// Earth's mean radius.
const kmPerDeg = 111.195

// BBox is a bounding box in degrees, in GeoJSON order (west, south, east,
// north). Boxes crossing the antimeridian are not supported: west < east.
type BBox struct{ West, South, East, North float64 }

// ParseBBox parses "west,south,east,north" and checks that each value is a
// number in range and that the box is not empty or inverted.
func ParseBBox(s string) (BBox, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return BBox{}, fmt.Errorf("bbox %q: want 4 comma-separated numbers west,south,east,north, got %d", s, len(parts))
	}
	names := [4]string{"west", "south", "east", "north"}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return BBox{}, fmt.Errorf("bbox %s %q is not a number", names[i], p)
		}
		v[i] = f
	}
	b := BBox{West: v[0], South: v[1], East: v[2], North: v[3]}
	return b, b.check()
}

func (b BBox) check() error {
	for _, lng := range []float64{b.West, b.East} {
		if err := checkLng(lng); err != nil {
			return fmt.Errorf("bbox: %w", err)
		}
	}
	for _, lat := range []float64{b.South, b.North} {
		if err := checkLat(lat); err != nil {
			return fmt.Errorf("bbox: %w", err)
		}
	}
	if b.West >= b.East {
		return fmt.Errorf("bbox: west %v must be less than east %v", b.West, b.East)
	}
	if b.South >= b.North {
		return fmt.Errorf("bbox: south %v must be less than north %v", b.South, b.North)
	}
	return nil
}

// Contains reports whether (lat, lng) lies inside b, edges included.
func (b BBox) Contains(lat, lng float64) bool {
	return lat >= b.South && lat <= b.North && lng >= b.West && lng <= b.East
}

// Cells returns the sorted res cells that share area with b, so that every
// point of the box lies in one of them and a box thinner than a cell still
// has cells. More than max cells is an error that suggests a coarser res.
func (b BBox) Cells(res int, max int) ([]h3.Cell, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := checkRes(res); err != nil {
		return nil, err
	}
	// Candidates are the cells centred in the box grown by two edge lengths
	// (a cell's centre is at most about one edge from any of its points),
	// and the corners' cells; those not touching the box are dropped.
	grow := 2 * h3.HexagonEdgeLengthAvgKm(res) / kmPerDeg
	coslat := math.Cos(math.Min(math.Max(math.Abs(b.South), math.Abs(b.North))*math.Pi/180, 1.5))
	g := BBox{
		West:  math.Max(b.West-grow/coslat, -180),
		South: math.Max(b.South-grow, -90),
		East:  math.Min(b.East+grow/coslat, 180),
		North: math.Min(b.North+grow, 90),
	}
	if err := checkEstimate(g.areaKm2(), res, max); err != nil {
		return nil, err
	}
	var cands []h3.Cell
	// Slices at most 90° wide, because H3 takes a loop edge spanning more
	// than 180° of longitude for one crossing the antimeridian.
	for w := g.West; w < g.East; w += 90 {
		e := math.Min(w+90, g.East)
		loop := h3.GeoLoop{{Lat: g.South, Lng: w}, {Lat: g.South, Lng: e}, {Lat: g.North, Lng: e}, {Lat: g.North, Lng: w}}
		cands = append(cands, polygonToCells(h3.GeoPolygon{GeoLoop: loop}, res)...)
	}
	corners := []h3.LatLng{{Lat: b.South, Lng: b.West}, {Lat: b.South, Lng: b.East}, {Lat: b.North, Lng: b.East}, {Lat: b.North, Lng: b.West}}
	for _, p := range corners {
		cands = append(cands, h3.LatLngToCell(p, res))
	}
	cells := cands[:0]
	for _, c := range cands {
		if b.touches(c, corners) {
			cells = append(cells, c)
		}
	}
	return capCells(cells, res, max)
}

// touches reports whether cell c shares area with b: a vertex of one lies
// in the other, or their edges cross.
func (b BBox) touches(c h3.Cell, corners []h3.LatLng) bool {
	if ll := c.LatLng(); b.Contains(ll.Lat, ll.Lng) {
		return true
	}
	ring := []h3.LatLng(c.Boundary())
	for _, v := range ring {
		if b.Contains(v.Lat, v.Lng) {
			return true
		}
	}
	for _, p := range corners {
		if ringContains(ring, p.Lat, p.Lng) {
			return true
		}
	}
	for i := range ring {
		p, q := ring[i], ring[(i+1)%len(ring)]
		for j := range corners {
			if segmentsCross(p, q, corners[j], corners[(j+1)%len(corners)]) {
				return true
			}
		}
	}
	return false
}

// segmentsCross reports whether segments pq and rs cross, in the lat/lng plane.
func segmentsCross(p, q, r, s h3.LatLng) bool {
	side := func(a, b, c h3.LatLng) float64 {
		return (b.Lng-a.Lng)*(c.Lat-a.Lat) - (b.Lat-a.Lat)*(c.Lng-a.Lng)
	}
	d1, d2 := side(r, s, p), side(r, s, q)
	d3, d4 := side(p, q, r), side(p, q, s)
	return (d1 > 0) != (d2 > 0) && (d3 > 0) != (d4 > 0)
}

// areaKm2 is the box's area on a sphere of the Earth's mean radius.
func (b BBox) areaKm2() float64 {
	const r = kmPerDeg * 180 / math.Pi
	rad := math.Pi / 180
	return r * r * (b.East - b.West) * rad * math.Abs(math.Sin(b.North*rad)-math.Sin(b.South*rad))
}

// checkEstimate refuses an area that would hold far more than max cells
// before H3 allocates room for all of them.
func checkEstimate(areaKm2 float64, res, max int) error {
	est := areaKm2 / h3.HexagonAreaAvgKm2(res)
	if est > 1.5*float64(max)+100 {
		return tooManyCells(int(est), res, max, "about ")
	}
	return nil
}

// capCells sorts and de-duplicates cells and fails if more than max remain.
func capCells(cells []h3.Cell, res, max int) ([]h3.Cell, error) {
	slices.Sort(cells)
	cells = slices.Compact(cells)
	if len(cells) > max {
		return nil, tooManyCells(len(cells), res, max, "")
	}
	return cells, nil
}

func tooManyCells(n, res, max int, about string) error {
	msg := fmt.Sprintf("area covers %s%d cells at resolution %d, more than the limit of %d", about, n, res, max)
	if res > 0 {
		msg += fmt.Sprintf("; try resolution %d or coarser", coarserRes(n, res, max))
	}
	return errors.New(msg)
}

// coarserRes suggests the finest resolution at which n cells at res fit in
// max: each step coarser divides the count by about 7.
func coarserRes(n, res, max int) int {
	for res > 0 && n > max {
		res--
		n /= 7
	}
	return res
}
