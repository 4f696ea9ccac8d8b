package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// demoFeed feeds the synthetic city into this server: its registries, a
// back-fill, then live, following the wall clock.
type demoFeed struct {
	scale    float64
	shift    time.Duration
	store    *storage.Store
	dayStart func(time.Time) time.Time // the sites' day holding a time
}

// backfillSpan is a kind of event to send from a time until now.
type backfillSpan struct {
	kinds []city.Kind
	from  time.Time
}

func (f *demoFeed) run(ctx context.Context, url, token string) {
	c := city.New(demoCityConfig(f.scale, f.shift))
	reg := &city.Feeder{URL: url, Token: token}
	if err := reg.PutRegistries(ctx, c); err != nil {
		log.Printf("flowd: demo feed: %v", err)
		return
	}
	log.Printf("flowd: demo feed running: %d stations, %d cameras, %d scenic sites", c.Config().Stations, c.Config().Cameras, c.Config().Sites)
	now := time.Now().Truncate(time.Minute)
	spans := f.backfill(now)
	fds := make([]*city.Feeder, len(spans))
	for i, sp := range spans {
		fds[i] = &city.Feeder{URL: url, BatchSize: 5000, Senders: 2, Token: token, Kinds: sp.kinds}
	}
	live := &city.Feeder{URL: url, BatchSize: 2000, Senders: 2, Live: true, Token: token}
	go reportRejections(ctx, time.Minute, append(fds, live)...)
	for i, sp := range spans {
		if !sp.from.Before(now) {
			continue
		}
		if err := fds[i].Run(ctx, c, sp.from, now, nil); err != nil {
			if ctx.Err() == nil {
				log.Printf("flowd: demo back-fill stopped: %v", err)
			}
			return
		}
	}
	log.Printf("flowd: demo back-fill done up to %s", now.UTC().Format(time.RFC3339))
	if err := live.Run(ctx, c, now, now.Add(100*365*24*time.Hour), nil); err != nil && ctx.Err() == nil {
		log.Printf("flowd: demo feed stopped: %v", err)
	}
}

// backfill says what to send before going live: the sites' footfall since
// their day began, so that their occupancy and entries are the whole
// day's, and the rest of the last two hours, so that replay has something
// to show; each only after the last minute an earlier run left in the
// store, so that a restart counts nothing twice.
func (f *demoFeed) backfill(now time.Time) []backfillSpan {
	day := f.dayStart(now)
	recent := now.Add(-2 * time.Hour)
	earliest := day
	if recent.Before(day) {
		earliest = recent
	}
	resume := f.resume(earliest, now)
	later := func(t time.Time) time.Time {
		if resume.After(t) {
			return resume
		}
		return t
	}
	return []backfillSpan{
		{[]city.Kind{city.KindFootfall}, later(day)},
		{[]city.Kind{city.KindSwipe, city.KindCount}, later(recent)},
	}
}

// resume returns the minute after the last one since from that holds the
// city's car counts (its cameras count every minute), or from.
func (f *demoFeed) resume(from, now time.Time) time.Time {
	last := int64(-1)
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	err := f.store.Scan(storage.TierMinute, vocab.CountPrefix+"car", all, from.Unix()/60, now.Unix()/60+1, func(_ uint64, m, _ int64) {
		last = max(last, m)
	})
	if err != nil {
		log.Printf("flowd: demo feed: where an earlier run stopped: %v; back-filling anyway", err)
	}
	if last < 0 {
		return from
	}
	return time.Unix((last+1)*60, 0)
}

// demoCityConfig uses the real Hangzhou station coordinates when the shared
// data folder is beside the checkout, and a synthetic network otherwise.
func demoCityConfig(scale float64, shift time.Duration) city.Config {
	cfg := city.Config{Seed: 1, Scale: scale, Start: time.Now(), Shift: shift}
	for _, p := range []string{"../shared/data/hangzhou-metro-stations.csv", "../../shared/data/hangzhou-metro-stations.csv"} {
		if _, err := os.Stat(p); err == nil {
			cfg.StationsFile = p
			break
		}
	}
	return cfg
}

// reportRejections logs, once an interval, how many of the demo feed's
// events the server rejected since the last report and why: the feed goes
// on when an operator replaces a registry under it (its swipes then name
// stations the server no longer knows), and the log says so.
func reportRejections(ctx context.Context, every time.Duration, feeders ...*city.Feeder) {
	t := time.NewTicker(every)
	defer t.Stop()
	var reported int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var total int64
		why := ""
		for _, f := range feeders {
			total += f.Rejected()
			if w := f.LastRejection(); w != "" {
				why = w
			}
		}
		if total > reported {
			log.Printf("flowd: demo feed: the server rejected %d of its events in the last %v and the feed goes on (was a registry replaced while it runs?); the last: %s", total-reported, every, why)
			reported = total
		}
	}
}
