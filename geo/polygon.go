package geo

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/uber/h3-go/v4"
)

// Polygon is an area with an outer ring and optional holes. Rings are open:
// the closing point of a GeoJSON ring is dropped when parsed.
type Polygon struct {
	Outer []h3.LatLng
	Holes [][]h3.LatLng
}

// MultiPolygon is an area made of one or more polygons, such as a scenic
// site with separate parts. It marshals to a GeoJSON MultiPolygon geometry.
type MultiPolygon []Polygon

// geoJSON is the union of the GeoJSON objects an area may come as.
type geoJSON struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
	Geometry    *geoJSON        `json:"geometry"`
	Features    []geoJSON       `json:"features"`
}

// ParseGeoJSONArea parses a GeoJSON Polygon, MultiPolygon, Feature or
// FeatureCollection of those into one MultiPolygon.
func ParseGeoJSONArea(data []byte) (MultiPolygon, error) {
	var g geoJSON
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("GeoJSON area: %w", err)
	}
	m, err := g.area()
	if err != nil {
		return nil, fmt.Errorf("GeoJSON area: %w", err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("GeoJSON area: no polygons")
	}
	return m, nil
}

func (g *geoJSON) area() (MultiPolygon, error) {
	switch g.Type {
	case "Polygon", "MultiPolygon":
		return parseGeometry(g.Type, g.Coordinates)
	case "Feature":
		if g.Geometry == nil {
			return nil, fmt.Errorf("feature has no geometry")
		}
		return g.Geometry.area()
	case "FeatureCollection":
		var m MultiPolygon
		for i := range g.Features {
			p, err := g.Features[i].area()
			if err != nil {
				return nil, fmt.Errorf("feature %d: %w", i+1, err)
			}
			m = append(m, p...)
		}
		return m, nil
	case "":
		return nil, fmt.Errorf("missing \"type\"")
	}
	return nil, fmt.Errorf("type %q is not a Polygon, MultiPolygon, Feature or FeatureCollection", g.Type)
}

// parseGeometry turns the coordinates of a Polygon or MultiPolygon geometry
// ([lng, lat] positions) into a MultiPolygon, checking every ring.
func parseGeometry(typ string, coords json.RawMessage) (MultiPolygon, error) {
	if len(coords) == 0 {
		return nil, fmt.Errorf("%s has no coordinates", typ)
	}
	var polys [][][][]float64
	if typ == "Polygon" {
		var rings [][][]float64
		if err := json.Unmarshal(coords, &rings); err != nil {
			return nil, fmt.Errorf("Polygon coordinates: %w", err)
		}
		polys = [][][][]float64{rings}
	} else if err := json.Unmarshal(coords, &polys); err != nil {
		return nil, fmt.Errorf("MultiPolygon coordinates: %w", err)
	}
	m := make(MultiPolygon, 0, len(polys))
	for i, rings := range polys {
		if len(rings) == 0 {
			return nil, fmt.Errorf("polygon %d has no rings", i+1)
		}
		var p Polygon
		for j, ring := range rings {
			r, err := parseRing(ring)
			if err != nil {
				return nil, fmt.Errorf("polygon %d ring %d: %w", i+1, j+1, err)
			}
			if j == 0 {
				p.Outer = r
			} else {
				p.Holes = append(p.Holes, r)
			}
		}
		m = append(m, p)
	}
	return m, nil
}

func parseRing(ring [][]float64) ([]h3.LatLng, error) {
	out := make([]h3.LatLng, 0, len(ring))
	for k, pos := range ring {
		if len(pos) < 2 {
			return nil, fmt.Errorf("point %d: want [lng, lat], got %v", k+1, pos)
		}
		if err := checkLatLng(pos[1], pos[0]); err != nil {
			return nil, fmt.Errorf("point %d: %w", k+1, err)
		}
		out = append(out, h3.LatLng{Lat: pos[1], Lng: pos[0]})
	}
	if n := len(out); n > 1 && out[0] == out[n-1] {
		out = out[:n-1]
	}
	if len(out) < 3 {
		return nil, fmt.Errorf("want at least 3 distinct points, got %d", len(out))
	}
	return out, nil
}

// MarshalJSON writes m as a GeoJSON MultiPolygon geometry with closed rings.
func (m MultiPolygon) MarshalJSON() ([]byte, error) {
	return m.appendGeoJSON(nil), nil
}

// UnmarshalJSON reads any GeoJSON area ParseGeoJSONArea accepts.
func (m *MultiPolygon) UnmarshalJSON(data []byte) error {
	a, err := ParseGeoJSONArea(data)
	if err != nil {
		return err
	}
	*m = a
	return nil
}

func (m MultiPolygon) appendGeoJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"MultiPolygon","coordinates":[`...)
	for i, p := range m {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendRing(dst, p.Outer)
		for _, h := range p.Holes {
			dst = append(dst, ',')
			dst = appendRing(dst, h)
		}
		dst = append(dst, ']')
	}
	return append(dst, "]}"...)
}

// Cells returns the sorted res cells whose centres lie in m, or the cell of
// its centroid when m is smaller than a cell. More than max is an error.
func (m MultiPolygon) Cells(res int, max int) ([]h3.Cell, error) {
	if err := checkRes(res); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("area has no polygons")
	}
	if err := checkEstimate(m.areaKm2(), res, max); err != nil {
		return nil, err
	}
	var cells []h3.Cell
	for _, p := range m {
		gp := h3.GeoPolygon{GeoLoop: p.Outer}
		for _, h := range p.Holes {
			gp.Holes = append(gp.Holes, h)
		}
		cells = append(cells, polygonToCells(gp, res)...)
	}
	if len(cells) == 0 {
		cells = append(cells, h3.LatLngToCell(m.Centroid(), res))
	}
	return capCells(cells, res, max)
}

// polygonToCells is h3.PolygonToCells made safe for degenerate polygons:
// when H3 sizes a polygon's cover at zero (a ring with no area) h3-go v4.1.0
// indexes an empty slice and panics before calling C, which would take the
// server down on a caller's query. Such a polygon covers no cell centre.
func polygonToCells(gp h3.GeoPolygon, res int) (cells []h3.Cell) {
	defer func() {
		if recover() != nil {
			cells = nil
		}
	}()
	return h3.PolygonToCells(gp, res)
}

// Centroid returns the area-weighted centre of m (holes subtracted), or the
// mean of its outer vertices when m has no area.
func (m MultiPolygon) Centroid() h3.LatLng {
	var a, cx, cy float64
	for _, p := range m {
		ra, rx, ry := ringMoments(p.Outer)
		a, cx, cy = a+ra, cx+rx, cy+ry
		for _, h := range p.Holes {
			ha, hx, hy := ringMoments(h)
			a, cx, cy = a-ha, cx-hx, cy-hy
		}
	}
	if math.Abs(a) > 1e-18 {
		return h3.LatLng{Lat: cy / a, Lng: cx / a}
	}
	var n float64
	var c h3.LatLng
	for _, p := range m {
		for _, v := range p.Outer {
			c.Lat, c.Lng, n = c.Lat+v.Lat, c.Lng+v.Lng, n+1
		}
	}
	if n > 0 {
		c.Lat, c.Lng = c.Lat/n, c.Lng/n
	}
	return c
}

// ringMoments returns a ring's unsigned planar area in degrees² and its
// first moments, oriented so holes subtract whatever way they wind.
func ringMoments(r []h3.LatLng) (a, mx, my float64) {
	for i := range r {
		p, q := r[i], r[(i+1)%len(r)]
		cross := p.Lng*q.Lat - q.Lng*p.Lat
		a += cross
		mx += (p.Lng + q.Lng) * cross
		my += (p.Lat + q.Lat) * cross
	}
	a /= 2
	mx /= 6
	my /= 6
	if a < 0 {
		return -a, -mx, -my
	}
	return a, mx, my
}

// areaKm2 approximates m's area, projecting each ring at its mean latitude;
// it only sizes cell sets, so a few percent of error is fine.
func (m MultiPolygon) areaKm2() float64 {
	var total float64
	for _, p := range m {
		rings := append([][]h3.LatLng{p.Outer}, p.Holes...)
		for i, r := range rings {
			a, _, my := ringMoments(r)
			lat := 0.0
			if a > 0 {
				lat = my / a
			}
			km2 := a * kmPerDeg * kmPerDeg * math.Cos(lat*math.Pi/180)
			if i > 0 {
				km2 = -km2
			}
			total += km2
		}
	}
	return math.Max(total, 0)
}

// Contains reports whether (lat, lng) lies inside m: inside some polygon's
// outer ring and outside its holes.
func (m MultiPolygon) Contains(lat, lng float64) bool {
	for _, p := range m {
		if !ringContains(p.Outer, lat, lng) {
			continue
		}
		inHole := false
		for _, h := range p.Holes {
			if ringContains(h, lat, lng) {
				inHole = true
				break
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

// ringContains is the even-odd ray casting test in the lat/lng plane.
func ringContains(r []h3.LatLng, lat, lng float64) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, b := r[i], r[j]
		if (a.Lat > lat) != (b.Lat > lat) && lng < (b.Lng-a.Lng)*(lat-a.Lat)/(b.Lat-a.Lat)+a.Lng {
			in = !in
		}
	}
	return in
}

// Bounds returns the smallest box holding every outer ring of m.
func (m MultiPolygon) Bounds() BBox {
	b := BBox{West: math.Inf(1), South: math.Inf(1), East: math.Inf(-1), North: math.Inf(-1)}
	for _, p := range m {
		for _, v := range p.Outer {
			b.West, b.East = math.Min(b.West, v.Lng), math.Max(b.East, v.Lng)
			b.South, b.North = math.Min(b.South, v.Lat), math.Max(b.North, v.Lat)
		}
	}
	return b
}
