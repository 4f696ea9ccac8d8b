package geo

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/uber/h3-go/v4"
)

func TestCellsFeatureCollection(t *testing.T) {
	hex := h3.LatLngToCell(h3.LatLng{Lat: 30.24, Lng: 120.15}, 9)
	pent := h3.Pentagons(3)[0]
	tests := []struct {
		name   string
		cells  []h3.Cell
		values []float64
	}{
		{"hexagon and pentagon", []h3.Cell{hex, pent}, []float64{12.5, math.NaN()}},
		{"no values", []h3.Cell{hex}, nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("x")
			out := CellsFeatureCollection(prefix, tt.cells, tt.values)
			if out[0] != 'x' {
				t.Fatal("did not append to dst")
			}
			var fc struct {
				Type     string
				Features []struct {
					Type     string
					Geometry struct {
						Type        string
						Coordinates [][][2]float64
					}
					Properties map[string]any
				}
			}
			if err := json.Unmarshal(out[1:], &fc); err != nil {
				t.Fatalf("invalid JSON %s: %v", out[1:], err)
			}
			if fc.Type != "FeatureCollection" || len(fc.Features) != len(tt.cells) {
				t.Fatalf("got %s with %d features, want %d", fc.Type, len(fc.Features), len(tt.cells))
			}
			for i, f := range fc.Features {
				c := tt.cells[i]
				if f.Properties["cell"] != c.String() {
					t.Errorf("feature %d cell = %v, want %s", i, f.Properties["cell"], c)
				}
				v, hasValue := f.Properties["value"]
				switch {
				case tt.values == nil && hasValue:
					t.Errorf("feature %d has a value without values given", i)
				case tt.values != nil && math.IsNaN(tt.values[i]) && v != nil:
					t.Errorf("feature %d value = %v, want null for NaN", i, v)
				case tt.values != nil && !math.IsNaN(tt.values[i]) && v != tt.values[i]:
					t.Errorf("feature %d value = %v, want %v", i, v, tt.values[i])
				}
				ring := f.Geometry.Coordinates[0]
				bnd := c.Boundary()
				if len(ring) != len(bnd)+1 || ring[0] != ring[len(ring)-1] {
					t.Fatalf("feature %d ring has %d points, want %d closed", i, len(ring), len(bnd)+1)
				}
				if ring[0][0] != bnd[0].Lng || ring[0][1] != bnd[0].Lat {
					t.Errorf("feature %d first point %v, want [lng, lat] %v", i, ring[0], bnd[0])
				}
			}
		})
	}
}

func BenchmarkCellsFeatureCollection(b *testing.B) {
	cells := h3.LatLngToCell(h3.LatLng{Lat: 30.24, Lng: 120.15}, 7).Children(9)
	values := make([]float64, len(cells))
	var buf []byte
	for b.Loop() {
		buf = CellsFeatureCollection(buf[:0], cells, values)
	}
}
