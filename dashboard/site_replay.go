package dashboard

import (
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
)

// AllAt returns the status every site had at a past time, from the store,
// for a replay: the day's stored entries and exits up to at by the
// occupancy rule, the occupancy level as the tracker would have moved it
// through the day (from normal at the day start, with hysteresis), the
// daily level the day's entries had reached, and the trend of the hour
// before. Occupancy readings are not stored, so a replay counts the gates
// alone. Days past the minute retention are read from the hourly rollups.
func (s *Sites) AllAt(at time.Time) ([]SiteStatus, error) {
	sites := s.reg.Sites()
	out := make([]SiteStatus, 0, len(sites))
	for i := range sites {
		st, err := s.statusAt(&sites[i], at)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Sites) statusAt(site *geo.Site, at time.Time) (SiteStatus, error) {
	day := s.dayStart(at)
	ss := &siteState{day: s.newDay(day), prev: s.newDay(s.dayStart(day.Add(-time.Millisecond)))}
	src := s.footfall()
	cutoff := src.RetentionCutoff(storage.TierMinute) * 60000
	until := at.UnixMilli() + 1
	for _, d := range []*siteDay{ss.prev, ss.day} {
		tier := storage.TierMinute
		if d.start < cutoff {
			tier = storage.TierHour
		}
		if err := scanDays(src, tier, site, []*siteDay{d}, min(until, d.end)); err != nil {
			return SiteStatus{}, err
		}
	}
	th := thresholds(site)
	ss.day.walk(func(_ int, occ int64) {
		ss.level = nextLevel(ss.level, float64(occ)/float64(site.Capacity), th, s.opts.Hysteresis)
	})
	if site.DailyCapacity > 0 {
		ss.dailyLevel = nextLevel(LevelNormal, float64(ss.day.entries)/float64(site.DailyCapacity), th, 0)
	}
	return statusOf(site, ss, at), nil
}
