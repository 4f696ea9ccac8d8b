package vocab

import (
	"math"
	"slices"
	"strings"
)

// The metrics every flowd keeps. Detector counts add one metric per class,
// CountPrefix+class, and SpeedPrefix+class holding km/h × count so that a
// sum divided by the count's sum is the mean speed.
const (
	SwipesIn    = "swipes_in"
	SwipesOut   = "swipes_out"
	FootfallIn  = "footfall_in"
	FootfallOut = "footfall_out"

	// A trip is a tap-in matched with the same card's next tap-out within
	// the trip window; it is counted at (origin cell, minute of the tap-in)
	// with the destination cell as the bucket's sub-key. Taps that find no
	// partner are counted, never guessed.
	Trips        = "trips"         // sub: destination cell
	TripSeconds  = "trip_seconds"  // sub: destination cell; sum of travel times
	UnmatchedIn  = "unmatched_in"  // tap-ins with no tap-out in the window and no inferred destination
	UnmatchedOut = "unmatched_out" // tap-outs with no open tap-in

	// A tap-in with a line and no tap-out gets an inferred destination
	// from the same card's next tap-in that day (the previous line's stop
	// nearest to it) or, for the day's last leg, from its first origin
	// (see ingest's Inference). A leg is counted at (boarding cell, minute
	// of the tap-in) with the inferred alighting cell as sub-key; legs
	// whose tap-ins follow within the transfer window chain into one
	// trip, counted at (first boarding cell, its minute) with the last
	// leg's alighting cell. Kept apart from matched trips: they are a
	// guess, right about nine times in ten.
	LegsInferred  = "legs_inferred"  // sub: inferred alighting cell
	TripsInferred = "trips_inferred" // sub: inferred destination cell

	// DistinctCards holds HyperLogLog registers of hashed cards: sub is the
	// register, the value its rank.
	DistinctCards = sketchPrefix + "cards"

	CountPrefix = "count_"
	SpeedPrefix = "speed_"
)

// fixed are the metrics every flowd keeps, whatever it is sent; the
// others (two a detector class) are made by what arrives.
var fixed = map[string]bool{
	SwipesIn: true, SwipesOut: true, FootfallIn: true, FootfallOut: true,
	Trips: true, TripSeconds: true, UnmatchedIn: true, UnmatchedOut: true, DistinctCards: true,
	LegsInferred: true, TripsInferred: true, SwipesInStation: true, SwipesOutStation: true,
	FootfallInSite: true, FootfallOutSite: true,
}

// IsFixed reports whether name is one of the metrics every flowd keeps,
// which no cap on the number of metrics refuses.
func IsFixed(name string) bool { return fixed[name] }

// FixedMetrics lists the metrics every flowd keeps, sorted.
func FixedMetrics() []string {
	names := make([]string, 0, len(fixed))
	for m := range fixed {
		names = append(names, m)
	}
	slices.Sort(names)
	return names
}

// sketchPrefix starts the names of sketch metrics.
const sketchPrefix = "hll_"

// Kind is how two values of one bucket of a metric combine.
type Kind int

const (
	// Sum buckets add up: counts, seconds, km/h × count.
	Sum Kind = iota
	// Sketch buckets hold registers of a HyperLogLog sketch, one per
	// sub-key; the union of two sketches is the maximum per register.
	Sketch
)

// KindOf returns the kind of the metric named name.
func KindOf(name string) Kind {
	if strings.HasPrefix(name, sketchPrefix) {
		return Sketch
	}
	return Sum
}

// Combine merges two values of one bucket of a metric of kind k.
func (k Kind) Combine(a, b int64) int64 {
	if k == Sketch {
		return max(a, b)
	}
	return a + b
}

// Privacy is a metric's privacy class: what a small value of it can reveal.
type Privacy int

const (
	// Public metrics count vehicles or gate passages, not known people.
	Public Privacy = iota
	// People metrics count card holders' taps: a small value can single
	// out a person. They pass the privacy layer before anyone but an admin
	// sees them.
	People
	// Linked metrics join one card's taps (a trip between two places, its
	// travel time, a distinct-card sketch): besides the privacy layer they
	// stay off the live feed, where a frame could follow one journey.
	Linked
)

// PrivacyOf returns the privacy class of the metric named name.
func PrivacyOf(name string) Privacy {
	name = BaseMetric(name)
	switch {
	case name == Trips, name == TripSeconds, name == LegsInferred, name == TripsInferred, KindOf(name) == Sketch:
		return Linked
	case name == SwipesIn, name == SwipesOut, name == UnmatchedIn, name == UnmatchedOut:
		return People
	}
	return Public
}

// The per-entity families of a metric: the figures of sensors (detector
// counts), stations (swipes) or sites (footfall) that share a cell with
// another of their kind, each under its own key in place of the cell (see geo.Place), so
// that one entity's own series can be answered. Queries name them by
// sensor= or station=, never directly. They are of their metric's kind
// and privacy class.
const (
	SensorSuffix  = "@sensor"
	StationSuffix = "@station"
	SiteSuffix    = "@site"

	SwipesInStation  = SwipesIn + StationSuffix
	SwipesOutStation = SwipesOut + StationSuffix
	FootfallInSite   = FootfallIn + SiteSuffix
	FootfallOutSite  = FootfallOut + SiteSuffix
)

// PerSensor returns the name of the per-sensor family of a detector
// metric.
func PerSensor(metric string) string { return metric + SensorSuffix }

// IsPerEntity reports whether name is a per-sensor or per-station family.
func IsPerEntity(name string) bool {
	return strings.HasSuffix(name, SensorSuffix) || strings.HasSuffix(name, StationSuffix) || strings.HasSuffix(name, SiteSuffix)
}

// BaseMetric returns the metric a per-entity or per-group family keeps
// figures of, and any other name as it is.
func BaseMetric(name string) string {
	if i := strings.IndexByte(name, GroupSep); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 && IsPerEntity(name) {
		return name[:i]
	}
	return name
}

// GroupSep joins a metric and a rider group in the name of the metric's
// family for that group: swipes_in#student. Swipes and matched trips
// (trips, trip_seconds) of cards of a group are counted in their metric
// and in its group's family, which is of the metric's kind and privacy
// class.
const GroupSep = '#'

// InGroup returns the name of metric's family for a rider group.
func InGroup(metric, group string) string { return metric + string(GroupSep) + group }

// IsGrouped reports whether name is a rider group's family.
func IsGrouped(name string) bool { return strings.IndexByte(name, GroupSep) >= 0 }

// SpeedSum is what a detector reading adds to its class's speed metric:
// its mean speed (km/h) times its count, rounded half up. The product of
// a speed written in decimals and a count, in float64, can fall a hair
// below a tie (0.7 × 45 = 31.499999999999996, where 31.5 was meant), which
// rounding by adding a half then took down: about one reading in 500 of
// speeds in tenths summed one less. A tie is taken as one within 2^-40 of
// the product, thousands of times float64's error there, and closer than
// any product of a speed of up to ten significant digits comes to a tie
// without being one.
func SpeedSum(speed float64, count int64) int64 {
	x := speed * float64(count)
	return int64(math.Floor(x + 0.5 + x*0x1p-40))
}

// Spreads reports whether a metric holds interval readings (detector
// counts and their speeds), which a reading of several minutes spreads
// over them: the store keeps such a reading as one row of its first minute
// whose sub-key is its number of minutes, and reads it back as the even
// spread (see storage).
func Spreads(metric string) bool {
	return strings.HasPrefix(metric, CountPrefix) || strings.HasPrefix(metric, SpeedPrefix)
}
