package geo

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/uber/h3-go/v4"
)

// square is a closed GeoJSON ring [lng, lat] of a square of side d at (lng, lat).
func square(lng, lat, d float64) string {
	b, _ := json.Marshal([][]float64{{lng, lat}, {lng + d, lat}, {lng + d, lat + d}, {lng, lat + d}, {lng, lat}})
	return string(b)
}

func TestParseGeoJSONArea(t *testing.T) {
	poly := `{"type":"Polygon","coordinates":[` + square(120, 30, 1) + `,` + square(120.4, 30.4, 0.2) + `]}`
	multi := `{"type":"MultiPolygon","coordinates":[[` + square(120, 30, 1) + `],[` + square(10, 50, 1) + `]]}`
	tests := []struct {
		name      string
		in        string
		polys     int
		holes     int
		wantErr   string
		wantOuter int
	}{
		{"polygon with hole", poly, 1, 1, "", 4},
		{"multipolygon", multi, 2, 0, "", 4},
		{"feature", `{"type":"Feature","properties":{},"geometry":` + poly + `}`, 1, 1, "", 4},
		{"collection", `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":` + poly + `},{"type":"Feature","geometry":` + multi + `}]}`, 3, 1, "", 4},
		{"open ring", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1]]]}`, 1, 0, "", 3},
		{"point", `{"type":"Point","coordinates":[1,2]}`, 0, 0, `type "Point"`, 0},
		{"no type", `{"coordinates":[]}`, 0, 0, `missing "type"`, 0},
		{"lat out of range", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,95],[0,0]]]}`, 0, 0, "polygon 1 ring 1: point 3: latitude 95", 0},
		{"too few points", `{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}`, 0, 0, "at least 3", 0},
		{"short position", `{"type":"Polygon","coordinates":[[[0,0],[1],[1,1],[0,0]]]}`, 0, 0, "point 2", 0},
		{"feature without geometry", `{"type":"FeatureCollection","features":[{"type":"Feature"}]}`, 0, 0, "feature 1: feature has no geometry", 0},
		{"empty collection", `{"type":"FeatureCollection","features":[]}`, 0, 0, "no polygons", 0},
		{"not json", `{"type":`, 0, 0, "GeoJSON area", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseGeoJSONArea([]byte(tt.in))
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			holes := 0
			for _, p := range m {
				holes += len(p.Holes)
			}
			if len(m) != tt.polys || holes != tt.holes || len(m[0].Outer) != tt.wantOuter {
				t.Fatalf("got %d polygons, %d holes, %d outer points; want %d, %d, %d", len(m), holes, len(m[0].Outer), tt.polys, tt.holes, tt.wantOuter)
			}
			if m[0].Outer[0] != (h3.LatLng{Lat: 30, Lng: 120}) && tt.wantOuter == 4 {
				t.Fatalf("first point %v, want lat 30 lng 120 from [lng, lat]", m[0].Outer[0])
			}
		})
	}
}

func mustArea(t testing.TB, s string) MultiPolygon {
	t.Helper()
	m, err := ParseGeoJSONArea([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMultiPolygonGeometry(t *testing.T) {
	// A 1°×1° square with a 0.2° hole, and a second square far away.
	m := mustArea(t, `{"type":"MultiPolygon","coordinates":[[`+square(120, 30, 1)+`,`+square(120.4, 30.4, 0.2)+`],[`+square(10, 50, 1)+`]]}`)
	contains := []struct {
		lat, lng float64
		want     bool
	}{
		{30.1, 120.1, true},
		{30.5, 120.5, false}, // in the hole
		{30.7, 120.7, true},
		{50.5, 10.5, true},
		{29.9, 120.5, false},
		{40, 60, false},
	}
	for _, tt := range contains {
		if got := m.Contains(tt.lat, tt.lng); got != tt.want {
			t.Errorf("Contains(%v, %v) = %v, want %v", tt.lat, tt.lng, got, tt.want)
		}
	}
	if b, want := m.Bounds(), (BBox{West: 10, South: 30, East: 121, North: 51}); b != want {
		t.Errorf("Bounds = %v, want %v", b, want)
	}
	one := m[:1]
	// Square area 1, hole 0.04 centred on the square: centroid stays (30.5, 120.5).
	if c := one.Centroid(); math.Abs(c.Lat-30.5) > 1e-9 || math.Abs(c.Lng-120.5) > 1e-9 {
		t.Errorf("Centroid = %v, want 30.5,120.5", c)
	}
	// An off-centre hole pulls the centroid away from it.
	off := mustArea(t, `{"type":"Polygon","coordinates":[`+square(0, 0, 2)+`,`+square(1, 1, 1)+`]}`)
	if c := off.Centroid(); !(c.Lat < 1 && c.Lng < 1) {
		t.Errorf("Centroid with hole in the NE quarter = %v, want south-west of 1,1", c)
	}
}

func TestMultiPolygonCells(t *testing.T) {
	lake := mustArea(t, `{"type":"Polygon","coordinates":[`+square(120.13, 30.23, 0.03)+`]}`)
	tiny := mustArea(t, `{"type":"Polygon","coordinates":[`+square(120.15, 30.24, 0.00001)+`]}`)
	holed := mustArea(t, `{"type":"Polygon","coordinates":[`+square(120.1, 30.2, 0.1)+`,`+square(120.13, 30.23, 0.04)+`]}`)
	tests := []struct {
		name     string
		m        MultiPolygon
		res, max int
		min      int
		wantErr  string
	}{
		{"square res 9", lake, 9, 5000, 50, ""},
		{"tiny gives centroid cell", tiny, 9, 10, 1, ""},
		{"too many", lake, 12, 100, 0, "try resolution"},
		{"bad res", lake, -1, 100, 0, "resolution -1"},
		{"empty", MultiPolygon{}, 9, 100, 0, "no polygons"},
		{"hole", holed, 8, 5000, 10, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := tt.m.Cells(tt.res, tt.max)
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			if len(cells) < tt.min {
				t.Fatalf("got %d cells, want at least %d", len(cells), tt.min)
			}
			for _, c := range cells {
				ll := c.LatLng()
				if len(cells) > 1 && !tt.m.Contains(ll.Lat, ll.Lng) {
					t.Errorf("cell %s centred at %v outside the area", c, ll)
				}
			}
		})
	}
}

func TestMultiPolygonJSONRoundTrip(t *testing.T) {
	m := mustArea(t, `{"type":"Polygon","coordinates":[`+square(120.123456789, 30.2, 0.1)+`,`+square(120.15, 30.23, 0.01)+`]}`)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back MultiPolygon
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	if len(back) != 1 || len(back[0].Holes) != 1 || back[0].Outer[0] != m[0].Outer[0] || back[0].Holes[0][2] != m[0].Holes[0][2] {
		t.Fatalf("round trip changed the area: %s", data)
	}
}

func BenchmarkMultiPolygonContains(b *testing.B) {
	m := mustArea(b, `{"type":"Polygon","coordinates":[`+square(120.13, 30.23, 0.03)+`]}`)
	for b.Loop() {
		m.Contains(30.24, 120.14)
	}
}
