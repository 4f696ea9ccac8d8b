// Command mkbasemap writes the dashboard's embedded offline base layer,
// dashboard/static/basemap/land.geojson, from Natural Earth's land as the
// npm package world-atlas@2.0.2 ships it (TopoJSON, public domain data):
// the whole world at 1:110m, and a region (by default the demo's Hangzhou,
// Hangzhou Bay and the Qiantang estuary) at 1:10m clipped to its box and
// simplified. It is run by hand when the layer should change:
//
//	npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
//	go run ./internal/mkbasemap -world package/land-110m.json -region package/land-10m.json \
//	    -bbox 118,29,122.5,31.5 > dashboard/static/basemap/land.geojson
//
// The world's land is cut around the region's box, so the page draws all
// the land with one fill over a water background.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// topology is the part of a TopoJSON file mkbasemap reads: one geometry
// collection "land" of polygons and multipolygons over quantized arcs.
type topology struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64 `json:"arcs"`
	Objects struct {
		Land struct {
			Geometries []struct {
				Type string          `json:"type"`
				Arcs json.RawMessage `json:"arcs"`
			} `json:"geometries"`
		} `json:"land"`
	} `json:"objects"`
}

type point [2]float64
type ring []point
type polygon []ring // exterior, then holes

func main() {
	world := flag.String("world", "", "world-atlas land-110m.json")
	region := flag.String("region", "", "world-atlas land-10m.json")
	bbox := flag.String("bbox", "118,29,122.5,31.5", "the region's box: west,south,east,north")
	tolerance := flag.Float64("tolerance", 0.002, "the region's simplification, degrees")
	flag.Parse()
	box, err := parseBox(*bbox)
	if err == nil && (*world == "" || *region == "") {
		err = fmt.Errorf("-world and -region are required")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbasemap:", err)
		os.Exit(2)
	}
	wp, err := readLand(*world)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbasemap:", err)
		os.Exit(1)
	}
	rp, err := readLand(*region)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbasemap:", err)
		os.Exit(1)
	}
	regionLand := clipAll(rp, [][4]float64{box}, *tolerance)
	// The world around the region's box: four boxes that leave it out, so
	// that the two never overlap and one fill draws all the land.
	w, so, e, n := box[0], box[1], box[2], box[3]
	worldLand := clipAll(wp, [][4]float64{{-180, -90, w, 90}, {e, -90, 180, 90}, {w, -90, e, so}, {w, n, e, 90}}, 0)
	var b strings.Builder
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	writeFeature(&b, "world", worldLand, 2)
	b.WriteString(",\n")
	writeFeature(&b, "region", regionLand, 4)
	b.WriteString("]}\n")
	os.Stdout.WriteString(b.String())
}

// clipAll clips every polygon to each box and simplifies what is left.
func clipAll(polys []polygon, boxes [][4]float64, tolerance float64) []polygon {
	var out []polygon
	for _, box := range boxes {
		for _, p := range polys {
			if c := clipPolygon(p, box, tolerance); c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func parseBox(s string) ([4]float64, error) {
	var box [4]float64
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return box, fmt.Errorf("-bbox %q: want west,south,east,north", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return box, fmt.Errorf("-bbox %q: %v", s, err)
		}
		box[i] = v
	}
	return box, nil
}

// readLand decodes the land polygons of a TopoJSON file.
func readLand(path string) ([]polygon, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t topology
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	arcs := make([][]point, len(t.Arcs))
	for i, a := range t.Arcs {
		var x, y float64
		for _, d := range a {
			x, y = x+d[0], y+d[1]
			arcs[i] = append(arcs[i], point{x*t.Transform.Scale[0] + t.Transform.Translate[0], y*t.Transform.Scale[1] + t.Transform.Translate[1]})
		}
	}
	var out []polygon
	for _, g := range t.Objects.Land.Geometries {
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			err = json.Unmarshal(g.Arcs, &p)
			polys = [][][]int{p}
		case "MultiPolygon":
			err = json.Unmarshal(g.Arcs, &polys)
		default:
			err = fmt.Errorf("geometry %s, want polygons", g.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, p := range polys {
			var poly polygon
			for _, r := range p {
				poly = append(poly, joinArcs(arcs, r))
			}
			out = append(out, poly)
		}
	}
	return out, nil
}

// joinArcs strings a ring's arcs together; ^i is arc i reversed, and each
// arc after the first starts where the one before ended.
func joinArcs(arcs [][]point, ids []int) ring {
	var r ring
	for _, id := range ids {
		a := arcs[max(id, ^id)]
		if id < 0 {
			rev := make([]point, len(a))
			for i := range a {
				rev[i] = a[len(a)-1-i]
			}
			a = rev
		}
		if len(r) > 0 {
			a = a[1:]
		}
		r = append(r, a...)
	}
	return r
}

// clipPolygon clips p to box and simplifies it; nil when nothing is left.
func clipPolygon(p polygon, box [4]float64, tolerance float64) polygon {
	var out polygon
	for i, r := range p {
		c := simplify(clipRing(r, box), tolerance)
		if len(c) < 4 {
			if i == 0 {
				return nil
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// clipRing clips a closed ring to a box, edge by edge (Sutherland–Hodgman):
// what lies outside follows the box's border, which a fill draws rightly.
func clipRing(r ring, box [4]float64) ring {
	inside := []func(point) bool{
		func(p point) bool { return p[0] >= box[0] },
		func(p point) bool { return p[1] >= box[1] },
		func(p point) bool { return p[0] <= box[2] },
		func(p point) bool { return p[1] <= box[3] },
	}
	cross := []func(a, b point) point{
		func(a, b point) point { return lerpAt(a, b, 0, box[0]) },
		func(a, b point) point { return lerpAt(a, b, 1, box[1]) },
		func(a, b point) point { return lerpAt(a, b, 0, box[2]) },
		func(a, b point) point { return lerpAt(a, b, 1, box[3]) },
	}
	pts := r[:len(r)-1]
	for e := range inside {
		var next []point
		for i, cur := range pts {
			prev := pts[(i+len(pts)-1)%len(pts)]
			switch in, pin := inside[e](cur), inside[e](prev); {
			case in && !pin:
				next = append(next, cross[e](prev, cur), cur)
			case in:
				next = append(next, cur)
			case pin:
				next = append(next, cross[e](prev, cur))
			}
		}
		if pts = next; len(pts) == 0 {
			return nil
		}
	}
	return append(ring(pts), pts[0])
}

// lerpAt is the point of segment ab whose coordinate axis is v.
func lerpAt(a, b point, axis int, v float64) point {
	t := (v - a[axis]) / (b[axis] - a[axis])
	p := point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
	p[axis] = v
	return p
}

// simplify drops the points of a closed ring within tolerance of the line
// between their kept neighbours (Douglas–Peucker).
func simplify(r ring, tolerance float64) ring {
	if len(r) < 4 {
		return r
	}
	keep := make([]bool, len(r))
	keep[0], keep[len(r)-1] = true, true
	var walk func(i, j int)
	walk = func(i, j int) {
		far, at := 0.0, -1
		for k := i + 1; k < j; k++ {
			if d := distToSegment(r[k], r[i], r[j]); d > far {
				far, at = d, k
			}
		}
		if at >= 0 && far > tolerance {
			keep[at] = true
			walk(i, at)
			walk(at, j)
		}
	}
	// A closed ring's ends coincide: split it at its farthest point first.
	mid := 1
	for k := range r {
		if math.Hypot(r[k][0]-r[0][0], r[k][1]-r[0][1]) > math.Hypot(r[mid][0]-r[0][0], r[mid][1]-r[0][1]) {
			mid = k
		}
	}
	keep[mid] = true
	walk(0, mid)
	walk(mid, len(r)-1)
	var out ring
	for k, p := range r {
		if keep[k] {
			out = append(out, p)
		}
	}
	return out
}

func distToSegment(p, a, b point) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	if dx == 0 && dy == 0 {
		return math.Hypot(p[0]-a[0], p[1]-a[1])
	}
	t := math.Max(0, math.Min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/(dx*dx+dy*dy)))
	return math.Hypot(p[0]-a[0]-t*dx, p[1]-a[1]-t*dy)
}

// writeFeature writes one MultiPolygon feature of kind, its coordinates
// rounded to digits decimals.
func writeFeature(b *strings.Builder, kind string, polys []polygon, digits int) {
	fmt.Fprintf(b, `{"type":"Feature","properties":{"kind":%q},"geometry":{"type":"MultiPolygon","coordinates":[`, kind)
	for i, p := range polys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, r := range p {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			for k, pt := range r {
				if k > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(b, "[%s,%s]", strconv.FormatFloat(pt[0], 'f', digits, 64), strconv.FormatFloat(pt[1], 'f', digits, 64))
			}
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	b.WriteString("]}}")
}
