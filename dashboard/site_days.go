package dashboard

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// maxDaysSpan bounds the days one GET /api/v1/sites/{id}/days covers: ten
// years, a park's whole history in the hourly tier.
const maxDaysSpan = 3700

// SiteDay is one site day as GET /api/v1/sites/{id}/days lists it, from
// the stored entries and exits by the rule of siteDay (occupancy readings
// are not stored).
type SiteDay struct {
	Date          string     `json:"date"` // the local date the day starts on
	Start         time.Time  `json:"start"`
	Entries       int64      `json:"entries"`
	Exits         int64      `json:"exits"`
	PeakOccupancy int64      `json:"peak_occupancy"`
	PeakTime      *time.Time `json:"peak_time,omitempty"` // minute tier only
	PeakRatio     float64    `json:"peak_ratio"`          // of the capacity
	DailyRatio    float64    `json:"daily_ratio"`         // of the daily capacity
	Level         Level      `json:"level"`               // the highest the peak reached
	DailyLevel    Level      `json:"daily_level"`         // the highest the entries reached
	Tier          string     `json:"tier"`                // "minute", or "hour" past the minute retention
}

// SiteDays is the answer of GET /api/v1/sites/{id}/days: the days of
// [from, to) with any footfall, oldest first, and how many of them reached
// each level, by occupancy and by daily entries.
type SiteDays struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Capacity      int64             `json:"capacity"`
	DailyCapacity int64             `json:"daily_capacity"`
	From          time.Time         `json:"from"`
	To            time.Time         `json:"to"`
	Days          []SiteDay         `json:"days"`
	Crossed       map[string]Counts `json:"crossed"` // "occupancy", "daily"
	answer.Took
}

// Counts is how many days reached each level (at least it: a red day
// counts as yellow and orange too).
type Counts struct {
	Yellow int `json:"yellow"`
	Orange int `json:"orange"`
	Red    int `json:"red"`
}

func (c *Counts) add(l Level) {
	if l >= LevelYellow {
		c.Yellow++
	}
	if l >= LevelOrange {
		c.Orange++
	}
	if l >= LevelRed {
		c.Red++
	}
}

// Days returns the site days of site that begin in [from, to).
func (s *Sites) Days(site *geo.Site, from, to time.Time) (*SiteDays, error) {
	var days []*siteDay
	for start := s.dayStart(from); start.Before(to); {
		if len(days) == maxDaysSpan {
			return nil, &answer.ParamError{Param: "from", Value: from.Format(time.DateOnly), Reason: fmt.Sprintf("more than %d days before to", maxDaysSpan)}
		}
		d := s.newDay(start)
		days = append(days, d)
		start = time.UnixMilli(d.end).In(s.opts.Location)
	}
	// A day wholly in the minute tier is read there; an older one from the
	// hourly rollups, whose peaks are those of hour ends.
	src := s.footfall()
	cutoff := src.RetentionCutoff(storage.TierMinute) * 60000
	split := sort.Search(len(days), func(i int) bool { return days[i].start >= cutoff })
	for _, p := range []struct {
		tier storage.Tier
		days []*siteDay
	}{{storage.TierHour, days[:split]}, {storage.TierMinute, days[split:]}} {
		if err := scanDays(src, p.tier, site, p.days, 0); err != nil {
			return nil, err
		}
	}
	out := &SiteDays{ID: site.ID, Name: site.Name, Capacity: site.Capacity, DailyCapacity: site.DailyCapacity,
		From: s.dayStart(from).UTC(), To: to.UTC(), Days: []SiteDay{}, Crossed: map[string]Counts{}}
	var occ, daily Counts
	for i, d := range days {
		if d.entries == 0 && d.exits == 0 {
			continue
		}
		sd := s.summary(site, d, i >= split)
		occ.add(sd.Level)
		daily.add(sd.DailyLevel)
		out.Days = append(out.Days, sd)
	}
	out.Crossed["occupancy"], out.Crossed["daily"] = occ, daily
	return out, nil
}

// summary is what a day's figures say against the site's capacities.
func (s *Sites) summary(site *geo.Site, d *siteDay, minuteTier bool) SiteDay {
	start := time.UnixMilli(d.start).In(s.opts.Location)
	peak, at := d.peak()
	th := thresholds(site)
	sd := SiteDay{Date: start.Format(time.DateOnly), Start: start.UTC(), Entries: d.entries, Exits: d.exits,
		PeakOccupancy: peak, PeakRatio: round4(float64(peak) / float64(site.Capacity)), Tier: "hour"}
	sd.Level = nextLevel(LevelNormal, float64(peak)/float64(site.Capacity), th, 0)
	if site.DailyCapacity > 0 {
		daily := float64(d.entries) / float64(site.DailyCapacity)
		sd.DailyRatio, sd.DailyLevel = round4(daily), nextLevel(LevelNormal, daily, th, 0)
	}
	if minuteTier {
		sd.Tier = "minute"
		if at > 0 {
			t := time.UnixMilli(at).UTC()
			sd.PeakTime = &t
		}
	}
	return sd
}

// scanDays adds site's stored entries and exits in tier t to days, which
// follow one another, up to the unix ms until (0: to the last day's end).
func scanDays(st FootfallSource, t storage.Tier, site *geo.Site, days []*siteDay, until int64) error {
	if len(days) == 0 {
		return nil
	}
	if until == 0 {
		until = days[len(days)-1].end
	}
	from, to := days[0].start/60000, (until+59999)/60000
	ranges := []vocab.CellRange{{Lo: uint64(site.Cell), Hi: uint64(site.Cell)}}
	for _, m := range []struct {
		name    string
		in, out int64
	}{{vocab.FootfallIn, 1, 0}, {vocab.FootfallOut, 0, 1}} {
		err := st.Scan(t, m.name, ranges, from, to, func(_ uint64, minute, v int64) {
			ms := minute * 60000
			i := sort.Search(len(days), func(i int) bool { return days[i].end > ms })
			if i < len(days) {
				if k := days[i].minute(ms); k >= 0 {
					days[i].addFlows(k, m.in*v, m.out*v)
				}
			}
		})
		if err != nil {
			return fmt.Errorf("site %q: footfall from the store: %w", site.ID, err)
		}
	}
	return nil
}

// AppendCSV appends the days as a CSV table with a header row.
func (sd *SiteDays) AppendCSV(dst []byte) []byte {
	dst = append(dst, "date,start,entries,exits,peak_occupancy,peak_time,peak_ratio,daily_ratio,level,daily_level,tier\n"...)
	for i := range sd.Days {
		d := &sd.Days[i]
		peak := ""
		if d.PeakTime != nil {
			peak = d.PeakTime.Format(time.RFC3339)
		}
		dst = fmt.Appendf(dst, "%s,%s,%d,%d,%d,%s,%s,%s,%s,%s,%s\n", d.Date, d.Start.Format(time.RFC3339), d.Entries, d.Exits,
			d.PeakOccupancy, peak, strconv.FormatFloat(d.PeakRatio, 'f', -1, 64), strconv.FormatFloat(d.DailyRatio, 'f', -1, 64),
			d.Level, d.DailyLevel, d.Tier)
	}
	return dst
}

// parseDay reads a from or to parameter: a local date (YYYY-MM-DD, the
// site day starting on it), a time flowd reads anywhere (RFC 3339, unix
// seconds or milliseconds), or a duration before now such as -720h.
func (s *Sites) parseDay(name, v string, def time.Time) (time.Time, error) {
	switch {
	case v == "":
		return def, nil
	case v == "now":
		return s.opts.Now(), nil
	case strings.HasPrefix(v, "-"):
		if d, err := time.ParseDuration(v[1:]); err == nil {
			return s.opts.Now().Add(-d), nil
		}
	}
	if d, err := time.ParseInLocation(time.DateOnly, v, s.opts.Location); err == nil {
		return d.Add(s.opts.DayStart), nil
	}
	ms, err := vocab.ParseTime(v)
	if err != nil {
		return time.Time{}, &answer.ParamError{Param: name, Value: v, Reason: "want a date YYYY-MM-DD, " + err.Error()}
	}
	return time.UnixMilli(ms), nil
}

// DaysQuery parses the parameters of GET /api/v1/sites/{id}/days: from
// (default the day 30 days before today's) and to (default now, so today
// is listed), and runs it.
func (s *Sites) DaysQuery(id string, param func(string) string) (*SiteDays, error) {
	site, ok := s.reg.Site(id)
	if !ok {
		return nil, errUnknownSite(id)
	}
	now := s.opts.Now()
	to, err := s.parseDay("to", param("to"), now)
	if err != nil {
		return nil, err
	}
	from, err := s.parseDay("from", param("from"), s.dayStart(now).AddDate(0, 0, -30))
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, &answer.ParamError{Param: "from", Value: param("from"), Reason: "must be before to"}
	}
	return s.Days(&site, from, to)
}

// errUnknownSite is the error of a site id the registry does not hold.
type errUnknownSite string

func (e errUnknownSite) Error() string { return "unknown site " + strconv.Quote(string(e)) }
