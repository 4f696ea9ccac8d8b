package export

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/uber/h3-go/v4"
)

// table is one table of a day's export, written as CSV and as GeoJSON.
type table struct {
	name, what, granularity string
	header                  []string
	rows                    [][]string
	// features holds one GeoJSON feature per row, without the comma.
	features [][]byte
}

// hourLabel is how an hour is written in the tables: RFC 3339, UTC.
func hourLabel(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cellTable is a row per cell and hour where the density of some metric
// released a figure; a metric whose figure it left out (under k after
// noise, or nothing) reads 0, as /series gives it.
func (f *fetch) cellTable() *table {
	t := &table{name: fmt.Sprintf("cells-res%d", f.c.Res), what: "per H3 cell and hour, each metric summed",
		granularity: fmt.Sprintf("H3 resolution %d, 1 hour", f.c.Res),
		header:      append([]string{"hour", "cell", "lat", "lng"}, f.metrics...)}
	for h := range 24 {
		hour := hourLabel(f.day.Add(time.Duration(h) * time.Hour))
		cells := make([]h3.Cell, 0, len(f.cells[h]))
		for c := range f.cells[h] {
			cells = append(cells, c)
		}
		slices.Sort(cells)
		for _, c := range cells {
			ll := c.LatLng()
			row := []string{hour, c.String(), coord(ll.Lat), coord(ll.Lng)}
			props := []byte(`{"hour":"` + hour + `","cell":"` + c.String() + `"`)
			for _, m := range f.metrics {
				v := strconv.FormatInt(f.cells[h][c][m], 10)
				row = append(row, v)
				props = append(props, `,"`+m+`":`+v...)
			}
			t.rows = append(t.rows, row)
			feat := append([]byte(`{"type":"Feature","geometry":`), geo.AppendCellPolygon(nil, c)...)
			t.features = append(t.features, append(append(feat, `,"properties":`...), append(props, "}}"...)...))
		}
	}
	return t
}

// stationTable is a row per station and hour, each station metric as the
// station cell's /series gave it (0: nothing, or withheld under k).
func (f *fetch) stationTable() *table {
	t := &table{name: "stations", what: "per station and hour: taps in and out at the station's cell",
		granularity: "station, 1 hour", header: append([]string{"hour", "station", "name", "line", "cell", "lat", "lng"}, StationMetrics...)}
	for h := range 24 {
		hour := hourLabel(f.day.Add(time.Duration(h) * time.Hour))
		for i, s := range f.stations {
			row := []string{hour, s.ID, s.Name, s.Line, s.Cell.String(), coord(s.Lat), coord(s.Lng)}
			props := []byte(`{"hour":"` + hour + `","station":` + jsonString(s.ID) + `,"name":` + jsonString(s.Name) +
				`,"line":` + jsonString(s.Line) + `,"cell":"` + s.Cell.String() + `"`)
			for j, m := range StationMetrics {
				v := strconv.FormatInt(f.stationHours[i][j][h], 10)
				row = append(row, v)
				props = append(props, `,"`+m+`":`+v...)
			}
			t.rows = append(t.rows, row)
			feat := []byte(`{"type":"Feature","geometry":{"type":"Point","coordinates":[` + coord(s.Lng) + `,` + coord(s.Lat) + `]},"properties":`)
			t.features = append(t.features, append(append(feat, props...), "}}"...))
		}
	}
	return t
}

// odTable is a row per station pair the OD answer released; a pair it
// withheld is not there, as it is not in the answer. mean_minutes is empty
// (null) where the pair's travel time was withheld.
func (f *fetch) odTable() *table {
	t := &table{name: "od-stations", what: "trips per origin and destination station over the day, and their mean travel time",
		granularity: "station pair, 1 day", header: []string{"day", "origin", "destination", "trips", "mean_minutes"}}
	at := map[string]station{}
	for _, s := range f.stations {
		at[s.ID] = s
	}
	day := f.day.Format(time.DateOnly)
	for _, p := range f.od {
		mean, meanJSON := "", "null"
		if p.MeanMinutes != nil {
			mean = strconv.FormatFloat(*p.MeanMinutes, 'g', -1, 64)
			meanJSON = mean
		}
		trips := strconv.FormatInt(p.Trips, 10)
		t.rows = append(t.rows, []string{day, p.Origin, p.Destination, trips, mean})
		o, d := at[p.Origin], at[p.Destination]
		t.features = append(t.features, []byte(`{"type":"Feature","geometry":{"type":"LineString","coordinates":[[`+
			coord(o.Lng)+`,`+coord(o.Lat)+`],[`+coord(d.Lng)+`,`+coord(d.Lat)+`]]},"properties":{"day":"`+day+
			`","origin":`+jsonString(p.Origin)+`,"destination":`+jsonString(p.Destination)+`,"trips":`+trips+`,"mean_minutes":`+meanJSON+`}}`))
	}
	return t
}

// csv returns the table as CSV with a header row.
func (t *table) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(t.header)
	w.WriteAll(t.rows) // a bytes.Buffer does not fail
	return b.Bytes()
}

// geoJSON returns the table as a FeatureCollection, a feature a line.
func (t *table) geoJSON() []byte {
	b := []byte(`{"type":"FeatureCollection","features":[` + "\n")
	for i, f := range t.features {
		b = append(b, f...)
		if i < len(t.features)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	return append(b, "]}\n"...)
}

// coord writes a coordinate to the micro-degree, about 0.1 m.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

func jsonString(s string) string {
	b, _ := jsonMarshal(s)
	return string(b)
}
