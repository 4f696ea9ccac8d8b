package ingest

import (
	"sync"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/uber/h3-go/v4"
)

// Inference infers where the legs of tap-in-only lines end (buses, flat-fare
// metros), by trip chaining as Munizaga & Palma and UrbanTrips do: a card's
// next tap-in the same service day gives the previous leg's alighting stop,
// the previous line's stop nearest to it, if one lies within MaxWalkKm; the
// day's last leg is taken to end at the line's stop nearest to the day's
// first boarding. Legs whose tap-ins follow within Transfer chain into one
// trip.
//
// A line's stops are the registry's stations of that line when it has any;
// otherwise the cells its riders were seen boarding at (a bus line without
// a stop file), learned as taps arrive and kept in memory only.
type Inference struct {
	Registry *geo.Registry
	// MaxWalkKm is the farthest an inferred alighting stop may lie from
	// where the card next boards [DefaultMaxWalkKm].
	MaxWalkKm float64
	// Transfer is the longest time between two tap-ins of one trip
	// [DefaultTransfer].
	Transfer time.Duration
	// DayStart is when the service day starts, after midnight in Loc
	// [DefaultDayStart]; nil Loc is UTC.
	DayStart time.Duration
	Loc      *time.Location

	// lines interns line names to ids from 1, names by id, so that a tap
	// holds no pointer and a leg keeps no request's memory.
	mu        sync.RWMutex
	lines     map[string]uint32
	lineNames []string
	// learned holds the boarding cells seen of each line; used only
	// under the matcher's lock.
	learned map[string]*learnedStops
}

// The defaults of Inference. UrbanTrips checks an inferred destination
// against the line's stops within 2.2 km and chains legs within two
// hours; flowd's defaults are tighter, a walk of a kilometre and an hour
// between tap-ins, so that a guess is wrong less often.
const (
	DefaultMaxWalkKm = 1.0
	DefaultTransfer  = time.Hour
	DefaultDayStart  = 3 * time.Hour
)

// Bounds of what Inference learns and interns, so that a stream of odd
// line names or positions cannot grow it without end.
const (
	maxLines          = 1 << 16
	maxLearnedStops   = 4096
	maxInternedLength = 256
)

// learnedStops are the distinct boarding cells of one line and their
// centres.
type learnedStops struct {
	seen  map[uint64]bool
	stops []stop
}

type stop struct {
	cell     uint64
	lat, lng float64
}

func (inf *Inference) maxWalkKm() float64 {
	if inf.MaxWalkKm <= 0 {
		return DefaultMaxWalkKm
	}
	return inf.MaxWalkKm
}

func (inf *Inference) transfer() int64 {
	if inf.Transfer <= 0 {
		return int64(DefaultTransfer / time.Second)
	}
	return int64(inf.Transfer / time.Second)
}

// lineID returns the id of a line's interned name, 0 for none or one
// past the bounds (whose legs then are not inferred).
func (inf *Inference) lineID(name string) uint32 {
	if name == "" || len(name) > maxInternedLength {
		return 0
	}
	inf.mu.RLock()
	id, ok := inf.lines[name]
	inf.mu.RUnlock()
	if ok {
		return id
	}
	inf.mu.Lock()
	defer inf.mu.Unlock()
	if id, ok := inf.lines[name]; ok {
		return id
	}
	if inf.lines == nil {
		inf.lines = map[string]uint32{}
		inf.lineNames = []string{""}
	}
	if len(inf.lines) >= maxLines {
		return 0
	}
	l := string([]byte(name)) // a copy: name aliases a request's buffer
	id = uint32(len(inf.lineNames))
	inf.lines[l] = id
	inf.lineNames = append(inf.lineNames, l)
	return id
}

// lineName returns the interned name of a line id, "" for 0.
func (inf *Inference) lineName(id uint32) string {
	if id == 0 {
		return ""
	}
	inf.mu.RLock()
	defer inf.mu.RUnlock()
	return inf.lineNames[id]
}

// dayEnd returns the end of the service day holding unix second sec.
func (inf *Inference) dayEnd(sec int64) int64 {
	loc := inf.Loc
	if loc == nil {
		loc = time.UTC
	}
	start := inf.DayStart
	if start == 0 {
		start = DefaultDayStart
	}
	t := time.Unix(sec, 0).In(loc)
	end := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc).Add(start)
	for !end.After(t) {
		end = time.Date(end.Year(), end.Month(), end.Day()+1, 0, 0, 0, 0, loc).Add(start)
	}
	return end.Unix()
}

// learn notes that a rider boarded line at cell.
func (inf *Inference) learn(line string, cell uint64) {
	if inf.learned == nil {
		inf.learned = map[string]*learnedStops{}
	}
	ls := inf.learned[line]
	if ls == nil {
		ls = &learnedStops{seen: map[uint64]bool{}}
		inf.learned[line] = ls
	}
	if ls.seen[cell] || len(ls.stops) >= maxLearnedStops {
		return
	}
	ls.seen[cell] = true
	ll := h3.Cell(cell).LatLng()
	ls.stops = append(ls.stops, stop{cell, ll.Lat, ll.Lng})
}

// alight returns the stop of line nearest to cell, if one lies within
// the walking distance.
func (inf *Inference) alight(line string, cell uint64) (uint64, bool) {
	ll := h3.Cell(cell).LatLng()
	best, bestKm := uint64(0), inf.maxWalkKm()
	found := false
	consider := func(c uint64, slat, slng float64) {
		if km := geo.DistanceKm(ll.Lat, ll.Lng, slat, slng); km <= bestKm {
			best, bestKm, found = c, km, true
		}
	}
	if stations := inf.Registry.StationsOnLine(line); len(stations) > 0 {
		for _, st := range stations {
			consider(uint64(st.Cell), st.Lat, st.Lng)
		}
		return best, found
	}
	if ls := inf.learned[line]; ls != nil {
		for _, s := range ls.stops {
			consider(s.cell, s.lat, s.lng)
		}
	}
	return best, found
}
