package cityfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layouts flowd import reads.
const (
	LayoutFlowd    = "flowd"     // flowd's own NDJSON or CSV, sent as it is
	LayoutWide     = "wide"      // one row per time, one column per sensor or site
	LayoutRows     = "rows"      // one event per row, columns and values renamed, stations joined
	LayoutGTFSRide = "gtfs-ride" // GTFS-ride board_alight.txt
	LayoutPeMS     = "pems"      // PeMS station 5-minute files (no header row)
)

// Layouts lists the layout names, for help and errors.
var Layouts = []string{LayoutFlowd, LayoutWide, LayoutRows, LayoutGTFSRide, LayoutPeMS}

// Spec is a mapping file: the layout of a file and how its columns become
// flowd's fields. docs/import.md describes each member.
type Spec struct {
	Layout string `json:"layout"`
	// Kind is the events written: counts, footfall or swipes.
	Kind string `json:"kind,omitempty"`
	// TZ is the IANA zone of times written without an offset.
	TZ string `json:"tz,omitempty"`
	// Time says where a record's time is.
	Time TimeSpec `json:"time,omitempty"`
	// Class is the detector class of counts (wide, PeMS).
	Class string `json:"class,omitempty"`
	// Interval is what one reading covers, as a Go duration (1h, 5m).
	Interval string `json:"interval,omitempty"`
	// Value is the footfall field a wide table's cells are: in, out or
	// occupancy.
	Value string `json:"value,omitempty"`
	// Missing lists the cell texts that mean "no reading"; an empty cell
	// always does.
	Missing []string `json:"missing,omitempty"`
	// Columns maps, in a wide table, a header name to the sensor or site
	// id it is (null: leave the column out); in rows, a flowd field to the
	// source column holding it.
	Columns map[string]*string `json:"columns,omitempty"`
	// Values maps, in rows, a flowd field's source texts to flowd's
	// ("CHECK IN" to in); a text not listed is passed as it is.
	Values map[string]map[string]string `json:"values,omitempty"`
	// Stations joins a station number to coordinates (rows of swipes).
	Stations *StationJoin `json:"stations,omitempty"`
	// SpeedUnit is the unit of PeMS speeds: mph (default) or km/h.
	SpeedUnit string `json:"speed_unit,omitempty"`

	dir      string // of the mapping file, for relative paths
	interval time.Duration
}

// TimeSpec says which columns hold a record's time and how it is written.
type TimeSpec struct {
	// Column holds a date, or a date and time.
	Column string `json:"column,omitempty"`
	// Formats are Go layouts (2006-01-02 15:04:05, 2/1/2006, 2-Jan-06)
	// tried in order; RFC 3339, "2006-01-02 15:04:05" and unix seconds are
	// always understood.
	Formats []string `json:"formats,omitempty"`
	// Hour names a column of the hour of the day (0 to 23) added to a date.
	Hour string `json:"hour,omitempty"`
}

// StationJoin names the two files that place a station number: IDs maps
// the number to a line and name, Coordinates the line and name to a point.
type StationJoin struct {
	IDs         string `json:"ids"`
	Coordinates string `json:"coordinates"`
	// Names maps a station number to the name it has in the coordinates
	// file, where the two files spell it differently.
	Names map[string]string `json:"names,omitempty"`
}

// LoadSpec reads a mapping file.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sp Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("mapping file %s: %v (its members are described in docs/import.md)", path, err)
	}
	sp.dir = filepath.Dir(path)
	if err := sp.check(); err != nil {
		return nil, fmt.Errorf("mapping file %s: %v", path, err)
	}
	return &sp, nil
}

// SpecFor returns the spec of a layout given by name alone.
func SpecFor(layout string) (*Spec, error) {
	sp := &Spec{Layout: layout}
	if err := sp.check(); err != nil {
		return nil, err
	}
	return sp, nil
}

// check validates a spec and fills its defaults.
func (sp *Spec) check() error {
	switch sp.Layout {
	case LayoutFlowd:
		return nil
	case LayoutWide:
		switch sp.Kind {
		case "counts":
			if sp.Class == "" {
				sp.Class = "person"
			}
		case "footfall":
			switch sp.Value {
			case "":
				sp.Value = "in"
			case "in", "out", "occupancy":
			default:
				return fmt.Errorf(`"value" %q: want in, out or occupancy`, sp.Value)
			}
		default:
			return fmt.Errorf(`"kind" %q: a wide table holds counts or footfall`, sp.Kind)
		}
		if sp.Time.Column == "" {
			return fmt.Errorf(`a wide table needs "time": {"column": …} naming its date or time column`)
		}
		if sp.Interval == "" {
			sp.Interval = "1h"
		}
	case LayoutRows:
		switch sp.Kind {
		case "swipes", "counts", "footfall":
		default:
			return fmt.Errorf(`"kind" %q: want swipes, counts or footfall`, sp.Kind)
		}
		if sp.Stations != nil && sp.Kind != "swipes" {
			return fmt.Errorf(`"stations" joins station numbers of swipes; kind is %s`, sp.Kind)
		}
		if sp.Stations != nil && (sp.Stations.IDs == "" || sp.Stations.Coordinates == "") {
			return fmt.Errorf(`"stations" needs "ids" and "coordinates" files`)
		}
	case LayoutGTFSRide:
		sp.Kind = "counts"
		if sp.Time.Column == "" {
			sp.Time = TimeSpec{Column: "service_date", Formats: []string{"20060102"}}
		}
	case LayoutPeMS:
		sp.Kind = "counts"
		if sp.Class == "" {
			sp.Class = "vehicle"
		}
		if sp.Interval == "" {
			sp.Interval = "5m"
		}
		switch sp.SpeedUnit {
		case "":
			sp.SpeedUnit = "mph"
		case "mph", "km/h":
		default:
			return fmt.Errorf(`"speed_unit" %q: want mph or km/h`, sp.SpeedUnit)
		}
	case "":
		return fmt.Errorf(`no "layout": want one of %s`, strings.Join(Layouts, ", "))
	default:
		return fmt.Errorf(`layout %q: want one of %s`, sp.Layout, strings.Join(Layouts, ", "))
	}
	if sp.Interval != "" {
		d, err := time.ParseDuration(sp.Interval)
		if err != nil || d < time.Second || d > 24*time.Hour || d%time.Second != 0 {
			return fmt.Errorf(`"interval" %q: want a whole number of seconds from 1s to 24h (1h, 5m)`, sp.Interval)
		}
		sp.interval = d
	}
	return nil
}

// path resolves a file named in the mapping file against its folder.
func (sp *Spec) path(p string) string {
	if filepath.IsAbs(p) || sp.dir == "" {
		return p
	}
	return filepath.Join(sp.dir, p)
}

// missing reports whether a cell's text means no reading.
func (sp *Spec) missing(cell string) bool {
	cell = strings.TrimSpace(cell)
	if cell == "" {
		return true
	}
	for _, m := range sp.Missing {
		if cell == m {
			return true
		}
	}
	return false
}
