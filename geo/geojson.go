package geo

import (
	"math"
	"strconv"

	"github.com/uber/h3-go/v4"
)

// CellsFeatureCollection appends to dst a GeoJSON FeatureCollection with one
// polygon feature per cell, properties {"cell": "<hex id>", "value": v}.
// values may be nil to leave "value" out; otherwise it must match cells.
// Non-finite values are written as null, which JSON can carry.
func CellsFeatureCollection(dst []byte, cells []h3.Cell, values []float64) []byte {
	if values != nil && len(values) != len(cells) {
		panic("BUG: CellsFeatureCollection got " + strconv.Itoa(len(values)) + " values for " + strconv.Itoa(len(cells)) + " cells")
	}
	dst = append(dst, `{"type":"FeatureCollection","features":[`...)
	for i, c := range cells {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"type":"Feature","geometry":{"type":"Polygon","coordinates":[`...)
		dst = appendRing(dst, c.Boundary())
		dst = append(dst, `]},"properties":{"cell":"`...)
		dst = strconv.AppendUint(dst, uint64(c), 16)
		dst = append(dst, '"')
		if values != nil {
			dst = append(dst, `,"value":`...)
			dst = appendNumber(dst, values[i])
		}
		dst = append(dst, "}}"...)
	}
	return append(dst, "]}"...)
}

// AppendCellPolygon appends the GeoJSON Polygon geometry of cell c's
// boundary.
func AppendCellPolygon(dst []byte, c h3.Cell) []byte {
	dst = append(dst, `{"type":"Polygon","coordinates":[`...)
	dst = appendRing(dst, c.Boundary())
	return append(dst, "]}"...)
}

// appendRing appends an open ring as a closed GeoJSON ring of [lng, lat].
func appendRing(dst []byte, r []h3.LatLng) []byte {
	dst = append(dst, '[')
	for i := 0; i <= len(r); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		p := r[i%len(r)]
		dst = append(dst, '[')
		dst = strconv.AppendFloat(dst, p.Lng, 'f', -1, 64)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, p.Lat, 'f', -1, 64)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

func appendNumber(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
