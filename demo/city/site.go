package city

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Site is a scenic area with an approved capacity: Capacity people at once
// and DailyCapacity entries a day; Yellow, Orange and Red are the warning
// thresholds as fractions of Capacity.
type Site struct {
	ID            string
	Name          string
	Center        LatLng
	Polygon       []LatLng // closed exterior ring, counter-clockwise
	Capacity      int
	DailyCapacity int
	Yellow        float64
	Orange        float64
	Red           float64
	Gates         []string

	peak      [numDayTypes]float64 // peak occupancy as a fraction of Capacity
	stayHours float64
	gateShare []float64
	flow      [numDayTypes]siteFlow
	maxOcc    [numDayTypes]float64 // highest occupancy of the day type's curve
}

// siteFlow holds cumulative entries and exits since midnight at each minute
// of a day (1441 points); a minute's footfall is the difference of two
// floors, so counts are integers whose running sum is exactly the occupancy.
type siteFlow struct{ in, out []float64 }

// siteSpec is a site's published or plausible figures; radii in km.
type siteSpec struct {
	id, name                   string
	lat, lng                   float64
	rx, ry, rot                float64
	capacity, daily            int
	ordinary, weekend, holiday float64 // peak occupancy fractions
	stay                       float64
}

// scenicSites: West Lake's capacity is the published approved maximum
// (219,000 at once, 797,500 a day); the others are plausible.
var scenicSites = []siteSpec{
	{"west-lake", "West Lake 西湖", 30.2460, 120.1420, 1.5, 1.8, 0.1, 219000, 797500, 0.38, 0.62, 0.88, 3},
	{"lingyin-temple", "Lingyin Temple 灵隐寺", 30.2408, 120.1010, 0.45, 0.35, 0.4, 25000, 80000, 0.35, 0.6, 0.9, 2},
	{"leifeng-pagoda", "Leifeng Pagoda 雷峰塔", 30.2310, 120.1490, 0.18, 0.15, 0, 8000, 30000, 0.3, 0.55, 0.92, 1.2},
	{"hefang-street", "Hefang Street 河坊街", 30.2418, 120.1690, 0.6, 0.08, 0.05, 30000, 120000, 0.4, 0.65, 0.88, 1.5},
	{"xixi-wetland", "Xixi Wetland 西溪湿地", 30.2700, 120.0640, 1.2, 0.9, -0.3, 40000, 120000, 0.25, 0.5, 0.85, 3},
	{"broken-bridge", "Broken Bridge 断桥残雪", 30.2593, 120.1520, 0.15, 0.1, 0.6, 6000, 40000, 0.3, 0.6, 0.97, 0.7},
	{"su-causeway", "Su Causeway 苏堤", 30.2415, 120.1400, 0.05, 1.4, 0.08, 15000, 60000, 0.3, 0.55, 0.9, 1.5},
	{"bai-causeway", "Bai Causeway 白堤", 30.2570, 120.1470, 0.5, 0.04, -0.35, 8000, 45000, 0.3, 0.58, 0.95, 1},
	{"hubin-walk", "Hubin Pedestrian Street 湖滨步行街", 30.2560, 120.1625, 0.3, 0.35, 0, 25000, 100000, 0.42, 0.68, 0.9, 1.5},
	{"wushan-square", "Wushan Square 吴山广场", 30.2440, 120.1680, 0.2, 0.2, 0, 10000, 50000, 0.3, 0.5, 0.86, 1},
	{"huagang-fish", "Huagang Park 花港观鱼", 30.2330, 120.1430, 0.35, 0.3, 0.2, 10000, 40000, 0.28, 0.55, 0.9, 1.3},
	{"six-harmonies", "Six Harmonies Pagoda 六和塔", 30.2000, 120.1290, 0.2, 0.2, 0, 5000, 20000, 0.25, 0.45, 0.82, 1},
}

// buildSites takes the first n scenic sites and invents more around West Lake
// when n is larger than the list.
func buildSites(n int, seed int64) []Site {
	r := newRNG(seed, saltLayout, 5, 0)
	out := make([]Site, 0, n)
	for i := 0; i < n; i++ {
		var sp siteSpec
		if i < len(scenicSites) {
			sp = scenicSites[i]
		} else {
			c := WestLake.offset(r.normal()*3, r.normal()*3)
			capy := 2000 + r.intn(20000)
			sp = siteSpec{fmt.Sprintf("site-%02d", i+1), fmt.Sprintf("Scenic spot %d", i+1), c.Lat, c.Lng,
				0.1 + 0.3*r.float64(), 0.1 + 0.3*r.float64(), r.float64() * math.Pi, capy, capy * 4,
				0.2 + 0.2*r.float64(), 0.4 + 0.2*r.float64(), 0.8 + 0.17*r.float64(), 0.7 + r.float64()}
		}
		s := Site{
			ID: sp.id, Name: sp.name, Center: LatLng{sp.lat, sp.lng},
			Capacity: sp.capacity, DailyCapacity: sp.daily,
			Yellow: 0.8, Orange: 0.9, Red: 0.95,
			stayHours: sp.stay,
		}
		s.peak[dayWeekday], s.peak[dayWeekend], s.peak[dayHoliday] = sp.ordinary, sp.weekend, sp.holiday
		// An irregular 14-gon on the ellipse, wobbled by up to ±12 %.
		for k := 0; k < 14; k++ {
			a := 2 * math.Pi * float64(k) / 14
			f := 0.88 + 0.24*r.float64()
			x, y := sp.rx*math.Cos(a)*f, sp.ry*math.Sin(a)*f
			cr, sr := math.Cos(sp.rot), math.Sin(sp.rot)
			p := s.Center.offset(x*cr-y*sr, x*sr+y*cr)
			s.Polygon = append(s.Polygon, LatLng{round6(p.Lat), round6(p.Lng)})
		}
		s.Polygon = append(s.Polygon, s.Polygon[0])
		gates := 2 + int(math.Sqrt(float64(sp.capacity))/40)
		gates = min(gates, 16)
		total := 0.0
		for g := 0; g < gates; g++ {
			s.Gates = append(s.Gates, "g"+strconv.Itoa(g+1))
			w := 0.5 + r.float64()
			s.gateShare = append(s.gateShare, w)
			total += w
		}
		for g := range s.gateShare {
			s.gateShare[g] /= total
		}
		out = append(out, s)
	}
	return out
}

// SitesGeoJSON is the site registry file: a FeatureCollection of Polygon
// features whose properties carry id, name, capacity, daily_capacity and the
// yellow, orange and red thresholds.
func (c *City) SitesGeoJSON() []byte {
	type geometry struct {
		Type        string         `json:"type"`
		Coordinates [][][2]float64 `json:"coordinates"`
	}
	type props struct {
		ID            string  `json:"id"`
		Name          string  `json:"name"`
		Capacity      int     `json:"capacity"`
		DailyCapacity int     `json:"daily_capacity"`
		Yellow        float64 `json:"yellow"`
		Orange        float64 `json:"orange"`
		Red           float64 `json:"red"`
	}
	type feature struct {
		Type       string   `json:"type"`
		Geometry   geometry `json:"geometry"`
		Properties props    `json:"properties"`
	}
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{Type: "FeatureCollection", Features: []feature{}}
	for _, s := range c.Sites {
		ring := make([][2]float64, len(s.Polygon))
		for i, p := range s.Polygon {
			ring[i] = [2]float64{p.Lng, p.Lat}
		}
		fc.Features = append(fc.Features, feature{
			Type:     "Feature",
			Geometry: geometry{Type: "Polygon", Coordinates: [][][2]float64{ring}},
			Properties: props{s.ID, s.Name, s.Capacity, s.DailyCapacity,
				s.Yellow, s.Orange, s.Red},
		})
	}
	b, err := json.MarshalIndent(fc, "", " ")
	if err != nil {
		panic("BUG: site GeoJSON: " + err.Error())
	}
	return append(b, '\n')
}
