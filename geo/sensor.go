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
// longitude or lon, type.
func ReadSensorsCSV(r io.Reader) ([]Sensor, error) {
	const (
		id = iota
		name
		lat
		lng
		kind
	)
	t, err := newTable(r, []column{
		id:   {aliases: []string{"id", "sensor_id"}, required: true},
		name: {aliases: []string{"name", "sensor_description", "description", "sensor_name"}},
		lat:  {aliases: []string{"lat", "latitude"}, required: true},
		lng:  {aliases: []string{"lng", "lon", "long", "longitude"}, required: true},
		kind: {aliases: []string{"kind", "type", "sensor_type"}},
	})
	if err != nil {
		return nil, err
	}
	var out []Sensor
	seen := firstLines{}
	err = t.each(func() error {
		s := Sensor{Name: t.str(name), Kind: t.str(kind)}
		var err error
		if s.ID, err = t.required(id); err != nil {
			return err
		}
		if s.Name == "" {
			s.Name = s.ID
		}
		if s.Lat, s.Lng, err = t.latLng(lat, lng); err != nil {
			return err
		}
		out = append(out, s)
		return seen.add(t, "sensor", s.ID)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	br := bufio.NewReader(r)
	var (
		out []Sensor
		err error
	)
	switch sniff(br) {
	case '{':
		out, err = ReadSensorsGeoJSON(br)
	case '[':
		err = json.NewDecoder(br).Decode(&out)
	default:
		out, err = ReadSensorsCSV(br)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
