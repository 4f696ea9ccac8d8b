package geo

import (
	"container/list"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/flowd/flowd/vocab"
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
	if err := checkRes(res); err != nil {
		return nil, &CorridorError{"res", strconv.Itoa(res), err.Error()}
	}
	if len(path) < 2 || len(path) > MaxCorridorPoints {
		return nil, &CorridorError{"path", fmt.Sprintf("of %d points", len(path)), fmt.Sprintf("want 2 to %d points", MaxCorridorPoints)}
	}
	for i, p := range path {
		if err := checkLatLng(p.Lat, p.Lng); err != nil {
			return nil, &CorridorError{"path", fmt.Sprintf("point %d [%v,%v]", i, p.Lat, p.Lng), err.Error()}
		}
	}
	spacing := CellSpacing(res)
	if math.IsNaN(width) || width < 0 || width > 100000 {
		return nil, &CorridorError{"width", fmtMetres(width), "want metres from 0 to 100000"}
	}
	if math.IsNaN(segLen) || segLen < 0 || math.IsInf(segLen, 0) || segLen > 0 && segLen < spacing {
		return nil, &CorridorError{"segment", fmtMetres(segLen), fmt.Sprintf("want \"cell\" or at least %.0f m, the distance between cells at res %d", math.Ceil(spacing), res)}
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

	// Segments of the path cells.
	pathSeg := make([]int32, len(firsts))
	var bounds []float64 // segment i spans bounds[i]..bounds[i+1]
	if segLen == 0 {
		bounds = make([]float64, len(firsts)+1)
		for i := range firsts {
			pathSeg[i] = int32(i)
			if i > 0 {
				bounds[i] = (firsts[i-1].along + firsts[i].along) / 2
			}
		}
		bounds[len(firsts)] = c.Length
	} else {
		n := max(1, int(math.Ceil(c.Length/segLen)))
		bounds = make([]float64, n+1)
		for i := range n {
			bounds[i] = float64(i) * segLen
		}
		bounds[n] = c.Length
		for i, f := range firsts {
			pathSeg[i] = int32(min(n-1, int(f.along/segLen)))
		}
	}

	// Widen ring by ring so that a cell goes to its nearest path cell.
	type claim struct {
		cell h3.Cell
		seg  int32
	}
	claims := make([]claim, 0, len(owner))
	for i, f := range firsts {
		claims = append(claims, claim{f.cell, pathSeg[i]})
	}
	if c.Rings > 0 {
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
				return nil, &CorridorError{"width", fmtMetres(width), fmt.Sprintf("corridor of more than %d cells at res %d: use a coarser res or a narrower width", MaxCorridorCells, res)}
			}
		}
	}

	// Group by segment, keeping path cells first and rings in order.
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
	return c, nil
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

// CorridorLocator finds which corridor cell, and so which segment, a cell
// of a finer base resolution lies in, by binary search over the corridor
// cells' child ranges: no H3 call per stored bucket.
type CorridorLocator struct {
	BaseRes int
	// Ranges are the merged base-resolution ranges of the whole corridor,
	// for one scan.
	Ranges []vocab.CellRange
	child  []vocab.CellRange // child range of each corridor cell, sorted
	cell   []int32           // index in Corridor.Cells of child[i]
	seg    []int32           // segment of child[i]
}

// Locator returns the corridor's locator for base-resolution cells,
// building it on first use. baseRes must not be coarser than c.Res.
func (c *Corridor) Locator(baseRes int) (*CorridorLocator, error) {
	if l := c.loc.Load(); l != nil && l.BaseRes == baseRes {
		return l, nil
	}
	if baseRes < c.Res || baseRes > MaxRes {
		return nil, &CorridorError{"res", strconv.Itoa(c.Res), fmt.Sprintf("corridor cells must not be finer than the base resolution %d", baseRes)}
	}
	l := &CorridorLocator{BaseRes: baseRes, child: make([]vocab.CellRange, len(c.Cells)), cell: make([]int32, len(c.Cells)), seg: make([]int32, len(c.Cells))}
	order := make([]int32, len(c.Cells))
	for i, cell := range c.Cells {
		l.child[i] = ChildRange(cell, baseRes)
		order[i] = int32(i)
	}
	sort.Slice(order, func(i, j int) bool { return l.child[order[i]].Lo < l.child[order[j]].Lo })
	sorted := make([]vocab.CellRange, len(order))
	for i, o := range order {
		sorted[i] = l.child[o]
		l.cell[i] = o
		l.seg[i] = c.cellSeg[o]
	}
	l.child = sorted
	var err error
	if l.Ranges, err = Ranges(c.Cells, baseRes); err != nil {
		return nil, err
	}
	c.loc.Store(l)
	return l, nil
}

// Find returns the index in the corridor's Cells of the cell holding the
// base-resolution id base, and its segment, or -1, -1 outside the corridor.
func (l *CorridorLocator) Find(base uint64) (cell, seg int) {
	i := sort.Search(len(l.child), func(i int) bool { return l.child[i].Lo > base }) - 1
	if i < 0 || base > l.child[i].Hi {
		return -1, -1
	}
	return int(l.cell[i]), int(l.seg[i])
}

func fmtMetres(m float64) string { return strconv.FormatFloat(m, 'f', -1, 64) + " m" }

// ParsePath parses a path given as [[lat,lng],...], or as a GeoJSON
// LineString geometry or Feature (whose coordinates are [lng,lat]).
func ParsePath(data []byte) ([]h3.LatLng, error) {
	var pairs [][]float64
	if err := json.Unmarshal(data, &pairs); err == nil {
		return pathPoints(pairs, false)
	}
	var g struct {
		Type        string          `json:"type"`
		Coordinates [][]float64     `json:"coordinates"`
		Geometry    json.RawMessage `json:"geometry"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("want [[lat,lng],...] or a GeoJSON LineString: %v", err)
	}
	switch g.Type {
	case "LineString":
		return pathPoints(g.Coordinates, true)
	case "Feature":
		if len(g.Geometry) == 0 {
			return nil, fmt.Errorf("GeoJSON Feature has no geometry")
		}
		return ParsePath(g.Geometry)
	}
	return nil, fmt.Errorf("GeoJSON type %q: want a LineString or a Feature holding one", g.Type)
}

func pathPoints(pairs [][]float64, lngFirst bool) ([]h3.LatLng, error) {
	pts := make([]h3.LatLng, len(pairs))
	for i, p := range pairs {
		if len(p) < 2 || len(p) > 3 {
			return nil, fmt.Errorf("point %d has %d numbers, want 2", i, len(p))
		}
		lat, lng := p[0], p[1]
		if lngFirst {
			lat, lng = p[1], p[0]
		}
		if err := checkLatLng(lat, lng); err != nil {
			return nil, fmt.Errorf("point %d: %v", i, err)
		}
		pts[i] = h3.LatLng{Lat: lat, Lng: lng}
	}
	return pts, nil
}

// CorridorCache keeps recently built corridors, least recently used out
// first: building one costs an H3 call per cell, and route planners ask
// about the same candidate paths again and again.
type CorridorCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *corridorEntry, most recent first
	byKey map[string]*list.Element
}

type corridorEntry struct {
	key string
	c   *Corridor
}

// NewCorridorCache returns a cache of at most n corridors.
func NewCorridorCache(n int) *CorridorCache {
	return &CorridorCache{max: max(n, 1), order: list.New(), byKey: map[string]*list.Element{}}
}

// Get returns the corridor of (path, width, res, segLen), building and
// keeping it when absent. Failed builds are not kept.
func (cc *CorridorCache) Get(path []h3.LatLng, width float64, res int, segLen float64) (*Corridor, error) {
	key := make([]byte, 0, 8*(2*len(path)+3))
	for _, v := range [...]float64{width, float64(res), segLen} {
		key = strconv.AppendUint(key, math.Float64bits(v), 36)
		key = append(key, ',')
	}
	for _, p := range path {
		key = strconv.AppendUint(key, math.Float64bits(p.Lat), 36)
		key = append(key, ' ')
		key = strconv.AppendUint(key, math.Float64bits(p.Lng), 36)
		key = append(key, ',')
	}
	cc.mu.Lock()
	if e, ok := cc.byKey[string(key)]; ok {
		cc.order.MoveToFront(e)
		c := e.Value.(*corridorEntry).c
		cc.mu.Unlock()
		return c, nil
	}
	cc.mu.Unlock()
	c, err := NewCorridor(path, width, res, segLen)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.byKey[string(key)]; ok {
		return e.Value.(*corridorEntry).c, nil
	}
	cc.byKey[string(key)] = cc.order.PushFront(&corridorEntry{string(key), c})
	for cc.order.Len() > cc.max {
		e := cc.order.Back()
		cc.order.Remove(e)
		delete(cc.byKey, e.Value.(*corridorEntry).key)
	}
	return c, nil
}

// Len returns how many corridors the cache holds.
func (cc *CorridorCache) Len() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.order.Len()
}
