package geo

import (
	"encoding/json"
	"fmt"
	"io"
)

// feature is one GeoJSON Feature of a registry file.
type feature struct {
	ID         json.RawMessage            `json:"id"`
	Geometry   *geoJSON                   `json:"geometry"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// id returns the feature's id: its id property, or the feature's own id.
func (f *feature) id() (string, error) {
	id, err := propString(f.Properties["id"])
	if err == nil && id == "" {
		id, err = propString(f.ID)
	}
	if err != nil {
		return "", fmt.Errorf("id: %w", err)
	}
	return id, nil
}

// readFeatures reads a FeatureCollection of what (sensor, site), each
// feature turned into a T with its id by read. Errors name the feature by
// its number from 1; an id given twice names both features.
func readFeatures[T any](r io.Reader, what string, read func(*feature) (T, string, error)) ([]T, error) {
	var fc struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}
	if err := json.NewDecoder(r).Decode(&fc); err != nil {
		return nil, fmt.Errorf("%ss GeoJSON: %w", what, err)
	}
	if fc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("%ss GeoJSON: type %q, want FeatureCollection", what, fc.Type)
	}
	out := make([]T, 0, len(fc.Features))
	seen := map[string]int{}
	for i := range fc.Features {
		n := i + 1
		v, id, err := read(&fc.Features[i])
		if err != nil {
			return nil, fmt.Errorf("feature %d: %w", n, err)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("feature %d: %s %q already in feature %d", n, what, id, prev)
		}
		seen[id] = n
		out = append(out, v)
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
