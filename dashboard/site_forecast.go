package dashboard

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// DefaultWarnHorizon is how far ahead a site's occupancy forecast is
// watched for a level it will reach.
const DefaultWarnHorizon = time.Hour

// siteWarnings raises predictive warnings: once a minute, after the
// forecast tracker has fed the minute, it forecasts each site's occupancy
// over the horizon and, when the upper end of the interval reaches a level
// above the site's current one, raises a forecast alert naming that level
// and when it is expected ("time to red"), on the alerts' channels (the
// history, the live feed as type "forecast", the webhook). The warning
// clears, with another forecast alert, when the forecast falls back below
// the level (by the sites' hysteresis, for warnHold minutes) or the
// site's real level reaches it.
type siteWarnings struct {
	sites   *Sites
	reg     *geo.Registry
	tracker *forecast.Tracker
	horizon int64 // minutes
	raise   func(Alert)

	mu     sync.Mutex // Advance calls minute from one goroutine; this guards tests' reads
	warned map[string]*warning
}

// warning is a site's predictive warning: the level warned of (normal
// when none), the forecast's level with hysteresis, and how many minutes
// in a row the forecast has stayed below the level warned of.
type warning struct {
	level, raw Level
	below      int
}

// warnHold is how many minutes in a row a forecast must stay below the
// level warned of before the warning is lowered or cleared: a forecast
// integrates the gates' counts, whose deviation moves as each bin ends,
// and a warning that came and went within a minute would only be noise.
// A rising forecast raises at once; a site reaching the level clears it
// at once.
const warnHold = 10

func newSiteWarnings(s *Sites, reg *geo.Registry, t *forecast.Tracker, horizon time.Duration, raise func(Alert)) *siteWarnings {
	w := &siteWarnings{sites: s, reg: reg, tracker: t, horizon: int64(horizon / time.Minute), raise: raise, warned: map[string]*warning{}}
	// A restart takes up today's warnings where they were, so that it
	// neither repeats nor loses them.
	now := s.opts.Now()
	for _, site := range reg.Sites() {
		if a, ok := s.alerts.Last(site.ID, AlertForecast); ok && !a.Time.Before(s.dayStart(now)) {
			w.warned[site.ID] = &warning{level: a.To, raw: a.To}
		}
	}
	return w
}

// minute is the tracker's hook: it checks every site's forecast.
func (w *siteWarnings) minute(int64) {
	statuses := w.sites.All()
	now := w.sites.opts.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range statuses {
		st := &statuses[i]
		site, ok := w.reg.Site(st.ID)
		if !ok {
			continue
		}
		f, err := w.tracker.Forecast(forecast.Query{Place: forecast.PlaceSite, ID: site.ID, Cell: uint64(site.Cell),
			Metric: forecast.Occupancy, Step: 1, Steps: int(w.horizon)})
		if err != nil {
			continue // not watched yet: the tracker takes new sites up at its next minute
		}
		w.check(&site, st, f, now)
	}
}

// check updates one site's warning from its forecast f.
func (w *siteWarnings) check(site *geo.Site, st *SiteStatus, f forecast.Forecast, now time.Time) {
	wr := w.warned[site.ID]
	if wr == nil {
		wr = &warning{}
		w.warned[site.ID] = wr
	}
	var upper float64
	for _, p := range f.Points {
		upper = max(upper, p.Hi)
	}
	th := thresholds(site)
	hyst := w.sites.opts.Hysteresis
	wr.raw = nextLevel(wr.raw, upper/float64(site.Capacity), th, hyst)
	target := wr.raw
	if target <= st.Level {
		target = LevelNormal
	}
	if target == wr.level {
		wr.below = 0
		return
	}
	if target < wr.level && !(st.Level >= wr.level) {
		if wr.below++; wr.below < warnHold {
			return
		}
	}
	wr.below = 0
	a := Alert{Time: now.UTC(), Site: site.ID, Name: site.Name, Kind: AlertForecast, From: wr.level, To: target,
		Occupancy: st.Occupancy, Capacity: site.Capacity, Ratio: st.Ratio}
	switch {
	case target > LevelNormal:
		a.Expected = crossing(f, th[target]*float64(site.Capacity), (th[target]-hyst)*float64(site.Capacity))
		a.Reason = fmt.Sprintf("forecast to reach %s", target)
		if a.Expected != nil {
			a.Reason += fmt.Sprintf(" in %.0f min", a.Expected.Sub(now).Minutes())
		}
	case st.Level >= wr.level:
		a.Reason = fmt.Sprintf("level %s reached", st.Level)
	default:
		a.Reason = "forecast fell back"
	}
	wr.level = target
	w.raise(a)
}

// crossing returns the first minute whose upper bound reaches at, or if
// none does (a level held by hysteresis), held; nil when neither.
func crossing(f forecast.Forecast, at, held float64) *time.Time {
	for _, bound := range []float64{at, held} {
		for i, p := range f.Points {
			if p.Hi >= bound {
				t := time.Unix((f.From+int64(i))*60, 0).UTC()
				return &t
			}
		}
	}
	return nil
}

// raiseForecast records a forecast alert and sends it on the alerts'
// channels: the history, the live feed, the webhook.
func (d *Dashboard) raiseForecast(a Alert) {
	if err := d.Alerts.Append(a); err != nil {
		d.Hub.opts.Logf("sites: forecast alert %s %s→%s kept in memory only: %v", a.Site, a.From, a.To, err)
	}
	msg, err := json.Marshal(struct {
		Type string `json:"type"`
		Alert
	}{AlertForecast, a})
	if err != nil {
		panic("BUG: marshal a forecast message: " + err.Error())
	}
	d.Hub.Broadcast(msg)
	if d.webhook != nil {
		d.webhook.Post(a)
	}
}

// siteLevels gives the forecast tracker each site's occupancy: now, from
// the site tracker, and in the past, rebuilt from the stored footfall.
type siteLevels struct {
	sites *Sites
	store *storage.Store
}

// Levels returns every site's occupancy, at the end of minute.
func (l siteLevels) Levels(minute int64) []forecast.Reading {
	statuses := l.sites.All()
	out := make([]forecast.Reading, len(statuses))
	for i, st := range statuses {
		out[i] = forecast.Reading{Site: st.ID, Minute: minute, Value: float64(st.Occupancy)}
	}
	return out
}

// LevelHistory rebuilds each site's occupancy minute by minute over
// [from, to): entries minus exits since the site's day began, never below
// zero, from the site's first stored minute. Occupancy readings are not
// stored, so a site counted by readings alone has no history.
func (l siteLevels) LevelHistory(from, to int64, fn func(forecast.Reading)) error {
	for _, site := range l.sites.reg.Sites() {
		net := make([]int64, to-from)
		first := to
		ranges := []vocab.CellRange{{Lo: uint64(site.Cell), Hi: uint64(site.Cell)}}
		for _, m := range []struct {
			name string
			sign int64
		}{{vocab.FootfallIn, 1}, {vocab.FootfallOut, -1}} {
			err := l.store.Scan(storage.TierMinute, m.name, ranges, from, to, func(_ uint64, minute, v int64) {
				net[minute-from] += m.sign * v
				first = min(first, minute)
			})
			if err != nil {
				return fmt.Errorf("site %q: %w", site.ID, err)
			}
		}
		var occ int64
		var dayEnd int64
		for m := first; m < to; m++ {
			if m >= dayEnd {
				start := l.sites.dayStart(time.Unix(m*60, 0))
				dayEnd = l.sites.dayStart(start.Add(36*time.Hour)).Unix() / 60
				occ = 0
			}
			occ = max(occ+net[m-from], 0)
			fn(forecast.Reading{Site: site.ID, Minute: m, Value: float64(occ)})
		}
	}
	return nil
}
