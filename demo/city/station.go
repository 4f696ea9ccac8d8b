package city

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Station is a metro station of the generated city. Its index in
// City.Stations is the AFC competition's stationID and its ID the registry id.
type Station struct {
	ID    string // registry id: the decimal index, so it equals the AFC stationID
	Name  string
	Line  string // line number as text, e.g. "1"
	Pos   LatLng
	Gates int // fare gates, numbered into AFC deviceIDs

	home, work, scenic float64 // trip-generation weights
}

// geocoderFallback is the point a few rows of the Hangzhou station file carry
// instead of their own position (the geocoder's answer for "Hangzhou").
var geocoderFallback = LatLng{30.274084, 120.15507}

func isFallback(p LatLng) bool {
	return math.Abs(p.Lat-geocoderFallback.Lat) < 1e-6 && math.Abs(p.Lng-geocoderFallback.Lng) < 1e-6
}

// loadStations reads a CSV with columns line,name,lon,lat (any order, by
// header). Rows that carry the geocoder fallback point are moved onto their
// line: each goes to the middle of the widest remaining gap (up to 3 km)
// between consecutive stations of that line (ordered along the line's main
// axis), the place a missing station most plausibly sits, plus a little jitter so
// two fallbacks never coincide.
func loadStations(path string, seed int64) ([]Station, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, k := range []string{"line", "name", "lon", "lat"} {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("%s: header lacks column %q", path, k)
		}
	}
	var st []Station
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		get := func(k string) string {
			if i := col[k]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		lon, err1 := strconv.ParseFloat(get("lon"), 64)
		lat, err2 := strconv.ParseFloat(get("lat"), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad lon/lat %q,%q", path, line, get("lon"), get("lat"))
		}
		st = append(st, Station{Name: get("name"), Line: get("line"), Pos: LatLng{lat, lon}})
	}
	if len(st) < 2 {
		return nil, fmt.Errorf("%s: %d stations, need at least 2", path, len(st))
	}
	placeFallbacks(st, seed)
	return st, nil
}

// maxGap is the widest spacing (km) still taken for a gap between two
// consecutive stations rather than a jump to a misplaced one.
const maxGap = 3.0

// placeFallbacks moves the fallback-point stations into the widest gaps of
// their lines; see loadStations.
func placeFallbacks(st []Station, seed int64) {
	r := newRNG(seed, saltLayout, 1, 0)
	byLine := map[string][]int{}
	var lines []string
	for i, s := range st {
		if _, ok := byLine[s.Line]; !ok {
			lines = append(lines, s.Line)
		}
		byLine[s.Line] = append(byLine[s.Line], i)
	}
	for _, ln := range lines {
		var good, lost []int
		for _, i := range byLine[ln] {
			if isFallback(st[i].Pos) {
				lost = append(lost, i)
			} else {
				good = append(good, i)
			}
		}
		if len(lost) == 0 {
			continue
		}
		if len(good) < 2 {
			for _, i := range lost {
				st[i].Pos = CityCenter.offset(r.normal()*2, r.normal()*2)
			}
			continue
		}
		// The line's main axis: the direction between its two farthest stations.
		var a, b int
		best := -1.0
		for x := range good {
			for y := x + 1; y < len(good); y++ {
				if d := distKm(st[good[x]].Pos, st[good[y]].Pos); d > best {
					best, a, b = d, good[x], good[y]
				}
			}
		}
		ex, ny := eastNorth(st[a].Pos, st[b].Pos)
		n := math.Hypot(ex, ny)
		ex, ny = ex/n, ny/n
		pts := make([]LatLng, 0, len(good)+len(lost))
		for _, i := range good {
			pts = append(pts, st[i].Pos)
		}
		along := func(p LatLng) float64 { e, no := eastNorth(st[a].Pos, p); return e*ex + no*ny }
		for _, i := range lost {
			sort.Slice(pts, func(x, y int) bool { return along(pts[x]) < along(pts[y]) })
			// Gaps over maxGap are outliers or branches, not a missing stop.
			gi, gap := -1, -1.0
			for _, limit := range []float64{maxGap, math.Inf(1)} {
				for k := 0; k+1 < len(pts); k++ {
					if d := distKm(pts[k], pts[k+1]); d > gap && d <= limit {
						gi, gap = k, d
					}
				}
				if gi >= 0 {
					break
				}
			}
			mid := LatLng{(pts[gi].Lat + pts[gi+1].Lat) / 2, (pts[gi].Lng + pts[gi+1].Lng) / 2}
			st[i].Pos = mid.offset(r.normal()*0.08, r.normal()*0.08)
			pts = append(pts, st[i].Pos)
		}
	}
}

// syntheticStations lays out lines crossing near Wulin Square at different
// bearings, slightly offset so they interchange instead of all meeting in one
// point, with stations about 1.2 km apart and a gentle curve.
func syntheticStations(n int, seed int64) []Station {
	r := newRNG(seed, saltLayout, 2, 0)
	lines := max(1, int(math.Round(float64(n)/20)))
	st := make([]Station, 0, n)
	for l := 0; l < lines; l++ {
		cnt := n / lines
		if l < n%lines {
			cnt++
		}
		bearing := math.Pi*float64(l)/float64(lines) + 0.35 + r.normal()*0.08
		ux, uy := math.Cos(bearing), math.Sin(bearing)
		perp := (float64(l) - float64(lines-1)/2) * 0.4
		bend := r.normal() * 0.6
		pos := -float64(cnt-1) / 2 * 1.2
		for k := 0; k < cnt; k++ {
			t := pos / 12
			side := perp + bend*t*t*4
			p := CityCenter.offset(ux*pos-uy*side, uy*pos+ux*side)
			st = append(st, Station{
				Name: fmt.Sprintf("L%d-%02d", l+1, k+1),
				Line: strconv.Itoa(l + 1),
				Pos:  p,
			})
			pos += 1.2 + r.normal()*0.2
		}
	}
	return st
}

// finishStations numbers the stations, gives them gates and the weights trips
// are drawn with: homes spread outward, jobs crowd the centre, and scenic
// trips end near West Lake.
func finishStations(st []Station, seed int64) {
	r := newRNG(seed, saltLayout, 3, 0)
	for i := range st {
		s := &st[i]
		s.ID = strconv.Itoa(i)
		dc := distKm(s.Pos, CityCenter)
		dl := distKm(s.Pos, WestLake)
		size := math.Exp(r.normal() * 0.45)
		s.home = size * (0.4 + math.Min(dc, 12)/8)
		s.work = size * (0.25 + 3*math.Exp(-dc/4))
		s.scenic = size*0.05 + 4*math.Exp(-dl/1.5)
		s.Gates = 8 + r.intn(25)
	}
}

// StationsCSV is the station registry file: id,name,lat,lng,line.
func (c *City) StationsCSV() []byte {
	return registryCSV([]string{"id", "name", "lat", "lng", "line"}, len(c.Stations), func(i int) []string {
		s := &c.Stations[i]
		return []string{s.ID, s.Name, ftoa(s.Pos.Lat), ftoa(s.Pos.Lng), s.Line}
	})
}

// registryCSV writes a registry file: the header, then row(i) for each of
// n entries.
func registryCSV(header []string, n int, row func(i int) []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	for i := range n {
		w.Write(row(i))
	}
	w.Flush()
	return b.Bytes()
}

func ftoa(v float64) string { return strconv.FormatFloat(round6(v), 'f', -1, 64) }
