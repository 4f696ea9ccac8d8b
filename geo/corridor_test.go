package geo

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/uber/h3-go/v4"
)

// hangzhouLine is a straight path of about 5.9 km, west to east.
var hangzhouLine = []h3.LatLng{{Lat: 30.25, Lng: 120.10}, {Lat: 30.25, Lng: 120.16}}

// checkPartition fails unless every cell of c is in exactly one segment,
// segments tile c.Cells in order, and each starts with its path cells.
func checkPartition(t *testing.T, c *Corridor) {
	t.Helper()
	seen := map[h3.Cell]bool{}
	at := 0
	for s, seg := range c.Segments {
		for i, cell := range seg.Cells {
			if c.Cells[at] != cell {
				t.Fatalf("segment %d cell %d is %s, corridor cell %d is %s", s, i, cell, at, c.Cells[at])
			}
			if c.SegmentOf(at) != s {
				t.Fatalf("cell %s: SegmentOf %d, listed in %d", cell, c.SegmentOf(at), s)
			}
			if seen[cell] {
				t.Fatalf("cell %s in two segments", cell)
			}
			seen[cell] = true
			at++
		}
		if s > 0 && seg.From != c.Segments[s-1].To {
			t.Fatalf("segment %d starts at %v m, previous ends at %v m", s, seg.From, c.Segments[s-1].To)
		}
	}
	if at != len(c.Cells) {
		t.Fatalf("segments hold %d cells, corridor %d", at, len(c.Cells))
	}
}

func TestCorridorOneSegmentPerPathCell(t *testing.T) {
	c, err := NewCorridor(hangzhouLine, 0, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, c)
	want := h3.GridPath(h3.LatLngToCell(hangzhouLine[0], 9), h3.LatLngToCell(hangzhouLine[1], 9))
	if c.Rings != 0 || !slices.Equal(c.Cells, want) || len(c.Segments) != len(want) {
		t.Fatalf("rings %d, cells %v, %d segments; want the %d grid-path cells %v", c.Rings, c.Cells, len(c.Segments), len(want), want)
	}
	if math.Abs(c.Length-h3.GreatCircleDistanceM(hangzhouLine[0], hangzhouLine[1])) > 1e-6 {
		t.Fatalf("length %v", c.Length)
	}
	last := c.Segments[len(c.Segments)-1]
	if c.Segments[0].From != 0 || last.To != c.Length {
		t.Fatalf("segments span %v..%v m, want 0..%v", c.Segments[0].From, last.To, c.Length)
	}
	for s, seg := range c.Segments {
		if seg.PathCells != 1 || len(seg.Cells) != 1 {
			t.Fatalf("segment %d: %d path cells of %d", s, seg.PathCells, len(seg.Cells))
		}
	}
}

func TestCorridorWidenedToNearestPathCell(t *testing.T) {
	for _, tc := range []struct {
		res   int
		width float64
		rings int
	}{
		{9, 500, 1},
		{9, 1300, 2},
		{10, 500, 2},
		{8, 300, 0},
	} {
		c, err := NewCorridor(hangzhouLine, tc.width, tc.res, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.Rings != tc.rings {
			t.Fatalf("res %d width %v: %d rings, want %d", tc.res, tc.width, c.Rings, tc.rings)
		}
		checkPartition(t, c)
		var path []h3.Cell
		for _, seg := range c.Segments {
			path = append(path, seg.Cells[0])
		}
		want := map[h3.Cell]bool{}
		for _, p := range path {
			for _, d := range h3.GridDisk(p, tc.rings) {
				want[d] = true
			}
		}
		if len(want) != len(c.Cells) {
			t.Fatalf("res %d width %v: %d cells, want the %d of the path's disks", tc.res, tc.width, len(c.Cells), len(want))
		}
		for i, cell := range c.Cells {
			if !want[cell] {
				t.Fatalf("cell %s is outside every disk", cell)
			}
			// Nearest path cell, the earliest on a tie.
			best, bestD := -1, math.MaxInt
			for s, p := range path {
				if d := h3.GridDistance(p, cell); d < bestD {
					best, bestD = s, d
				}
			}
			if c.SegmentOf(i) != best {
				t.Fatalf("res %d: cell %s in segment %d, nearest path cell is segment %d", tc.res, cell, c.SegmentOf(i), best)
			}
		}
	}
}

func TestCorridorCrossingItselfCountsCellsOnce(t *testing.T) {
	// Out east, back west along the same street, then north: the way back
	// passes the outbound cells again.
	loop := []h3.LatLng{{Lat: 30.25, Lng: 120.10}, {Lat: 30.25, Lng: 120.13}, {Lat: 30.25, Lng: 120.115}, {Lat: 30.27, Lng: 120.115}}
	c, err := NewCorridor(loop, 0, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, c)
	out := h3.GridPath(h3.LatLngToCell(loop[0], 9), h3.LatLngToCell(loop[1], 9))
	for i, cell := range out {
		if c.Cells[i] != cell || c.SegmentOf(i) != i {
			t.Fatalf("outbound cell %d %s: corridor has %s in segment %d", i, cell, c.Cells[i], c.SegmentOf(i))
		}
	}
	north := h3.GridPath(h3.LatLngToCell(loop[2], 9), h3.LatLngToCell(loop[3], 9))
	for _, cell := range north[1:] {
		if slices.Contains(out, cell) {
			continue
		}
		if !slices.Contains(c.Cells[len(out):], cell) {
			t.Fatalf("northbound cell %s missing after the outbound cells", cell)
		}
	}
	// Fixed-length segments: the way back adds length but no cells.
	c2, err := NewCorridor(loop, 0, 9, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, c2)
	if len(c2.Cells) != len(c.Cells) {
		t.Fatalf("%d cells with 1 km segments, %d with cell segments", len(c2.Cells), len(c.Cells))
	}
	if n := int(math.Ceil(c2.Length / 1000)); len(c2.Segments) != n {
		t.Fatalf("%d segments over %v m, want %d", len(c2.Segments), c2.Length, n)
	}
	// Segment 3 starts at 3 km, on the way back over outbound cells, and the
	// way north starts at 4.3 km: segment 3 holds nothing.
	if len(c2.Segments[3].Cells) != 0 {
		t.Fatalf("segment 3 (on the way back) holds %v", c2.Segments[3].Cells)
	}
}

func TestCorridorFixedLengthSegments(t *testing.T) {
	c, err := NewCorridor(hangzhouLine, 500, 9, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, c)
	if len(c.Segments) != 6 {
		t.Fatalf("%d segments over %v m, want 6", len(c.Segments), c.Length)
	}
	for s, seg := range c.Segments {
		if seg.From != float64(s)*1000 {
			t.Fatalf("segment %d from %v m", s, seg.From)
		}
		if seg.PathCells == 0 {
			t.Fatalf("segment %d has no path cell", s)
		}
		// The path cells of a kilometre lie about within it.
		for _, cell := range seg.Cells[:seg.PathCells] {
			along := h3.GreatCircleDistanceM(hangzhouLine[0], cell.LatLng())
			if along < seg.From-CellSpacing(9) || along > seg.To+CellSpacing(9) {
				t.Fatalf("segment %d (%v..%v m) holds path cell %s at %v m", s, seg.From, seg.To, cell, along)
			}
		}
		wantMid := (seg.From + seg.To) / 2
		if d := h3.GreatCircleDistanceM(hangzhouLine[0], seg.Mid); math.Abs(d-wantMid) > 1 {
			t.Fatalf("segment %d midpoint at %v m, want %v", s, d, wantMid)
		}
	}
}

func TestCorridorLocator(t *testing.T) {
	c, err := NewCorridor(hangzhouLine, 500, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Locator(10)
	if err != nil {
		t.Fatal(err)
	}
	for i, cell := range c.Cells {
		for _, child := range cell.Children(10) {
			if ci, s := l.Find(uint64(child)); ci != i || s != c.SegmentOf(i) {
				t.Fatalf("child %s of corridor cell %d: found cell %d segment %d", child, i, ci, s)
			}
		}
	}
	outside := h3.LatLngToCell(h3.LatLng{Lat: 30.30, Lng: 120.13}, 10)
	if ci, s := l.Find(uint64(outside)); ci != -1 || s != -1 {
		t.Fatalf("cell outside found in %d, %d", ci, s)
	}
	again, _ := c.Locator(10)
	if again != l {
		t.Fatalf("locator rebuilt")
	}
	if _, err := c.Locator(7); err == nil {
		t.Fatalf("locator at a base resolution coarser than the corridor")
	}
}

func TestCorridorErrorsNameTheInput(t *testing.T) {
	for _, tc := range []struct {
		path   []h3.LatLng
		width  float64
		res    int
		segLen float64
		input  string
	}{
		{hangzhouLine[:1], 100, 9, 0, "path"},
		{[]h3.LatLng{{Lat: 30, Lng: 120}, {Lat: 95, Lng: 120}}, 100, 9, 0, "path"},
		{hangzhouLine, -1, 9, 0, "width"},
		{hangzhouLine, math.NaN(), 9, 0, "width"},
		{hangzhouLine, 100, 16, 0, "res"},
		{hangzhouLine, 100, 9, 100, "segment"},
		{hangzhouLine, 100000, 12, 0, "width"},
		{[]h3.LatLng{{Lat: 30, Lng: 120}, {Lat: 31, Lng: 125}}, 0, 15, 0, "path"},
	} {
		_, err := NewCorridor(tc.path, tc.width, tc.res, tc.segLen)
		var ce *CorridorError
		if !errors.As(err, &ce) || ce.Input != tc.input {
			t.Errorf("width %v res %d segment %v: error %v, want one naming %s", tc.width, tc.res, tc.segLen, err, tc.input)
		}
	}
}

func TestParsePath(t *testing.T) {
	want := []h3.LatLng{{Lat: 30.25, Lng: 120.1}, {Lat: 30.26, Lng: 120.2}}
	for _, in := range []string{
		`[[30.25,120.1],[30.26,120.2]]`,
		`{"type":"LineString","coordinates":[[120.1,30.25],[120.2,30.26]]}`,
		`{"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[120.1,30.25,4],[120.2,30.26,5]]}}`,
	} {
		got, err := ParsePath([]byte(in))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{`[[30.25]]`, `[[130,10],[0,0]]`, `{"type":"Polygon","coordinates":[]}`, `"x"`, `{"type":"Feature"}`} {
		if _, err := ParsePath([]byte(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestCorridorCacheKeepsRecent(t *testing.T) {
	cc := NewCorridorCache(2)
	a, err := cc.Get(hangzhouLine, 500, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cc.Get(hangzhouLine, 500, 9, 0); again != a {
		t.Fatalf("same corridor built twice")
	}
	b, _ := cc.Get(hangzhouLine, 500, 9, 1000)
	if b == a {
		t.Fatalf("segment length not part of the key")
	}
	cc.Get(hangzhouLine, 500, 9, 0) // a is now the most recent
	cc.Get(hangzhouLine, 0, 9, 0)   // evicts b
	if cc.Len() != 2 {
		t.Fatalf("cache holds %d", cc.Len())
	}
	if again, _ := cc.Get(hangzhouLine, 500, 9, 0); again != a {
		t.Fatalf("most recent corridor evicted")
	}
	if again, _ := cc.Get(hangzhouLine, 500, 9, 1000); again == b {
		t.Fatalf("least recent corridor kept")
	}
	if _, err := cc.Get(hangzhouLine, -5, 9, 0); err == nil || cc.Len() != 2 {
		t.Fatalf("bad corridor: %v, cache holds %d", err, cc.Len())
	}
}

// path50km runs about 50 km across Hangzhou, south-west to north-east, with
// a bend.
var path50km = []h3.LatLng{{Lat: 30.10, Lng: 120.00}, {Lat: 30.25, Lng: 120.18}, {Lat: 30.35, Lng: 120.40}}

func BenchmarkNewCorridor50km(b *testing.B) {
	for b.Loop() {
		if _, err := NewCorridor(path50km, 500, 9, 0); err != nil {
			b.Fatal(err)
		}
	}
}
