package geo

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/uber/h3-go/v4"
)

// Bounds of one corridor, so that a request cannot ask for millions of
// cells or grid disks.
const (
	MaxCorridorCells  = 200000
	MaxCorridorPoints = 10000
	maxCorridorDisk   = 4000000 // cells visited while widening
)

// Corridor is a path widened into the H3 cells of one resolution and cut
// into segments in the path's order, so that a corridor's load can be read
// section by section.
//
// The path's cells are the H3 grid paths between consecutive vertices'
// cells. Each is widened by Rings grid rings, Rings = round(width/2 ÷ the
// distance between neighbouring cell centres), so that points about half
// the width away from the path fall inside. Every cell belongs to exactly
// one segment, the first that reached it: path cells belong to the segment
// of their first visit (a path crossing itself or passing a cell twice
// counts that cell once, where it first went through it), and a widening
// cell belongs to the nearest path cell in grid distance, the earlier one
// in path order on a tie. Nearest rather than first-in-path-order keeps
// the sections perpendicular to the path instead of leaning backwards.
type Corridor struct {
	Res           int
	Width         float64 // metres, as asked
	Rings         int
	SegmentLength float64 // metres per segment; 0 for one segment per path cell
	Length        float64 // metres along the path
	// Cells holds every cell once, grouped by segment in path order; within
	// a segment its path cells come first.
	Cells    []h3.Cell
	Segments []Segment

	cellSeg []int32 // segment of Cells[i]
	loc     atomic.Pointer[CorridorLocator]
}

// Segment is one consecutive section of a corridor.
type Segment struct {
	Cells     []h3.Cell // a sub-slice of the corridor's Cells
	PathCells int       // how many of Cells the path itself crosses
	From, To  float64   // metres along the path
	Mid       h3.LatLng // the point of the path halfway between From and To
}

// CorridorError is a corridor input that cannot be used: which input
// (path, width, res or segment), its value, and why.
type CorridorError struct {
	Input, Value, Reason string
}

func (e *CorridorError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Input, e.Value, e.Reason)
}

// CellSpacing is the mean distance in metres between neighbouring cell
// centres at res: √3 times the mean edge length.
func CellSpacing(res int) float64 {
	return math.Sqrt(3) * h3.HexagonEdgeLengthAvgM(res)
}

// pathCell is one visit of the path to a cell, at a distance along it.
type pathCell struct {
	cell  h3.Cell
	along float64
}

// NewCorridor builds the corridor of path (at least two points) with a
// width in metres at resolution res, cut into segments of segLen metres, or
// one per path cell when segLen is 0. A segment may hold no cell when
// segLen is close to the cell spacing; it is kept so that segments stay
// evenly spaced.
func NewCorridor(path []h3.LatLng, width float64, res int, segLen float64) (*Corridor, error) {
	spacing, err := checkCorridor(path, width, res, segLen)
	if err != nil {
		return nil, err
	}
	c := &Corridor{Res: res, Width: width, SegmentLength: segLen, Rings: int(math.Round(width / 2 / spacing))}
	visits, err := c.walk(path, spacing)
	if err != nil {
		return nil, err
	}
	// Distinct path cells in order of first visit.
	owner := make(map[h3.Cell]int32, min(len(visits)*(2*c.Rings+1), MaxCorridorCells))
	var firsts []pathCell
	for _, v := range visits {
		if _, seen := owner[v.cell]; !seen {
			owner[v.cell] = int32(len(firsts))
			firsts = append(firsts, v)
		}
	}
	if n := len(firsts) * (3*c.Rings*(c.Rings+1) + 1); n > maxCorridorDisk {
		return nil, &CorridorError{"width", fmtMetres(width), fmt.Sprintf("%d path cells widened by %d rings visit %d cells, more than %d: use a coarser res or a narrower width", len(firsts), c.Rings, n, maxCorridorDisk)}
	}
	pathSeg, bounds := c.cut(firsts)
	claims, err := c.widen(firsts, pathSeg, owner)
	if err != nil {
		return nil, err
	}
	c.group(path, claims, pathSeg, bounds)
	return c, nil
}

// checkCorridor checks a corridor's inputs and returns the distance
// between cell centres at res.
func checkCorridor(path []h3.LatLng, width float64, res int, segLen float64) (float64, error) {
	if err := checkRes(res); err != nil {
		return 0, &CorridorError{"res", strconv.Itoa(res), err.Error()}
	}
	if len(path) < 2 || len(path) > MaxCorridorPoints {
		return 0, &CorridorError{"path", fmt.Sprintf("of %d points", len(path)), fmt.Sprintf("want 2 to %d points", MaxCorridorPoints)}
	}
	for i, p := range path {
		if err := checkLatLng(p.Lat, p.Lng); err != nil {
			return 0, &CorridorError{"path", fmt.Sprintf("point %d [%v,%v]", i, p.Lat, p.Lng), err.Error()}
		}
	}
	spacing := CellSpacing(res)
	if math.IsNaN(width) || width < 0 || width > 100000 {
		return 0, &CorridorError{"width", fmtMetres(width), "want metres from 0 to 100000"}
	}
	if math.IsNaN(segLen) || segLen < 0 || math.IsInf(segLen, 0) || segLen > 0 && segLen < spacing {
		return 0, &CorridorError{"segment", fmtMetres(segLen), fmt.Sprintf("want \"cell\" or at least %.0f m, the distance between cells at res %d", math.Ceil(spacing), res)}
	}
	return spacing, nil
}

// cut returns the segment of each path cell, and the segments' bounds
// along the path: segment i spans bounds[i]..bounds[i+1].
func (c *Corridor) cut(firsts []pathCell) (pathSeg []int32, bounds []float64) {
	pathSeg = make([]int32, len(firsts))
	if c.SegmentLength == 0 {
		bounds = make([]float64, len(firsts)+1)
		for i := range firsts {
			pathSeg[i] = int32(i)
			if i > 0 {
				bounds[i] = (firsts[i-1].along + firsts[i].along) / 2
			}
		}
		bounds[len(firsts)] = c.Length
		return pathSeg, bounds
	}
	n := max(1, int(math.Ceil(c.Length/c.SegmentLength)))
	bounds = make([]float64, n+1)
	for i := range n {
		bounds[i] = float64(i) * c.SegmentLength
	}
	bounds[n] = c.Length
	for i, f := range firsts {
		pathSeg[i] = int32(min(n-1, int(f.along/c.SegmentLength)))
	}
	return pathSeg, bounds
}

// claim is a corridor cell and the segment it belongs to.
type claim struct {
	cell h3.Cell
	seg  int32
}

// widen claims the path cells and then, ring by ring, the cells around
// them, so that a cell goes to its nearest path cell (the earlier on a
// tie). owner holds the path cells and takes the claimed ones.
func (c *Corridor) widen(firsts []pathCell, pathSeg []int32, owner map[h3.Cell]int32) ([]claim, error) {
	claims := make([]claim, 0, len(owner))
	for i, f := range firsts {
		claims = append(claims, claim{f.cell, pathSeg[i]})
	}
	if c.Rings == 0 {
		return claims, nil
	}
	disks := make([][][]h3.Cell, len(firsts))
	for i, f := range firsts {
		disks[i] = h3.GridDiskDistances(f.cell, c.Rings)
	}
	for r := 1; r <= c.Rings; r++ {
		for i := range firsts {
			if r >= len(disks[i]) {
				continue
			}
			for _, cell := range disks[i][r] {
				if cell == 0 {
					continue // a hole next to a pentagon
				}
				if _, taken := owner[cell]; taken {
					continue
				}
				owner[cell] = int32(i)
				claims = append(claims, claim{cell, pathSeg[i]})
			}
		}
		if len(claims) > MaxCorridorCells {
			return nil, &CorridorError{"width", fmtMetres(c.Width), fmt.Sprintf("corridor of more than %d cells at res %d: use a coarser res or a narrower width", MaxCorridorCells, c.Res)}
		}
	}
	return claims, nil
}

// group sets the corridor's cells grouped by segment, keeping path cells
// first and rings in order, and its segments.
func (c *Corridor) group(path []h3.LatLng, claims []claim, pathSeg []int32, bounds []float64) {
	sort.SliceStable(claims, func(i, j int) bool { return claims[i].seg < claims[j].seg })
	c.Cells = make([]h3.Cell, len(claims))
	c.cellSeg = make([]int32, len(claims))
	for i, cl := range claims {
		c.Cells[i], c.cellSeg[i] = cl.cell, cl.seg
	}
	c.Segments = make([]Segment, len(bounds)-1)
	pathCount := make([]int, len(c.Segments))
	for _, s := range pathSeg {
		pathCount[s]++
	}
	lo := 0
	for s := range c.Segments {
		hi := lo
		for hi < len(claims) && claims[hi].seg == int32(s) {
			hi++
		}
		seg := &c.Segments[s]
		seg.Cells = c.Cells[lo:hi:hi]
		seg.PathCells = pathCount[s]
		seg.From, seg.To = bounds[s], bounds[s+1]
		seg.Mid = c.pointAt(path, (seg.From+seg.To)/2)
		lo = hi
	}
}

// walk returns the path's cell visits in order, consecutive repeats
// dropped, each with its distance along the path, and sets c.Length.
func (c *Corridor) walk(path []h3.LatLng, spacing float64) ([]pathCell, error) {
	var visits []pathCell
	add := func(cell h3.Cell, along float64) {
		if n := len(visits); n == 0 || visits[n-1].cell != cell {
			visits = append(visits, pathCell{cell, along})
		}
	}
	a := h3.LatLngToCell(path[0], c.Res)
	for i := 1; i < len(path); i++ {
		b := h3.LatLngToCell(path[i], c.Res)
		edge := h3.GreatCircleDistanceM(path[i-1], path[i])
		if edge/spacing > MaxCorridorCells {
			return nil, &CorridorError{"path", fmt.Sprintf("point %d [%v,%v]", i, path[i].Lat, path[i].Lng), fmt.Sprintf("%.0f m from the previous point: more than %d cells at res %d", edge, MaxCorridorCells, c.Res)}
		}
		cells := gridPath(a, b)
		if cells == nil {
			// No grid path (across a pentagon or icosahedron faces): sample
			// the edge finely enough that no cell is skipped.
			n := int(math.Ceil(edge/(spacing/4))) + 1
			for j := 0; j <= n; j++ {
				t := float64(j) / float64(n)
				p := h3.LatLng{Lat: path[i-1].Lat + t*(path[i].Lat-path[i-1].Lat), Lng: path[i-1].Lng + t*(path[i].Lng-path[i-1].Lng)}
				add(h3.LatLngToCell(p, c.Res), c.Length+t*edge)
			}
		} else {
			for j, cell := range cells {
				t := 0.0
				if len(cells) > 1 {
					t = float64(j) / float64(len(cells)-1)
				}
				add(cell, c.Length+t*edge)
			}
		}
		if len(visits) > MaxCorridorCells {
			return nil, &CorridorError{"path", fmt.Sprintf("of %d points", len(path)), fmt.Sprintf("crosses more than %d cells at res %d: use a coarser res", MaxCorridorCells, c.Res)}
		}
		c.Length += edge
		a = b
	}
	return visits, nil
}

// gridPath returns the H3 grid path from a to b, or nil when H3 has none.
// h3-go v4.1.0 indexes an empty slice when there is none, so the distance
// is asked first.
func gridPath(a, b h3.Cell) []h3.Cell {
	if a == b {
		return []h3.Cell{a}
	}
	if h3.GridDistance(a, b) <= 0 {
		return nil
	}
	cells := h3.GridPath(a, b)
	for _, cell := range cells {
		if cell == 0 {
			return nil
		}
	}
	return cells
}

// pointAt returns the point of path at d metres along it, interpolating
// within an edge.
func (c *Corridor) pointAt(path []h3.LatLng, d float64) h3.LatLng {
	for i := 1; i < len(path); i++ {
		edge := h3.GreatCircleDistanceM(path[i-1], path[i])
		if d <= edge || i == len(path)-1 {
			t := 0.0
			if edge > 0 {
				t = math.Min(1, math.Max(0, d/edge))
			}
			return h3.LatLng{Lat: path[i-1].Lat + t*(path[i].Lat-path[i-1].Lat), Lng: path[i-1].Lng + t*(path[i].Lng-path[i-1].Lng)}
		}
		d -= edge
	}
	return path[0]
}

// SegmentOf returns the segment of c.Cells[i].
func (c *Corridor) SegmentOf(i int) int { return int(c.cellSeg[i]) }

func fmtMetres(m float64) string { return strconv.FormatFloat(m, 'f', -1, 64) + " m" }
