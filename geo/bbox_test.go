package geo

import (
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

func TestParseBBox(t *testing.T) {
	tests := []struct {
		in      string
		want    BBox
		wantErr string
	}{
		{"120.1,30.2,120.2,30.3", BBox{120.1, 30.2, 120.2, 30.3}, ""},
		{" -58.5, -34.7 , -58.3,-34.5", BBox{-58.5, -34.7, -58.3, -34.5}, ""},
		{"1,2,3", BBox{}, "want 4"},
		{"a,2,3,4", BBox{}, `west "a"`},
		{"1,2,3,x", BBox{}, `north "x"`},
		{"-181,0,1,1", BBox{}, "longitude -181"},
		{"0,-91,1,1", BBox{}, "latitude -91"},
		{"2,0,1,1", BBox{}, "west 2 must be less than east 1"},
		{"0,1,1,1", BBox{}, "south 1 must be less than north 1"},
		{"0,NaN,1,1", BBox{}, "latitude NaN"},
	}
	for _, tt := range tests {
		got, err := ParseBBox(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBBox(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBBox(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestBBoxContains(t *testing.T) {
	b := BBox{West: 120, South: 30, East: 121, North: 31}
	tests := []struct {
		lat, lng float64
		want     bool
	}{
		{30.5, 120.5, true},
		{30, 120, true},
		{31, 121, true},
		{29.99, 120.5, false},
		{30.5, 121.01, false},
		{30.5, -120.5, false},
	}
	for _, tt := range tests {
		if got := b.Contains(tt.lat, tt.lng); got != tt.want {
			t.Errorf("%v.Contains(%v, %v) = %v, want %v", b, tt.lat, tt.lng, got, tt.want)
		}
	}
}

func TestBBoxCells(t *testing.T) {
	tests := []struct {
		name     string
		b        BBox
		res, max int
		minCells int
		wantErr  string
	}{
		{"west lake res 9", BBox{120.13, 30.23, 120.17, 30.26}, 9, 10000, 50, ""},
		{"thinner than a cell", BBox{120.15, 30.24, 120.15001, 30.24001}, 7, 3, 1, ""},
		{"wide box in slices", BBox{-170, -10, 170, 10}, 1, 10000, 50, ""},
		{"too many", BBox{120, 30, 121, 31}, 9, 1000, 0, "try resolution 6 or coarser"},
		{"far too many checked early", BBox{-180, -90, 180, 90}, 15, 1000, 0, "about "},
		{"bad res", BBox{120, 30, 121, 31}, 16, 1000, 0, "resolution 16"},
		{"inverted", BBox{121, 30, 120, 31}, 5, 1000, 0, "west 121"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := tt.b.Cells(tt.res, tt.max)
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			if len(cells) < tt.minCells || len(cells) > tt.max {
				t.Fatalf("got %d cells, want %d..%d", len(cells), tt.minCells, tt.max)
			}
			seen := map[h3.Cell]bool{}
			for i, c := range cells {
				if !c.IsValid() || c.Resolution() != tt.res {
					t.Fatalf("cell %s invalid or not res %d", c, tt.res)
				}
				if i > 0 && cells[i-1] >= c {
					t.Fatalf("cells not sorted and unique at %d", i)
				}
				seen[c] = true
			}
			// Every point of the box must fall in a returned cell, or a
			// query for the box would miss its events.
			for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
				for _, g := range []float64{0, 0.3, 0.6, 1} {
					lat := tt.b.South + f*(tt.b.North-tt.b.South)
					lng := tt.b.West + g*(tt.b.East-tt.b.West)
					if !seen[h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, tt.res)] {
						t.Errorf("point %v,%v of the box is in no returned cell", lat, lng)
					}
				}
			}
		})
	}
}

func BenchmarkBBoxCells(b *testing.B) {
	box := BBox{120.14, 30.24, 120.16, 30.26} // about 2×2 km
	for b.Loop() {
		if _, err := box.Cells(9, 10000); err != nil {
			b.Fatal(err)
		}
	}
}
