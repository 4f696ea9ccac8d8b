package city

import (
	"fmt"
	"math"
)

// Sensor is a roadside detector: a camera counts every class, radar and
// inductive loops see motor vehicles only. Each position along a road has
// one sensor per side (direction of travel).
type Sensor struct {
	ID   string
	Name string
	Kind string // "camera", "radar" or "loop"
	Pos  LatLng

	base      [numClasses]float64 // mean count per minute at the daily peak, Scale 1
	freeSpeed float64             // km/h when the road is empty
	congest   float64             // how much the peak slows traffic (0..0.7)
	scenic    float64             // extra holiday traffic near West Lake (fraction)
}

// mainRoads are the arterials cameras line; the geometry is synthetic
// (straight segments across the city), the names are Hangzhou's.
var mainRoads = []string{
	"Yan'an Rd", "Tianmushan Rd", "Moganshan Rd", "Jiefang Rd",
	"Qingchun Rd", "Zhonghe Elevated", "Wensan Rd", "Qiutao Rd",
}

// buildSensors puts n sensors on the main roads, positions 150–300 m apart,
// one sensor on each side of the road.
func buildSensors(n int, seed int64) []Sensor {
	r := newRNG(seed, saltLayout, 4, 0)
	type road struct {
		name          string
		mid           LatLng
		ux, uy        float64
		pos           float64 // next position along the road, km from mid
		free, congest float64
		next          int // positions placed
	}
	roads := make([]road, len(mainRoads))
	for i := range roads {
		bearing := math.Pi*float64(i)/float64(len(roads)) + r.normal()*0.15
		roads[i] = road{
			name:    mainRoads[i],
			mid:     CityCenter.offset(r.normal()*2.5, r.normal()*2.5),
			ux:      math.Cos(bearing),
			uy:      math.Sin(bearing),
			free:    50 + 15*r.float64(),
			congest: 0.45 + 0.25*r.float64(),
		}
	}
	perRoad := (n + 2*len(roads) - 1) / (2 * len(roads))
	for i := range roads {
		// Centre the road's positions on its midpoint.
		roads[i].pos = -float64(perRoad-1) / 2 * 0.225
	}
	out := make([]Sensor, 0, n)
	for len(out) < n {
		for i := range roads {
			rd := &roads[i]
			p := rd.mid.offset(rd.ux*rd.pos, rd.uy*rd.pos)
			kind := "camera"
			switch u := r.float64(); {
			case u < 0.1:
				kind = "loop"
			case u < 0.3:
				kind = "radar"
			}
			size := math.Exp(r.normal() * 0.35)
			scenic := 0.8 * math.Exp(-distKm(p, WestLake)/2)
			for side := 0; side < 2 && len(out) < n; side++ {
				dir := "NE"
				off := 0.012
				if side == 1 {
					dir, off = "SW", -0.012
				}
				s := Sensor{
					ID:        fmt.Sprintf("cam-%04d", len(out)),
					Name:      fmt.Sprintf("%s #%03d %s", rd.name, rd.next, dir),
					Kind:      kind,
					Pos:       p.offset(-rd.uy*off, rd.ux*off),
					freeSpeed: rd.free,
					congest:   rd.congest,
					scenic:    scenic,
				}
				s.base[ClassCar] = 22 * size
				s.base[ClassBus] = 1.2 * size
				s.base[ClassTruck] = 0.8 * size
				if kind == "camera" {
					s.base[ClassBike] = 6 * size
					s.base[ClassPerson] = 9 * size * (0.5 + 1.5*math.Exp(-distKm(p, CityCenter)/3))
				}
				out = append(out, s)
			}
			rd.next++
			rd.pos += 0.15 + 0.15*r.float64()
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// SensorsCSV is the sensor registry file: id,name,lat,lng,kind.
func (c *City) SensorsCSV() []byte {
	return registryCSV([]string{"id", "name", "lat", "lng", "kind"}, len(c.Sensors), func(i int) []string {
		s := &c.Sensors[i]
		return []string{s.ID, s.Name, ftoa(s.Pos.Lat), ftoa(s.Pos.Lng), s.Kind}
	})
}
