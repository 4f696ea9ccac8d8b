package geo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/uber/h3-go/v4"
)

// Sensor is a camera or detector whose counts are located by its id. Cell
// is the H3 cell of its position at the base resolution, set by the Registry.
type Sensor struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Kind string  `json:"kind,omitempty"`
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
	Cell h3.Cell `json:"cell,omitempty"`
}

// ReadSensorsCSV reads sensors from a CSV file with a header row naming id,
// name, lat, lng and optionally kind, in any order. Common open-data names
// are accepted: sensor_id, sensor_description or sensor_name, latitude,
// longitude or lon, type; and a GTFS stops.txt's stop_id, stop_name,
// stop_lat and stop_lon, so that a feed's stops count boardings
// (flowd import -layout gtfs-ride).
func ReadSensorsCSV(r io.Reader) ([]Sensor, error) {
	const kind = colOwn
	cols := []column{
		colID:   {aliases: []string{"id", "sensor_id", "stop_id"}, required: true},
		colName: {aliases: []string{"name", "sensor_description", "description", "sensor_name", "stop_name"}},
		colLat:  {aliases: []string{"lat", "latitude", "stop_lat"}, required: true},
		colLng:  {aliases: []string{"lng", "lon", "long", "longitude", "stop_lon"}, required: true},
		kind:    {aliases: []string{"kind", "type", "sensor_type"}},
	}
	return readRows(r, cols, "sensor", func(t *table) (Sensor, string, bool, error) {
		p, err := t.place()
		return Sensor{ID: p.id, Name: p.name, Kind: t.str(kind), Lat: p.lat, Lng: p.lng}, p.id, true, err
	})
}

// ReadSensorsGeoJSON reads a FeatureCollection of Point features whose
// properties carry id (or the feature's own id), name and kind.
func ReadSensorsGeoJSON(r io.Reader) ([]Sensor, error) {
	return readFeatures(r, "sensor", func(f *feature) (Sensor, string, error) {
		var s Sensor
		g := f.Geometry
		if g == nil || g.Type != "Point" {
			return s, "", fmt.Errorf("geometry must be a Point")
		}
		var pos []float64
		if err := json.Unmarshal(g.Coordinates, &pos); err != nil || len(pos) < 2 {
			return s, "", fmt.Errorf("coordinates %s, want [lng, lat]", g.Coordinates)
		}
		if err := checkLatLng(pos[1], pos[0]); err != nil {
			return s, "", err
		}
		s.Lat, s.Lng = pos[1], pos[0]
		var err error
		if s.ID, err = f.id(); err != nil {
			return s, "", err
		}
		if s.ID == "" {
			return s, "", fmt.Errorf("property id is missing")
		}
		if s.Name, err = propString(f.Properties["name"]); err != nil {
			return s, "", fmt.Errorf("name: %w", err)
		}
		if s.Kind, err = propString(f.Properties["kind"]); err != nil {
			return s, "", fmt.Errorf("kind: %w", err)
		}
		if s.Name == "" {
			s.Name = s.ID
		}
		return s, s.ID, nil
	})
}

// ReadSensors reads sensors in whichever format the file has: a GeoJSON
// FeatureCollection, a JSON array of Sensor (what the registry saves) or a
// CSV. name is used in errors.
func ReadSensors(name string, r io.Reader) ([]Sensor, error) {
	return readSniffed(name, r, func(first byte, br *bufio.Reader) ([]Sensor, error) {
		if first == '{' {
			return ReadSensorsGeoJSON(br)
		}
		return ReadSensorsCSV(br)
	})
}
