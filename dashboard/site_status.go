package dashboard

import (
	"time"

	"github.com/flowd/flowd/geo"
)

// trendStep and trendPoints shape a site's trend: occupancy at the end of
// each 5-minute step over the last hour, and now.
const (
	trendStep   = 5 * time.Minute
	trendPoints = 12
)

// SiteStatus is a site's state as GET /api/v1/sites/{id}/status answers it.
type SiteStatus struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	Occupancy     int64        `json:"occupancy"`
	Capacity      int64        `json:"capacity"`
	Ratio         float64      `json:"ratio"`
	Level         Level        `json:"level"`
	Yellow        float64      `json:"yellow"`
	Orange        float64      `json:"orange"`
	Red           float64      `json:"red"`
	EntriesToday  int64        `json:"entries_today"`
	ExitsToday    int64        `json:"exits_today"`
	DailyCapacity int64        `json:"daily_capacity"`
	DailyRatio    float64      `json:"daily_ratio"`
	DailyLevel    Level        `json:"daily_level"`
	DayStart      time.Time    `json:"day_start"`
	Updated       *time.Time   `json:"updated,omitempty"`
	Trend         []TrendPoint `json:"trend"`
}

// TrendPoint is a site's occupancy at the end of a 5-minute step, or now
// for the last point.
type TrendPoint struct {
	Time      time.Time `json:"t"`
	Occupancy int64     `json:"occupancy"`
}

// Status returns the status of the site with id.
func (s *Sites) Status(id string) (SiteStatus, bool) {
	site, ok := s.reg.Site(id)
	if !ok {
		return SiteStatus{}, false
	}
	if s.replaysLive() {
		st, err := s.statusAt(&site, s.opts.Now())
		if err != nil {
			s.opts.Logf("sites: %v", err)
		}
		return st, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUpLocked()
	return s.statusLocked(&site, s.opts.Now()), true
}

// All returns the status of every site, sorted by id.
func (s *Sites) All() []SiteStatus {
	if s.replaysLive() {
		out, err := s.AllAt(s.opts.Now())
		if err != nil {
			s.opts.Logf("sites: %v", err)
		}
		return out
	}
	sites := s.reg.Sites()
	out := make([]SiteStatus, 0, len(sites))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUpLocked()
	now := s.opts.Now()
	for i := range sites {
		out = append(out, s.statusLocked(&sites[i], now))
	}
	return out
}

func (s *Sites) statusLocked(site *geo.Site, now time.Time) SiteStatus {
	return statusOf(site, s.stateLocked(site, now), now)
}

// statusOf is the status of site in state ss at now.
func statusOf(site *geo.Site, ss *siteState, now time.Time) SiteStatus {
	d := ss.day
	occ := d.occupancy()
	st := SiteStatus{
		ID: site.ID, Name: site.Name, Occupancy: occ, Capacity: site.Capacity,
		Ratio: round4(float64(occ) / float64(site.Capacity)), Level: ss.level,
		Yellow: site.Yellow, Orange: site.Orange, Red: site.Red,
		EntriesToday: d.entries, ExitsToday: d.exits, DailyCapacity: site.DailyCapacity,
		DailyLevel: ss.dailyLevel, DayStart: time.UnixMilli(d.start).UTC(), Trend: ss.trend(now),
	}
	if site.DailyCapacity > 0 {
		st.DailyRatio = round4(float64(d.entries) / float64(site.DailyCapacity))
	}
	if !ss.updated.IsZero() {
		u := ss.updated.UTC()
		st.Updated = &u
	}
	return st
}

// trend returns the occupancy at the end of each 5-minute step of the
// last hour and now: the whole hour, the day before's last minutes
// included when the day began within it. Only a step before anything
// flowd knows of (a site added less than an hour ago) is left out.
func (ss *siteState) trend(now time.Time) []TrendPoint {
	step := int64(trendStep / time.Millisecond)
	last := now.UnixMilli() / step
	var ends []int64
	for i := last - trendPoints; i < last; i++ {
		ends = append(ends, (i+1)*step)
	}
	var cur, prev []int64
	for _, e := range ends {
		switch {
		case e > ss.day.start:
			cur = append(cur, e)
		case ss.prev != nil && e > ss.prev.start:
			prev = append(prev, e)
		}
	}
	out := make([]TrendPoint, 0, trendPoints+1)
	for _, part := range []struct {
		d    *siteDay
		ends []int64
	}{{ss.prev, prev}, {ss.day, cur}} {
		if len(part.ends) == 0 {
			continue
		}
		occ := make([]int64, len(part.ends))
		part.d.occupancyAt(part.ends, occ)
		for i, e := range part.ends {
			out = append(out, TrendPoint{time.UnixMilli(e).UTC(), occ[i]})
		}
	}
	return append(out, TrendPoint{now.UTC().Truncate(time.Second), ss.day.occupancy()})
}

// replaysLive reports whether the live status is a replay of now
// (ReadFrom).
func (s *Sites) replaysLive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replayLive
}

// footfall returns where the stored footfall is read.
func (s *Sites) footfall() FootfallSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.source
}
