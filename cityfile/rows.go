package cityfile

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// rows reads a file of one event per row whose columns and values have
// other names than flowd's (an AFC export, a card-tap table): each flowd
// field comes from the column the spec maps it to, or from the column of
// its own name, its text renamed through the spec's values.
type rows struct {
	sp       *Spec
	tr       *timeReader
	fields   []string
	src      []int // source column of each field, -1 for none
	stations *stationMap
	station  int // index of the station field in fields, -1 without a join
	lat, lng int
}

// required lists, per kind, the fields a file must give and how to say so.
var required = map[string][]string{
	"swipes":   {"card", "dir"},
	"counts":   {"sensor", "class", "count"},
	"footfall": {"site"},
}

func newRows(sp *Spec, header []string) (*rows, error) {
	cols := newColumns(header)
	if sp.Time.Column == "" {
		sp.Time.Column = "time"
		if c, ok := sp.Columns["time"]; ok && c != nil {
			sp.Time.Column = *c
		}
	}
	r := &rows{sp: sp, fields: kindFields[sp.Kind], station: -1}
	expect := func() string {
		var parts []string
		for _, f := range r.fields {
			src := f
			if c, ok := sp.Columns[f]; ok && c != nil {
				src = *c + " (as " + f + ")"
			}
			parts = append(parts, src)
		}
		return fmt.Sprintf("%s needs columns %s; the header has %s", sp.Kind, strings.Join(parts, ", "), quoteList(header))
	}
	for k := range sp.Columns {
		if !contains(r.fields, k) {
			return nil, fmt.Errorf(`"columns" maps %q, which is no field of %s (%s)`, k, sp.Kind, strings.Join(r.fields, ", "))
		}
	}
	tr, err := newTimeReader(sp, cols, header, false)
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, expect())
	}
	r.tr = tr
	var missing []string
	for _, f := range r.fields {
		name := f
		if c, ok := sp.Columns[f]; ok {
			if c == nil {
				r.src = append(r.src, -1)
				continue
			}
			name = *c
		}
		i := cols.find(name)
		if f == "time" {
			i = -1 // read by tr
		} else if i < 0 && (contains(required[sp.Kind], f) || sp.Columns[f] != nil) {
			missing = append(missing, strconv.Quote(name))
		}
		r.src = append(r.src, i)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no column %s: %s", strings.Join(missing, ", "), expect())
	}
	r.lat, r.lng = indexOf(r.fields, "lat"), indexOf(r.fields, "lng")
	if sp.Kind == "swipes" && r.src[indexOf(r.fields, "station")] < 0 && (r.src[r.lat] < 0 || r.src[r.lng] < 0) {
		return nil, fmt.Errorf("no station column, nor lat and lng: %s", expect())
	}
	if sp.Stations != nil {
		r.station = indexOf(r.fields, "station")
		if r.src[r.station] < 0 {
			return nil, fmt.Errorf(`"stations" joins a station column, and there is none: %s`, expect())
		}
		if r.stations, err = loadStationMap(sp); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Warnings returns what the station join could not place, to say at start.
func (r *rows) Warnings() []string {
	if r.stations == nil {
		return nil
	}
	return r.stations.warnings
}

func (r *rows) Kind() string   { return r.sp.Kind }
func (r *rows) Header() string { return headerOf(r.sp.Kind) }

func (r *rows) Convert(line int, rec []string, dst []byte) ([]byte, Result) {
	var res Result
	if blank(rec) {
		res.Blank = true
		return dst, res
	}
	t, p := r.tr.read(line, rec)
	if p != nil {
		res.Rejected = append(res.Rejected, *p)
		return dst, res
	}
	var vals [8]string
	for i, f := range r.fields {
		if i == 0 {
			continue
		}
		v := cell(rec, r.src[i])
		if m, ok := r.sp.Values[f]; ok {
			if to, ok := m[v]; ok {
				v = to
			}
		}
		vals[i] = v
	}
	if r.stations != nil {
		num := vals[r.station]
		st, err := r.stations.place(num)
		if err != nil {
			res.Rejected = append(res.Rejected, Problem{line, r.sp.columnOf("station"), num, err.Error()})
			return dst, res
		}
		vals[r.station] = ""
		vals[r.lat] = strconv.FormatFloat(st.lat, 'f', -1, 64)
		vals[r.lng] = strconv.FormatFloat(st.lng, 'f', -1, 64)
		if li := indexOf(r.fields, "line"); vals[li] == "" {
			vals[li] = st.line
		}
	}
	dst = appendTime(dst, t)
	for i := 1; i < len(r.fields); i++ {
		dst = append(dst, ',')
		dst = appendField(dst, vals[i])
	}
	dst = append(dst, '\n')
	res.Events = 1
	return dst, res
}

// columnOf returns the source column name of a flowd field.
func (sp *Spec) columnOf(field string) string {
	if c, ok := sp.Columns[field]; ok && c != nil {
		return *c
	}
	return field
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// stationMap places the station numbers of an AFC export: the ids file
// gives a number's line and name, the coordinates file the point of a line
// and name. Stations are joined on line and name together: two stations of
// one name on different numbers stay two, one number listed once per line
// (Hangzhou's transfer station 46, 钱江路, on lines 2 and 4) is one station
// wherever its rows agree, and a name the coordinates file lists twice on
// one line is an error, never a silent pick.
type stationMap struct {
	byNumber map[string]placed
	unplaced map[string]string // number → why it has no point
	warnings []string
}

type placed struct {
	line, name string
	lat, lng   float64
}

func (m *stationMap) place(num string) (placed, error) {
	if p, ok := m.byNumber[num]; ok {
		return p, nil
	}
	if why, ok := m.unplaced[num]; ok {
		return placed{}, fmt.Errorf("station %s %s", num, why)
	}
	return placed{}, fmt.Errorf("station %s is not in the station ids file", num)
}

func loadStationMap(sp *Spec) (*stationMap, error) {
	j := sp.Stations
	idsPath, coordPath := sp.path(j.IDs), sp.path(j.Coordinates)
	ids, err := readTable(idsPath)
	if err != nil {
		return nil, err
	}
	coords, err := readTable(coordPath)
	if err != nil {
		return nil, err
	}
	ic := newColumns(ids[0])
	// The ids file's columns: its first is the number, then line and name
	// under any of these names (Hangzhou's are stationID, 线路, 站点).
	iNum := firstOf(ic, "id", "stationid", "station_id", "number")
	if iNum < 0 {
		iNum = 0
	}
	iLine := firstOf(ic, "line", "lineid", "line_id", "线路")
	iName := firstOf(ic, "name", "station", "station_name", "站点")
	if iName < 0 {
		return nil, fmt.Errorf("%s: want columns id, line and name (or stationID, 线路, 站点); the header has %s", idsPath, quoteList(ids[0]))
	}
	cc := newColumns(coords[0])
	cLine, cName := firstOf(cc, "line", "lineid", "line_id"), firstOf(cc, "name", "station_name", "stop_name")
	cLat, cLng := firstOf(cc, "lat", "latitude", "stop_lat"), firstOf(cc, "lng", "lon", "longitude", "stop_lon")
	if cName < 0 || cLat < 0 || cLng < 0 {
		return nil, fmt.Errorf("%s: want columns line, name, lon, lat; the header has %s", coordPath, quoteList(coords[0]))
	}
	type key struct{ line, name string }
	points := map[key]placed{}
	rowOf := map[key]int{}
	for n, rec := range coords[1:] {
		k := key{cell(rec, cLine), cell(rec, cName)}
		lat, err1 := strconv.ParseFloat(cell(rec, cLat), 64)
		lng, err2 := strconv.ParseFloat(cell(rec, cLng), 64)
		if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			return nil, fmt.Errorf("%s line %d: want lat and lng in degrees, not %q, %q", coordPath, n+2, cell(rec, cLat), cell(rec, cLng))
		}
		if first, dup := rowOf[k]; dup {
			return nil, fmt.Errorf("%s lines %d and %d: both are %q on line %q; the join would have to pick one", coordPath, first, n+2, k.name, k.line)
		}
		rowOf[k] = n + 2
		points[k] = placed{line: k.line, name: k.name, lat: lat, lng: lng}
	}
	m := &stationMap{byNumber: map[string]placed{}, unplaced: map[string]string{}}
	for n, rec := range ids[1:] {
		num := cell(rec, iNum)
		if num == "" {
			continue
		}
		k := key{cell(rec, iLine), cell(rec, iName)}
		if cLine < 0 {
			k.line = ""
		}
		if alias, ok := j.Names[num]; ok {
			k.name = alias
		}
		if p, ok := points[k]; ok {
			prev, again := m.byNumber[num]
			switch {
			case !again:
				m.byNumber[num] = p
			case distanceKm(prev.lat, prev.lng, p.lat, p.lng) > sameStationKm:
				return nil, fmt.Errorf("%s line %d: station %s is listed again, on line %s, %.1f km from where line %s puts it: one number must be one place",
					idsPath, n+2, num, k.line, distanceKm(prev.lat, prev.lng, p.lat, p.lng), prev.line)
			default:
				// A transfer station listed once per line under one number.
				prev.line += "," + k.line
				m.byNumber[num] = prev
			}
			continue
		}
		why := fmt.Sprintf("(line %s, %s) has no row of that line and name in %s", k.line, k.name, coordPath)
		m.unplaced[num] = why
		m.warnings = append(m.warnings, fmt.Sprintf("station %s %s: its taps are rejected; give its name there under \"stations\": {\"names\": {%q: …}}", num, why, num))
	}
	sort.Strings(m.warnings)
	return m, nil
}

// sameStationKm is how far apart the rows of one station number may put
// it: a transfer station's lines are listed with their own platforms.
const sameStationKm = 0.5

// distanceKm is the great-circle distance between two points.
func distanceKm(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371.0088
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lng2-lng1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

func firstOf(c columns, names ...string) int {
	for _, n := range names {
		if i := c.find(n); i >= 0 {
			return i
		}
	}
	return -1
}

// readTable reads a small CSV file whole; its first record is the header.
func readTable(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("%s: want a header row and at least one row", path)
	}
	return recs, nil
}
