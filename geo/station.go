package geo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/uber/h3-go/v4"
)

// Station is a transit stop that card swipes name. Cell is the H3 cell of
// its position at the registry's base resolution, set by the Registry.
type Station struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	Line string  `json:"line,omitempty"`
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
	Cell h3.Cell `json:"cell,omitempty"`
}

// Lines returns the lines the station serves: a transfer station lists
// several, joined with ",".
func (s Station) Lines() []string {
	if s.Line == "" {
		return nil
	}
	return strings.Split(s.Line, ",")
}

// sameStationKm is how far apart two rows of one station name may be when a
// file without ids lists a transfer station once per line.
const sameStationKm = 0.5

// ReadStationsCSV reads stations from a CSV file with a header row naming
// columns id, name, lat, lng and optionally line, in any order; lon,
// longitude, latitude, station_id, stop_* names are accepted too. A file
// with no id column (such as a list of metro stations by line) uses the
// name as id, and rows repeating a name within 500 m are one transfer
// station whose lines are joined with ",".
func ReadStationsCSV(r io.Reader) ([]Station, error) { return readStationsCSV(r, nil) }

// readStationsCSV is ReadStationsCSV telling note, when not nil, of each
// row merged into an earlier row of the same name.
func readStationsCSV(r io.Reader, note func(string)) ([]Station, error) {
	const line = colOwn
	t, err := newTable(r, []column{
		colID:   {aliases: []string{"id", "station_id", "stop_id"}},
		colName: {aliases: []string{"name", "station_name", "stop_name"}, required: true},
		colLat:  {aliases: []string{"lat", "latitude", "stop_lat"}, required: true},
		colLng:  {aliases: []string{"lng", "lon", "long", "longitude", "stop_lon"}, required: true},
		line:    {aliases: []string{"line", "line_id", "route"}},
	})
	if err != nil {
		return nil, err
	}
	nameIsID := !t.has(colID)
	var out []Station
	pos := map[string]int{} // id → index in out
	seen := firstLines{}
	err = t.each(func() error {
		s := Station{Line: t.str(line)}
		var err error
		if s.Name, err = t.required(colName); err != nil {
			return err
		}
		s.ID = s.Name
		if !nameIsID {
			if s.ID, err = t.required(colID); err != nil {
				return err
			}
		}
		if s.Lat, s.Lng, err = t.latLng(colLat, colLng); err != nil {
			return err
		}
		i, dup := pos[s.ID]
		if !dup {
			pos[s.ID] = len(out)
			out = append(out, s)
			return seen.add(t, "station", s.ID)
		}
		prev := &out[i]
		km := h3.GreatCircleDistanceKm(h3.LatLng{Lat: prev.Lat, Lng: prev.Lng}, h3.LatLng{Lat: s.Lat, Lng: s.Lng})
		if !nameIsID || km > sameStationKm {
			return seen.add(t, "station", s.ID)
		}
		if s.Line != "" && !strings.Contains(","+prev.Line+",", ","+s.Line+",") {
			prev.Line = strings.TrimPrefix(prev.Line+","+s.Line, ",")
		}
		if note != nil {
			note(fmt.Sprintf("line %d: station %q has the name of line %d's, %.0f m away: merged into one transfer station (lines %s); give the file an id column to keep them apart",
				t.line, s.ID, seen[s.ID], km*1000, prev.Line))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadStationsGTFS reads a GTFS stops.txt. Stops and stations
// (location_type 0 or 1) are kept; entrances, generic nodes and boarding
// areas are skipped, since swipes name the stop or station. A stop without
// stop_name takes its stop_id as name.
func ReadStationsGTFS(r io.Reader) ([]Station, error) {
	const locType = colOwn
	cols := []column{
		colID:   {aliases: []string{"stop_id"}, required: true},
		colName: {aliases: []string{"stop_name"}},
		colLat:  {aliases: []string{"stop_lat"}, required: true},
		colLng:  {aliases: []string{"stop_lon"}, required: true},
		locType: {aliases: []string{"location_type"}},
	}
	return readRows(r, cols, "stop_id", func(t *table) (Station, string, bool, error) {
		switch lt := t.str(locType); lt {
		case "", "0", "1":
		case "2", "3", "4":
			return Station{}, "", false, nil
		default:
			return Station{}, "", false, t.errorf(locType, "want 0 to 4")
		}
		p, err := t.place()
		return Station{ID: p.id, Name: p.name, Lat: p.lat, Lng: p.lng}, p.id, true, err
	})
}

// ReadStations reads stations in whichever format the file has: a JSON array
// of Station (what the registry saves), a GTFS stops.txt (by name or by a
// stop_id header), or a plain CSV. name is used for sniffing and errors.
func ReadStations(name string, r io.Reader) ([]Station, error) { return readStations(name, r, nil) }

// readStations is ReadStations telling note of merged rows (see
// readStationsCSV).
func readStations(name string, r io.Reader, note func(string)) ([]Station, error) {
	return readSniffed(name, r, func(_ byte, br *bufio.Reader) ([]Station, error) {
		head, _ := br.Peek(4096)
		if line, _, _ := bytes.Cut(head, []byte("\n")); strings.EqualFold(filepath.Base(name), "stops.txt") ||
			bytes.Contains(bytes.ToLower(line), []byte("stop_id")) {
			return ReadStationsGTFS(br)
		}
		return readStationsCSV(br, note)
	})
}

// readSniffed reads a registry file of name: a JSON array of T, as the
// registry saves it, or any other form by other, given the file's first
// byte. Errors are prefixed with name.
func readSniffed[T any](name string, r io.Reader, other func(first byte, br *bufio.Reader) ([]T, error)) ([]T, error) {
	br := bufio.NewReader(r)
	var out []T
	var err error
	if first := sniff(br); first == '[' {
		err = json.NewDecoder(br).Decode(&out)
	} else {
		out, err = other(first, br)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// sniff returns the first byte of br that is not a BOM or white space,
// leaving it unread.
func sniff(br *bufio.Reader) byte {
	head, _ := br.Peek(512)
	head = bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(head) == 0 {
		return 0
	}
	return head[0]
}
