// Package city generates a synthetic, deterministic Hangzhou for benchmarks
// and demos: metro stations with card taps, roadside detectors with counts
// and scenic sites with footfall, on daily rhythms, plus the registry files
// flowd loads, AFC-competition-style swipe files with an exact OD ground
// truth, and a Feeder that posts it all to a flowd server.
//
// Every minute is generated from (Seed, minute) alone, so a minute can be
// regenerated on its own, in any order, from any goroutine, with the same
// result: a trip's tap-in and tap-out are drawn from the same stream.
package city

import (
	"time"
)

// Config says which city to build. Zero fields take the defaults.
type Config struct {
	Seed     int64
	Stations int // synthetic metro stations; default 81 (AFC stationIDs 0..80)
	Cameras  int // roadside detectors; default 2000
	Sites    int // scenic sites; default 12
	// Scale 1 is an ordinary day: about 3 million metro taps on a weekday
	// and detector counts of a busy city. Taps and counts grow linearly.
	Scale float64
	// Start is the first simulated minute Feeder.Run and WriteFiles use
	// when given a zero from; default Monday 2019-01-07 00:00 in Hangzhou.
	Start time.Time
	// Holiday runs every day on the holiday rhythm: less commuting, trips
	// and traffic towards the scenic area, sites filling past 80–95 %.
	Holiday bool
	// Shift moves the city's hours: its rhythm at time t is Hangzhou's at
	// t+Shift (whole minutes), so a live demo or a test at any hour can
	// show a Hangzhou afternoon. The AFC files and their OD truth keep
	// Hangzhou's own days: leave it zero for them.
	Shift time.Duration
	// StationsFile is an optional CSV with columns line,name,lon,lat (like
	// hangzhou-metro-stations.csv); when readable it replaces the synthetic
	// stations and Stations is ignored.
	StationsFile string
}

// DefaultStart is Monday 7 January 2019, 00:00 in Hangzhou, the first
// weekday of the 2019 AFC competition data.
var DefaultStart = time.Date(2019, 1, 7, 0, 0, 0, 0, Hangzhou)

// City is a generated Hangzhou. Its fields are read-only after New; all
// methods are safe for concurrent use.
type City struct {
	Stations []Station // index = AFC stationID
	Sensors  []Sensor
	Sites    []Site
	// StationsErr is why StationsFile was not used, nil when it was or
	// when none was given.
	StationsErr error

	cfg        Config
	shift      int64 // Shift in minutes
	rhythm     [numDayTypes]*dayRhythm
	od         [numProfiles]odTable
	pool       cardPool
	stationCum []float64
}

// New builds the city cfg describes; the same Config always builds the same
// city and the same events.
func New(cfg Config) *City {
	if cfg.Stations <= 0 {
		cfg.Stations = 81
	}
	if cfg.Cameras <= 0 {
		cfg.Cameras = 2000
	}
	if cfg.Sites <= 0 {
		cfg.Sites = 12
	}
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	c := &City{cfg: cfg, shift: int64(cfg.Shift / time.Minute)}
	if cfg.StationsFile != "" {
		c.Stations, c.StationsErr = loadStations(cfg.StationsFile, cfg.Seed)
	}
	if c.Stations == nil {
		c.Stations = syntheticStations(cfg.Stations, cfg.Seed)
	}
	if len(c.Stations) > 1<<16 {
		panic("BUG: more than 65536 stations")
	}
	finishStations(c.Stations, cfg.Seed)
	c.Sensors = buildSensors(cfg.Cameras, cfg.Seed)
	c.Sites = buildSites(cfg.Sites, cfg.Seed)
	for i := range c.Sites {
		c.Sites[i].buildFlows(cfg.Seed, i)
	}
	for dt := dayType(0); dt < numDayTypes; dt++ {
		c.rhythm[dt] = buildRhythm(dt, cfg.Scale)
	}
	c.od = buildOD(c.Stations, cfg.Seed)
	c.pool = newCardPool(cfg.Scale)
	sum := 0.0
	for _, s := range c.Stations {
		sum += s.home + s.work
		c.stationCum = append(c.stationCum, sum)
	}
	return c
}

// Config is the configuration the city was built with, defaults filled in.
func (c *City) Config() Config { return c.cfg }

// CardPool is the number of cards that make trips (about Scale × 1.5 M).
func (c *City) CardPool() int { return int(c.pool.size) }
