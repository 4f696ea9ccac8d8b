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
	lines := map[string]int{}
	for {
		ok, err := t.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		s := Sensor{Name: t.str(name), Kind: t.str(kind)}
		if s.ID, err = t.required(id); err != nil {
			return nil, err
		}
		if s.Name == "" {
			s.Name = s.ID
		}
		if s.Lat, s.Lng, err = t.latLng(lat, lng); err != nil {
			return nil, err
		}
		if l, dup := lines[s.ID]; dup {
			return nil, fmt.Errorf("line %d: sensor %q already on line %d", t.line, s.ID, l)
		}
		lines[s.ID] = t.line
		out = append(out, s)
	}
}

// ReadSensorsGeoJSON reads a FeatureCollection of Point features whose
// properties carry id (or the feature's own id), name and kind.
func ReadSensorsGeoJSON(r io.Reader) ([]Sensor, error) {
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			ID       json.RawMessage `json:"id"`
			Geometry *struct {
				Type        string          `json:"type"`
				Coordinates json.RawMessage `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"features"`
	}
	if err := json.NewDecoder(r).Decode(&fc); err != nil {
		return nil, fmt.Errorf("sensors GeoJSON: %w", err)
	}
	if fc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("sensors GeoJSON: type %q, want FeatureCollection", fc.Type)
	}
	out := make([]Sensor, 0, len(fc.Features))
	seen := map[string]int{}
	for i, f := range fc.Features {
		n := i + 1
		g := f.Geometry
		if g == nil || g.Type != "Point" {
			return nil, fmt.Errorf("feature %d: geometry must be a Point", n)
		}
		var pos []float64
		if err := json.Unmarshal(g.Coordinates, &pos); err != nil || len(pos) < 2 {
			return nil, fmt.Errorf("feature %d: coordinates %s, want [lng, lat]", n, g.Coordinates)
		}
		if err := checkLatLng(pos[1], pos[0]); err != nil {
			return nil, fmt.Errorf("feature %d: %w", n, err)
		}
		s := Sensor{Lat: pos[1], Lng: pos[0]}
		var err error
		if s.ID, err = propString(f.Properties["id"]); err == nil && s.ID == "" {
			s.ID, err = propString(f.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("feature %d: id: %w", n, err)
		}
		if s.ID == "" {
			return nil, fmt.Errorf("feature %d: property id is missing", n)
		}
		if s.Name, err = propString(f.Properties["name"]); err != nil {
			return nil, fmt.Errorf("feature %d: name: %w", n, err)
		}
		if s.Kind, err = propString(f.Properties["kind"]); err != nil {
			return nil, fmt.Errorf("feature %d: kind: %w", n, err)
		}
		if s.Name == "" {
			s.Name = s.ID
		}
		if prev, dup := seen[s.ID]; dup {
			return nil, fmt.Errorf("feature %d: sensor %q already in feature %d", n, s.ID, prev)
		}
		seen[s.ID] = n
		out = append(out, s)
	}
	return out, nil
}

// propString reads a GeoJSON property that should be a string; numbers are
// taken as written, since ids often come as numbers. Absent or null is "".
func propString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("%s is not a string or number", raw)
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
