package dashboard

import (
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
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
// and today's entries against its daily capacity, with a warning level
// for each. It is an ingest.FootfallObserver: occupancy follows the gates'
// entries and exits and the site's occupancy readings by the rule of
// siteDay. A level change is recorded in the alert log, pushed to live
// clients and posted to the webhook.
//
// Readings are queued by ObserveFootfall and applied by Run, so an ingest
// request never waits on the alert log's fsync or on the live hub; a
// status read applies what is queued first, so it sees every reading
// acknowledged before it.
type Sites struct {
	opts  SitesOptions
	reg   *geo.Registry
	store *storage.Store
	// source reads the stored footfall of the days and replays: the
	// store, or on a query node what ReadFrom gave.
	source FootfallSource
	// replayLive answers the live status as a replay of now from source
	// (a query node, where no footfall is ingested).
	replayLive bool
	alerts     *AlertLog
	push       func([]byte) // may be nil
	webhook    *Webhook     // may be nil

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

// siteState is what the tracker knows of one site: today and the day
// before (for the trend's first hour), and its two levels.
type siteState struct {
	day, prev *siteDay // prev may be nil
	// level is by occupancy against Capacity, dailyLevel by today's
	// entries against DailyCapacity.
	level, dailyLevel Level
	updated           time.Time
}

// NewSites returns a tracker with today's and yesterday's entries and
// exits rebuilt from the store and each site's levels taken up from its
// last alerts of today, so a restart neither zeroes the sites nor repeats
// their alerts.
func NewSites(reg *geo.Registry, st *storage.Store, alerts *AlertLog, push func([]byte), webhook *Webhook, opts SitesOptions) (*Sites, error) {
	opts.setDefaults()
	s := &Sites{opts: opts, reg: reg, store: st, source: st, alerts: alerts, push: push, webhook: webhook,
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

// FootfallSource reads stored buckets of footfall: the store
// (storage.Store), or on a query node the ingest nodes' history and
// current minutes (api.Server.Sources).
type FootfallSource interface {
	Scan(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, minute, v int64)) error
	RetentionCutoff(t storage.Tier) int64
}

// ReadFrom has the sites read their footfall from src, and answer their
// live status as a replay of now: on a query node, which ingests none,
// what the ingest nodes counted, as one node fed everything would
// answer it from the entries and exits (readings of occupancy and level
// changes' alerts stay with the ingest nodes).
func (s *Sites) ReadFrom(src FootfallSource) {
	s.mu.Lock()
	s.source, s.replayLive = src, true
	s.mu.Unlock()
}

// DayStart returns when the site day holding t began.
func (s *Sites) DayStart(t time.Time) time.Time { return s.dayStart(t) }

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

// newDay returns the empty site day that begins at start.
func (s *Sites) newDay(start time.Time) *siteDay {
	y, m, d := start.Date()
	next := time.Date(y, m, d+1, 0, 0, 0, 0, s.opts.Location).Add(s.opts.DayStart)
	return newSiteDay(start.UnixMilli(), next.UnixMilli())
}

// rebuildLocked reads site's footfall of today and the day before from the
// store.
func (s *Sites) rebuildLocked(site *geo.Site, st *storage.Store, now time.Time) error {
	day := s.dayStart(now)
	ss := &siteState{day: s.newDay(day), prev: s.newDay(s.dayStart(day.Add(-time.Millisecond)))}
	if err := scanDays(st, storage.TierMinute, site, []*siteDay{ss.prev, ss.day}, 0); err != nil {
		return err
	}
	for kind, lv := range map[string]*Level{AlertOccupancy: &ss.level, AlertDaily: &ss.dailyLevel} {
		if a, ok := s.alerts.Last(site.ID, kind); ok && !a.Time.Before(day) {
			*lv = a.To
		}
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
		ss = &siteState{day: s.newDay(s.dayStart(now))}
		s.state[site.ID] = ss
	}
	if now.UnixMilli() >= ss.day.end {
		day := s.dayStart(now)
		if day.UnixMilli() == ss.day.end {
			ss.prev = ss.day
		} else {
			ss.prev = nil // a day or more passed unseen
		}
		ss.day = s.newDay(day)
		s.evaluateLocked(site, ss, now, "daily reset")
	}
	return ss
}

// evaluateLocked moves the site's levels after a change and emits an alert
// for each level that moved.
func (s *Sites) evaluateLocked(site *geo.Site, ss *siteState, now time.Time, reason string) {
	occ := ss.day.occupancy()
	th := thresholds(site)
	ratio := float64(occ) / float64(site.Capacity)
	if next := nextLevel(ss.level, ratio, th, s.opts.Hysteresis); next != ss.level {
		s.raiseLocked(Alert{Time: now.UTC(), Site: site.ID, Name: site.Name, From: ss.level, To: next,
			Occupancy: occ, Capacity: site.Capacity, Ratio: round4(ratio), Reason: reason})
		ss.level = next
	}
	if site.DailyCapacity <= 0 {
		return
	}
	// Entries only grow within a day, so the daily level only rises until
	// the day's reset takes it back to normal.
	daily := float64(ss.day.entries) / float64(site.DailyCapacity)
	if next := nextLevel(ss.dailyLevel, daily, th, s.opts.Hysteresis); next != ss.dailyLevel {
		s.raiseLocked(Alert{Time: now.UTC(), Site: site.ID, Name: site.Name, Kind: AlertDaily, From: ss.dailyLevel, To: next,
			Occupancy: occ, Entries: ss.day.entries, Capacity: site.DailyCapacity, Ratio: round4(daily), Reason: reason})
		ss.dailyLevel = next
	}
}

// raiseLocked records a level change, pushes it to live clients and posts
// it to the webhook.
func (s *Sites) raiseLocked(a Alert) {
	if err := s.alerts.Append(a); err != nil {
		s.opts.Logf("sites: alert %s %s %s→%s kept in memory only: %v", a.Site, a.kindName(), a.From, a.To, err)
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

// applyLocked counts a batch of gate readings. A reading of an earlier
// day (or of the next, within the clock skew ingest allows) is stored but
// is not today's: it counts in the history of days, not in the status.
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
		if !ss.day.add(f) {
			if ss.prev != nil {
				ss.prev.add(f)
			}
			continue
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
