package geo

import (
	"encoding/json"
	"fmt"

	"github.com/uber/h3-go/v4"
)

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
