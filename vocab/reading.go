package vocab

// SiteReading is a durable gate reading at a scenic site, as the live site
// tracker receives it: entries and exits over an interval, an instantaneous
// occupancy, or both.
type SiteReading struct {
	Time         int64 // unix milliseconds
	Site         string
	In, Out      int64
	Occupancy    int64
	HasOccupancy bool
}
