package geo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/uber/h3-go/v4"
)

// Default warning thresholds, as fractions of a site's approved capacity.
const (
	DefaultYellow = 0.80
	DefaultOrange = 0.90
	DefaultRed    = 0.95
)

// Site is a scenic area with an approved capacity whose occupancy is watched.
// Yellow, Orange and Red are the warning thresholds as fractions of
// Capacity. Cell (of the centroid) and Cells (of the area) are at the base
// resolution and set by the Registry.
type Site struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	Capacity      int64        `json:"capacity"`
	DailyCapacity int64        `json:"daily_capacity,omitempty"`
	Yellow        float64      `json:"yellow"`
	Orange        float64      `json:"orange"`
	Red           float64      `json:"red"`
	Area          MultiPolygon `json:"area"`
	Cell          h3.Cell      `json:"cell,omitempty"`
	Cells         []h3.Cell    `json:"cells,omitempty"`
}

// check validates what a site file must carry.
func (s *Site) check() error {
	if s.ID == "" {
		return fmt.Errorf("property id is missing")
	}
	if err := CheckID(s.ID); err != nil {
		return fmt.Errorf("site: %w", err)
	}
	if s.Capacity <= 0 {
		return fmt.Errorf("site %q: capacity %d, want more than 0", s.ID, s.Capacity)
	}
	if s.DailyCapacity < 0 {
		return fmt.Errorf("site %q: daily_capacity %d, want 0 (none) or more", s.ID, s.DailyCapacity)
	}
	if !(0 < s.Yellow && s.Yellow < s.Orange && s.Orange < s.Red && s.Red <= 1) {
		return fmt.Errorf("site %q: thresholds yellow %v, orange %v, red %v must increase within (0, 1]", s.ID, s.Yellow, s.Orange, s.Red)
	}
	if len(s.Area) == 0 {
		return fmt.Errorf("site %q: no area", s.ID)
	}
	return nil
}

// ReadSitesGeoJSON reads a FeatureCollection of Polygon or MultiPolygon
// features with properties id, name, capacity, daily_capacity and optional
// yellow, orange, red thresholds, given as fractions (0.8) or percents (80);
// absent ones default to 80 %, 90 % and 95 %.
func ReadSitesGeoJSON(r io.Reader) ([]Site, error) {
	return readFeatures(r, "site", func(f *feature) (Site, string, error) {
		s, err := readSite(f)
		return s, s.ID, err
	})
}

func readSite(f *feature) (Site, error) {
	var s Site
	var err error
	g, props := f.Geometry, f.Properties
	if s.ID, err = f.id(); err != nil {
		return s, err
	}
	if s.Name, err = propString(props["name"]); err != nil {
		return s, fmt.Errorf("name: %w", err)
	}
	if s.Name == "" {
		s.Name = s.ID
	}
	if s.Capacity, err = propInt(props, "capacity"); err != nil {
		return s, err
	}
	if s.DailyCapacity, err = propInt(props, "daily_capacity"); err != nil {
		return s, err
	}
	for _, th := range []struct {
		name string
		dst  *float64
		def  float64
	}{{"yellow", &s.Yellow, DefaultYellow}, {"orange", &s.Orange, DefaultOrange}, {"red", &s.Red, DefaultRed}} {
		if *th.dst, err = propFraction(props, th.name, th.def); err != nil {
			return s, err
		}
	}
	if g == nil {
		return s, fmt.Errorf("site %q has no geometry", s.ID)
	}
	if g.Type != "Polygon" && g.Type != "MultiPolygon" {
		return s, fmt.Errorf("site %q: geometry type %q, want Polygon or MultiPolygon", s.ID, g.Type)
	}
	if s.Area, err = g.area(); err != nil {
		return s, fmt.Errorf("site %q: %w", s.ID, err)
	}
	return s, s.check()
}

// propNumber reads a numeric property; numbers written as strings are
// accepted since spreadsheets export them so. ok is false when absent.
func propNumber(props map[string]json.RawMessage, name string) (v float64, ok bool, err error) {
	raw := props[name]
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	s, err := propString(raw)
	if err == nil {
		v, err = strconv.ParseFloat(s, 64)
	}
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("property %s %s is not a number", name, raw)
	}
	return v, true, nil
}

func propInt(props map[string]json.RawMessage, name string) (int64, error) {
	v, _, err := propNumber(props, name)
	if err != nil {
		return 0, err
	}
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		return 0, fmt.Errorf("property %s %v is not a whole number", name, v)
	}
	return int64(v), nil
}

// propFraction reads a threshold given as a fraction (0.8) or a percent
// (80): values above 1 are percents.
func propFraction(props map[string]json.RawMessage, name string, def float64) (float64, error) {
	v, ok, err := propNumber(props, name)
	if err != nil || !ok {
		return def, err
	}
	if v > 1 && v <= 100 {
		v /= 100
	}
	if v <= 0 || v > 1 {
		return 0, fmt.Errorf("property %s %s is neither a fraction in (0, 1] nor a percent in (1, 100]", name, string(props[name]))
	}
	return v, nil
}

// WriteSitesGeoJSON writes sites as the FeatureCollection ReadSitesGeoJSON
// reads, thresholds as fractions, so a GET returns what a PUT takes.
func WriteSitesGeoJSON(w io.Writer, sites []Site) error {
	bw := bufio.NewWriter(w)
	var buf []byte
	buf = append(buf, `{"type":"FeatureCollection","features":[`...)
	for i := range sites {
		s := &sites[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, "\n"+`{"type":"Feature","properties":{"id":`...)
		buf = appendJSONString(buf, s.ID)
		buf = append(buf, `,"name":`...)
		buf = appendJSONString(buf, s.Name)
		buf = append(buf, `,"capacity":`...)
		buf = strconv.AppendInt(buf, s.Capacity, 10)
		buf = append(buf, `,"daily_capacity":`...)
		buf = strconv.AppendInt(buf, s.DailyCapacity, 10)
		buf = append(buf, `,"yellow":`...)
		buf = appendNumber(buf, s.Yellow)
		buf = append(buf, `,"orange":`...)
		buf = appendNumber(buf, s.Orange)
		buf = append(buf, `,"red":`...)
		buf = appendNumber(buf, s.Red)
		buf = append(buf, `},"geometry":`...)
		buf = s.Area.appendGeoJSON(buf)
		buf = append(buf, '}')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	buf = append(buf, "\n]}\n"...)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("BUG: marshal a string: " + err.Error())
	}
	return append(dst, b...)
}

// ReadSites reads sites from a GeoJSON FeatureCollection; name is used in
// errors. It is the one format for sites, so a saved file reads back.
func ReadSites(name string, r io.Reader) ([]Site, error) {
	out, err := ReadSitesGeoJSON(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
