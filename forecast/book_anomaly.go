package forecast

import (
	"cmp"
	"math"
	"slices"
)

// Anomaly is a series standing outside its baseline band: a station, site
// or cell with far more (or fewer) people than usual at this time of the
// week.
type Anomaly struct {
	Place  Place
	Metric string
	ID     string // the station's or site's id, or the cell's hex id
	Name   string
	Cell   uint64
	// Since is the minute the series was first flagged, Minute the one
	// scored last (unix minutes).
	Since, Minute int64
	Deviation
	// Released marks a card-derived series scored on the figures the
	// privacy layer released (settled bins of its time floor), which is
	// how callers below admin see it; the others are scored on exact
	// minutes.
	Released bool
}

// clearShare is how far back inside the band, as a share of the margin
// and of the least excess, a flagged series must come to be cleared, so
// that one hovering at the edge is flagged once.
const clearShare = 0.75

// flagged reports whether d is outside the band, for a series already
// flagged or not.
func flagged(d Deviation, ok, already bool, margin, minExcess float64) bool {
	if !ok {
		return false
	}
	if already {
		margin, minExcess = clearShare*margin, clearShare*minExcess
	}
	return math.Abs(d.Score) >= margin && math.Abs(d.Value-d.Expected) >= minExcess
}

// anomalies scores every series at minute last and returns those outside
// their band, the strongest first.
func (b *book) anomalies(last int64, margin, minExcess float64) []Anomaly {
	var out []Anomaly
	check := func(s *series) {
		d, ok := s.model.Deviation()
		if !flagged(d, ok, s.since != 0, margin, minExcess) {
			s.since = 0
		} else {
			if s.since == 0 {
				s.since = last
			}
			out = append(out, s.anomaly(d, s.since, last, false))
		}
		if w := s.twin; w != nil {
			if !flagged(w.last, w.lastOK, w.since != 0, margin, minExcess) {
				w.since = 0
				return
			}
			if w.since == 0 {
				w.since = w.lastAt * int64(w.model.p.Bin)
			}
			out = append(out, s.anomaly(w.last, w.since, (w.lastAt+1)*int64(w.model.p.Bin)-1, true))
		}
	}
	for _, s := range b.byKey {
		check(s)
	}
	for _, s := range b.bySite {
		check(s)
	}
	slices.SortFunc(out, func(a, b Anomaly) int {
		if c := cmp.Compare(math.Abs(b.Score), math.Abs(a.Score)); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (s *series) anomaly(d Deviation, since, minute int64, released bool) Anomaly {
	return Anomaly{Place: s.place, Metric: s.metric, ID: s.id, Name: s.name, Cell: s.cell,
		Since: since, Minute: minute, Deviation: d, Released: released}
}
