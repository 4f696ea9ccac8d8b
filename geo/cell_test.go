package geo

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

func TestCellOf(t *testing.T) {
	tests := []struct {
		name     string
		lat, lng float64
		res      int
		wantErr  string
	}{
		{"west lake", 30.2431, 120.1500, 9, ""},
		{"north pole", 90, 0, 5, ""},
		{"antimeridian", 0, -180, 0, ""},
		{"lat too big", 90.5, 0, 9, "latitude 90.5"},
		{"lng too small", 0, -180.1, 9, "longitude -180.1"},
		{"lat NaN", math.NaN(), 0, 9, "latitude NaN"},
		{"lng inf", 0, math.Inf(1), 9, "longitude +Inf"},
		{"res too fine", 0, 0, 16, "resolution 16"},
		{"res negative", 0, 0, -1, "resolution -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CellOf(tt.lat, tt.lng, tt.res)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CellOf(%v, %v, %d) error = %v, want it to mention %q", tt.lat, tt.lng, tt.res, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.IsValid() || c.Resolution() != tt.res {
				t.Fatalf("CellOf gave %s (res %d), want a valid res %d cell", c, c.Resolution(), tt.res)
			}
			want := h3.LatLngToCell(h3.LatLng{Lat: tt.lat, Lng: tt.lng}, tt.res)
			if c != want {
				t.Fatalf("CellOf = %s, want %s", c, want)
			}
		})
	}
}

// testCells are parents of varied kinds: hexagons at several resolutions,
// a base cell and pentagons, whose children skip a digit.
func testCells() []h3.Cell {
	hz := h3.LatLngToCell(h3.LatLng{Lat: 30.2431, Lng: 120.15}, 5)
	return []h3.Cell{
		hz,
		hz.Parent(0),
		h3.LatLngToCell(h3.LatLng{Lat: -37.81, Lng: 144.96}, 12),
		h3.Pentagons(2)[0],
		h3.Pentagons(0)[5],
		h3.LatLngToCell(h3.LatLng{Lat: -34.6, Lng: -58.38}, 14),
	}
}

func TestChildRange(t *testing.T) {
	for _, c := range testCells() {
		for _, dr := range []int{0, 1, 2, 3} {
			res := c.Resolution() + dr
			if res > MaxRes {
				continue
			}
			r := ChildRange(c, res)
			children := c.Children(res)
			for _, ch := range children {
				if !r.Contains(uint64(ch)) {
					t.Fatalf("child %s of %s at res %d outside %x..%x", ch, c, res, r.Lo, r.Hi)
				}
			}
			lo, hi := slices.Min(children), slices.Max(children)
			if r.Lo != uint64(lo) || r.Hi != uint64(hi) {
				t.Errorf("ChildRange(%s, %d) = %x..%x, want the tightest %x..%x", c, res, r.Lo, r.Hi, uint64(lo), uint64(hi))
			}
		}
	}
}

func TestChildRangeDisjoint(t *testing.T) {
	for _, c := range testCells() {
		res := min(c.Resolution()+2, MaxRes)
		// Neighbours and siblings: cells of one resolution whose ranges must
		// never share an id, or a scan for one would return the other's rows.
		parents := c.GridDisk(1)
		if c.Resolution() > 0 {
			parents = append(parents, c.Parent(c.Resolution()-1).Children(c.Resolution())...)
		}
		slices.Sort(parents)
		parents = slices.Compact(parents)
		for i, a := range parents {
			ra := ChildRange(a, res)
			for _, b := range parents[i+1:] {
				rb := ChildRange(b, res)
				if ra.Lo <= rb.Hi && rb.Lo <= ra.Hi {
					t.Fatalf("ranges of %s (%x..%x) and %s (%x..%x) overlap", a, ra.Lo, ra.Hi, b, rb.Lo, rb.Hi)
				}
			}
		}
	}
}

func TestChildRangePanicsOnCoarserRes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("ChildRange to a coarser resolution did not panic")
		}
	}()
	c := testCells()[0]
	ChildRange(c, c.Resolution()-1)
}

func TestRanges(t *testing.T) {
	hz := testCells()[0] // res 5
	pent := h3.Pentagons(2)[0]
	far := h3.LatLngToCell(h3.LatLng{Lat: -37.81, Lng: 144.96}, 6)
	tests := []struct {
		name    string
		cells   []h3.Cell
		base    int
		want    []vocab.CellRange
		wantErr string
	}{
		{"one cell", []h3.Cell{hz}, 7, []vocab.CellRange{ChildRange(hz, 7)}, ""},
		{"all children join", hz.Children(6), 8, []vocab.CellRange{ChildRange(hz, 8)}, ""},
		{"pentagon children join", pent.Children(3), 5, []vocab.CellRange{ChildRange(pent, 5)}, ""},
		{"child inside parent", []h3.Cell{hz.Children(7)[3], hz}, 8, []vocab.CellRange{ChildRange(hz, 8)}, ""},
		{"far apart sorted", []h3.Cell{hz, far}, 8, sortedRanges(ChildRange(hz, 8), ChildRange(far, 8)), ""},
		{"two non-adjacent children", []h3.Cell{hz.Children(6)[1], hz.Children(6)[4]}, 6,
			[]vocab.CellRange{ChildRange(hz.Children(6)[1], 6), ChildRange(hz.Children(6)[4], 6)}, ""},
		{"empty", nil, 9, []vocab.CellRange{}, ""},
		{"finer than base", []h3.Cell{far}, 5, nil, "finer than the base resolution 5"},
		{"bad base", []h3.Cell{far}, 16, nil, "resolution 16"},
		{"invalid cell", []h3.Cell{hz, 0}, 9, nil, "cell 0 is not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Ranges(tt.cells, tt.base)
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Ranges = %x, want %x", got, tt.want)
			}
		})
	}
}

func sortedRanges(rs ...vocab.CellRange) []vocab.CellRange {
	slices.SortFunc(rs, func(a, b vocab.CellRange) int {
		if a.Lo < b.Lo {
			return -1
		}
		return 1
	})
	return rs
}

func TestParseCells(t *testing.T) {
	tests := []struct {
		in      string
		want    []h3.Cell
		wantErr string
	}{
		{"8928308280fffff", []h3.Cell{0x8928308280fffff}, ""},
		{"8928308280fffff, 0x85283473fffffff", []h3.Cell{0x8928308280fffff, 0x85283473fffffff}, ""},
		{"", nil, "no cells"},
		{"8928308280fffff,zz", nil, `cell 2 "zz"`},
		{"8928308280fffff,", nil, `cell 2 ""`},
		{"ffffffffffffffff", nil, `"ffffffffffffffff"`},
	}
	for _, tt := range tests {
		got, err := ParseCells(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCells(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseCells(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func BenchmarkCellOf(b *testing.B) {
	for i := 0; b.Loop(); i++ {
		if _, err := CellOf(30.2431+float64(i%100)*1e-4, 120.15, 9); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChildRange(b *testing.B) {
	c := testCells()[0]
	var sink uint64
	for b.Loop() {
		sink += ChildRange(c, 9).Hi
	}
	_ = sink
}

func BenchmarkRanges(b *testing.B) {
	cells := testCells()[0].Children(7)
	for b.Loop() {
		if _, err := Ranges(cells, 9); err != nil {
			b.Fatal(err)
		}
	}
}

// succeeds checks err against a case's wantErr, a part of the error
// expected ("" for none), and reports whether the case expects a result
// to check further.
func succeeds(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want %q", err, wantErr)
		}
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestParentMatchesH3 compares Parent, read from the bits, with h3-go's
// Parent for cells of every resolution at several places, a pentagon's
// among them.
func TestParentMatchesH3(t *testing.T) {
	places := []h3.LatLng{{Lat: 30.25, Lng: 120.16}, {Lat: -33.9, Lng: 151.2}, {Lat: 64.7, Lng: 10.5}}
	pent := h3.Pentagons(9)[0]
	for _, ll := range places {
		for res := 0; res <= MaxRes; res++ {
			c := h3.LatLngToCell(ll, res)
			for pr := 0; pr <= res; pr++ {
				want := c.Parent(pr)
				if got := Parent(uint64(c), pr); got != uint64(want) {
					t.Fatalf("Parent(%v, %d) = %x, want %x", c, pr, got, uint64(want))
				}
			}
		}
	}
	want := pent.Parent(5)
	if got := Parent(uint64(pent), 5); got != uint64(want) {
		t.Errorf("pentagon's res 5 parent %x, want %x", got, uint64(want))
	}
}
