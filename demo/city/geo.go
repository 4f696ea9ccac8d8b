package city

import "math"

// LatLng is a WGS-84-ish point in degrees (the station file is likely GCJ-02;
// the generator does not care, it only needs consistent metres).
type LatLng struct{ Lat, Lng float64 }

// Reference points of the generated Hangzhou.
var (
	// CityCenter is Wulin Square, the hub synthetic metro lines radiate from.
	CityCenter = LatLng{30.2741, 120.1551}
	// WestLake is the centre of West Lake, around which the scenic sites lie.
	WestLake = LatLng{30.2460, 120.1420}
)

const (
	kmPerDegLat = 110.574
	kmPerDegLng = 111.320
)

// offset moves p by east and north kilometres (equirectangular, fine at city scale).
func (p LatLng) offset(eastKm, northKm float64) LatLng {
	return LatLng{
		Lat: p.Lat + northKm/kmPerDegLat,
		Lng: p.Lng + eastKm/(kmPerDegLng*math.Cos(p.Lat*math.Pi/180)),
	}
}

// distKm is the equirectangular distance in kilometres.
func distKm(a, b LatLng) float64 {
	dy := (a.Lat - b.Lat) * kmPerDegLat
	dx := (a.Lng - b.Lng) * kmPerDegLng * math.Cos((a.Lat+b.Lat)/2*math.Pi/180)
	return math.Hypot(dx, dy)
}

// eastNorth is b relative to a in kilometres.
func eastNorth(a, b LatLng) (east, north float64) {
	return (b.Lng - a.Lng) * kmPerDegLng * math.Cos(a.Lat*math.Pi/180), (b.Lat - a.Lat) * kmPerDegLat
}

// round6 keeps registry coordinates at 6 decimals (about 0.1 m).
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
