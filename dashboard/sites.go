package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// trendStep and trendPoints shape a site's trend: occupancy at the end of
// each 5-minute step over the last hour.
const (
	trendStep   = 5 * time.Minute
	trendPoints = 12
)

// SitesOptions configures a Sites tracker; zero fields take the defaults
// in brackets.
type SitesOptions struct {
	// DayStart is when each site's day begins, after midnight in Location:
	// entries and exits count from then [4h, so 04:00].
	DayStart time.Duration
	Location *time.Location // [time.Local, the server's zone]
	// Hysteresis is how far below a level's threshold the ratio must fall
	// for the level to go down [0.02].
	Hysteresis float64
	Now        func() time.Time
	Logf       func(format string, args ...any)
}

func (o *SitesOptions) setDefaults() {
	if o.DayStart == 0 {
		o.DayStart = 4 * time.Hour
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Hysteresis == 0 {
		o.Hysteresis = 0.02
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Sites tracks each scenic site's occupancy against its approved capacity
// and its warning level. It is an ingest.FootfallObserver: occupancy is
// entries minus exits since the site's day began, or the latest occupancy
// reading plus the entries and exits after it. A level change is recorded
// in the alert log, pushed to live clients and posted to the webhook.
//
// Readings are queued by ObserveFootfall and applied by Run, so an ingest
// request never waits on the alert log's fsync or on the live hub; a
// status read applies what is queued first, so it sees every reading
// acknowledged before it.
type Sites struct {
	opts    SitesOptions
	reg     *geo.Registry
	alerts  *AlertLog
	push    func([]byte) // may be nil
	webhook *Webhook     // may be nil

	mu    sync.Mutex // also orders the alerts of concurrent batches
	state map[string]*siteState

	qmu    sync.Mutex // guards queued
	queued []vocab.SiteReading
	wake   chan struct{}

	stop chan struct{}
	done chan struct{}
}

// maxQueuedReadings bounds the readings waiting for the tracker; past it
// ObserveFootfall applies them itself, slowing ingest rather than growing
// without bound or dropping readings.
const maxQueuedReadings = 1 << 18

// siteState is what the tracker knows of one site today.
type siteState struct {
	day         time.Time // when the current day began
	entries     int64
	exits       int64
	offset      int64 // last occupancy reading minus entries-exits at the time
	readingTime int64 // unix ms of that reading
	level       Level
	trend       map[int64]int64 // trend step number -> latest occupancy in it
	updated     time.Time
}

// NewSites returns a tracker with today's entries and exits rebuilt from the
// store and each site's level taken up from its last alert of today, so a
// restart neither zeroes the sites nor repeats their alerts.
func NewSites(reg *geo.Registry, st *storage.Store, alerts *AlertLog, push func([]byte), webhook *Webhook, opts SitesOptions) (*Sites, error) {
	opts.setDefaults()
	s := &Sites{opts: opts, reg: reg, alerts: alerts, push: push, webhook: webhook,
		state: map[string]*siteState{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	now := opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, site := range reg.Sites() {
		if err := s.rebuildLocked(&site, st, now); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// dayStart returns when the site day holding t began.
func (s *Sites) dayStart(t time.Time) time.Time {
	lt := t.In(s.opts.Location)
	y, m, d := lt.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, s.opts.Location).Add(s.opts.DayStart)
	if lt.Before(start) {
		start = time.Date(y, m, d-1, 0, 0, 0, 0, s.opts.Location).Add(s.opts.DayStart)
	}
	return start
}

func trendStepOf(t time.Time) int64 { return t.Unix() / int64(trendStep/time.Second) }

// rebuildLocked reads today's footfall of site from the store.
func (s *Sites) rebuildLocked(site *geo.Site, st *storage.Store, now time.Time) error {
	day := s.dayStart(now)
	from, to := day.Unix()/60, now.Unix()/60+1
	ranges := []vocab.CellRange{{Lo: uint64(site.Cell), Hi: uint64(site.Cell)}}
	net := map[int64]int64{}
	ss := &siteState{day: day, trend: map[int64]int64{}}
	for _, m := range []struct {
		name  string
		sign  int64
		total *int64
	}{{vocab.FootfallIn, 1, &ss.entries}, {vocab.FootfallOut, -1, &ss.exits}} {
		err := st.Scan(storage.TierMinute, m.name, ranges, from, to, func(_ uint64, minute, v int64) {
			*m.total += v
			net[minute] += m.sign * v
		})
		if err != nil {
			return fmt.Errorf("site %q: today's footfall from the store: %w", site.ID, err)
		}
	}
	// Occupancy at the end of each trend step of the last hour.
	minutes := make([]int64, 0, len(net))
	for m := range net {
		minutes = append(minutes, m)
	}
	slices.Sort(minutes)
	last := trendStepOf(now)
	var occ int64
	i := 0
	for step := last - trendPoints; step <= last; step++ {
		end := (step + 1) * int64(trendStep/time.Minute)
		for ; i < len(minutes) && minutes[i] < end; i++ {
			occ += net[minutes[i]]
		}
		if end > from {
			ss.trend[step] = max(occ, 0)
		}
	}
	if a, ok := s.alerts.Last(site.ID, AlertOccupancy); ok && !a.Time.Before(day) {
		ss.level = a.To
	}
	s.state[site.ID] = ss
	s.evaluateLocked(site, ss, now, "restart")
	return nil
}

// stateLocked returns the state of a site, starting a new day when the
// current one has ended.
func (s *Sites) stateLocked(site *geo.Site, now time.Time) *siteState {
	ss := s.state[site.ID]
	if ss == nil {
		ss = &siteState{day: s.dayStart(now), trend: map[int64]int64{}}
		s.state[site.ID] = ss
	}
	if day := s.dayStart(now); !ss.day.Equal(day) {
		ss.day, ss.entries, ss.exits, ss.offset, ss.readingTime = day, 0, 0, 0, 0
		s.evaluateLocked(site, ss, now, "daily reset")
	}
	return ss
}

func (ss *siteState) occupancy() int64 { return max(ss.entries-ss.exits+ss.offset, 0) }

// evaluateLocked updates the site's level and trend after a change and
// emits an alert when the level moved.
func (s *Sites) evaluateLocked(site *geo.Site, ss *siteState, now time.Time, reason string) {
	occ := ss.occupancy()
	ss.trend[trendStepOf(now)] = occ
	for step := range ss.trend {
		if step < trendStepOf(now)-trendPoints {
			delete(ss.trend, step)
		}
	}
	ratio := float64(occ) / float64(site.Capacity)
	next := nextLevel(ss.level, ratio, thresholds(site), s.opts.Hysteresis)
	if next == ss.level {
		return
	}
	a := Alert{Time: now.UTC(), Site: site.ID, Name: site.Name, From: ss.level, To: next,
		Occupancy: occ, Capacity: site.Capacity, Ratio: round4(ratio), Reason: reason}
	ss.level = next
	if err := s.alerts.Append(a); err != nil {
		s.opts.Logf("sites: alert %s %s→%s kept in memory only: %v", a.Site, a.From, a.To, err)
	}
	if s.push != nil {
		msg, err := json.Marshal(struct {
			Type string `json:"type"`
			Alert
		}{"site", a})
		if err != nil {
			panic("BUG: marshal a site message: " + err.Error())
		}
		s.push(msg)
	}
	if s.webhook != nil {
		s.webhook.Post(a)
	}
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// ObserveFootfall queues a durable batch of gate readings for Run. ff is
// copied: the caller may reuse it.
func (s *Sites) ObserveFootfall(ff []vocab.SiteReading) {
	if len(ff) == 0 {
		return
	}
	s.qmu.Lock()
	s.queued = append(s.queued, ff...)
	full := len(s.queued) >= maxQueuedReadings
	s.qmu.Unlock()
	if full {
		s.catchUp()
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// catchUp applies every queued reading.
func (s *Sites) catchUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUpLocked()
}

func (s *Sites) catchUpLocked() {
	s.qmu.Lock()
	ff := s.queued
	s.queued = nil
	s.qmu.Unlock()
	if len(ff) > 0 {
		s.applyLocked(ff)
	}
}

// applyLocked counts a batch of gate readings.
func (s *Sites) applyLocked(ff []vocab.SiteReading) {
	now := s.opts.Now()
	touched := map[string]*geo.Site{}
	for i := range ff {
		f := &ff[i]
		site, ok := s.reg.Site(f.Site)
		if !ok {
			continue
		}
		ss := s.stateLocked(&site, now)
		if f.Time < ss.day.UnixMilli() {
			continue // an earlier day's reading: stored, but not today's occupancy
		}
		ss.entries += f.In
		ss.exits += f.Out
		if f.HasOccupancy && f.Time >= ss.readingTime {
			ss.offset = f.Occupancy - (ss.entries - ss.exits)
			ss.readingTime = f.Time
		}
		ss.updated = now
		touched[site.ID] = &site
	}
	for id, site := range touched {
		s.evaluateLocked(site, s.state[id], now, "footfall")
	}
}

// Run rolls the sites into a new day on time, until Close.
func (s *Sites) Run() {
	defer close(s.done)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.catchUp()
			return
		case <-s.wake:
			s.catchUp()
		case <-t.C:
			now := s.opts.Now()
			s.mu.Lock()
			s.catchUpLocked()
			for _, site := range s.reg.Sites() {
				s.stateLocked(&site, now)
			}
			s.mu.Unlock()
		}
	}
}

// Close stops Run.
func (s *Sites) Close() {
	close(s.stop)
	<-s.done
}

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
	DayStart      time.Time    `json:"day_start"`
	Updated       *time.Time   `json:"updated,omitempty"`
	Trend         []TrendPoint `json:"trend"`
}

// TrendPoint is a site's occupancy at the end of a 5-minute step (the
// latest value for the step in progress).
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUpLocked()
	return s.statusLocked(&site, s.opts.Now()), true
}

// All returns the status of every site, sorted by id.
func (s *Sites) All() []SiteStatus {
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
	ss := s.stateLocked(site, now)
	occ := ss.occupancy()
	st := SiteStatus{
		ID: site.ID, Name: site.Name, Occupancy: occ, Capacity: site.Capacity,
		Ratio: round4(float64(occ) / float64(site.Capacity)), Level: ss.level,
		Yellow: site.Yellow, Orange: site.Orange, Red: site.Red,
		EntriesToday: ss.entries, ExitsToday: ss.exits, DailyCapacity: site.DailyCapacity,
		DayStart: ss.day.UTC(), Trend: make([]TrendPoint, 0, trendPoints+1),
	}
	if site.DailyCapacity > 0 {
		st.DailyRatio = round4(float64(ss.entries) / float64(site.DailyCapacity))
	}
	if !ss.updated.IsZero() {
		u := ss.updated.UTC()
		st.Updated = &u
	}
	// Steps with no reading carry the one before: occupancy held still.
	last := trendStepOf(now)
	carry, have := int64(0), false
	for step := last - trendPoints; step <= last; step++ {
		v, ok := ss.trend[step]
		if ok {
			carry, have = v, true
		}
		if step == last {
			carry, have = occ, true
		}
		if !have {
			continue
		}
		end := time.Unix((step+1)*int64(trendStep/time.Second), 0).UTC()
		if step == last {
			end = now.UTC().Truncate(time.Second)
		}
		st.Trend = append(st.Trend, TrendPoint{end, carry})
	}
	return st
}
