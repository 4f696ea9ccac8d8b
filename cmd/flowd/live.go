package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/flowd/flowd/dashboard"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
)

// liveConfig holds the flags of the live map and the site warnings.
type liveConfig struct {
	window         time.Duration
	tick           time.Duration
	maxClients     int
	deflateShared  int
	yield          time.Duration
	siteDayStart   string
	siteTZ         string
	siteLoc        *time.Location // when set, wins over siteTZ
	hysteresis     float64
	webhook        string
	webhookTimeout time.Duration
	basemap        string
}

// hubDeflateShared is -live-deflate-shared as HubOptions takes it: its 0,
// never, is the hub's negative (the hub's 0 is its default).
func (c *liveConfig) hubDeflateShared() int {
	if c.deflateShared <= 0 {
		return -1
	}
	return c.deflateShared
}

// liveFlags registers the live view's flags on fs.
func liveFlags(fs *flag.FlagSet, c *liveConfig) {
	fs.DurationVar(&c.window, "live-window", 5*time.Minute, "sliding window of the live map's density (whole minutes)")
	fs.DurationVar(&c.tick, "live-tick", time.Second, "how often live map clients get the cells that changed")
	fs.IntVar(&c.maxClients, "live-max-clients", 10000, "live map WebSocket clients served at once; beyond it 503")
	fs.DurationVar(&c.yield, "live-yield", 100*time.Millisecond, "how long an ingest request may wait before decoding while a tick's frames go out to many live map clients, so that the burst of writes has the cores; 0: never waits")
	fs.IntVar(&c.deflateShared, "live-deflate-shared", 4, "compress a view's live frames (permessage-deflate, for the clients that offer it) once this many of its clients take them; 0: never")
	fs.StringVar(&c.siteDayStart, "site-day-start", "04:00", "time of day (HH:MM, in -site-tz) when site occupancy and daily entries reset")
	fs.StringVar(&c.siteTZ, "site-tz", "", "IANA time zone of -site-day-start, e.g. Asia/Shanghai (default the server's local zone)")
	fs.Float64Var(&c.hysteresis, "site-hysteresis", 0.02, "how far below a threshold (fraction of capacity) occupancy must fall for a site's level to go down")
	fs.StringVar(&c.webhook, "alert-webhook", "", "`URL` to POST each site level change to as JSON")
	fs.DurationVar(&c.webhookTimeout, "alert-webhook-timeout", 5*time.Second, "timeout of one webhook attempt (3 retries with backoff)")
	fs.StringVar(&c.basemap, "basemap", "", "the dashboard's base map over its offline land and water: a local .pmtiles file flowd serves, a raster tile URL with {z}/{x}/{y}, or a MapLibre style URL")
}

// startLive builds the live map hub, the site tracker and the dashboard
// page over st and reg, wires them to b's durable batches and gives the
// sites' occupancy to the forecast tracker fc, whose forecasts raise the
// sites' predictive warnings. The returned function stops them.
func startLive(st *storage.Store, reg *geo.Registry, b *ingest.Bucketer, dataDir string, c liveConfig, fc *forecast.Tracker, warnHorizon time.Duration) (*dashboard.Dashboard, func(), error) {
	dayStart, err := time.Parse("15:04", c.siteDayStart)
	if err != nil {
		return nil, nil, fmt.Errorf("-site-day-start %q: want HH:MM", c.siteDayStart)
	}
	loc := time.Local
	if c.siteLoc != nil {
		loc = c.siteLoc
	} else if c.siteTZ != "" {
		if loc, err = time.LoadLocation(c.siteTZ); err != nil {
			return nil, nil, fmt.Errorf("-site-tz %q: %w", c.siteTZ, err)
		}
	}
	if c.hysteresis < 0 || c.hysteresis >= 0.5 {
		return nil, nil, fmt.Errorf("-site-hysteresis %v: want a fraction from 0 to 0.5", c.hysteresis)
	}
	basemap, err := dashboard.ParseBasemap(c.basemap)
	if err != nil {
		return nil, nil, err
	}
	d, err := dashboard.New(dashboard.Options{
		Store:    st,
		Registry: reg,
		DataDir:  dataDir,
		Hub: dashboard.HubOptions{
			Window:        c.window,
			Tick:          c.tick,
			MaxClients:    c.maxClients,
			DeflateShared: c.hubDeflateShared(),
			Logf:          log.Printf,
		},
		Sites: dashboard.SitesOptions{
			DayStart:   time.Duration(dayStart.Hour())*time.Hour + time.Duration(dayStart.Minute())*time.Minute,
			Location:   loc,
			Hysteresis: c.hysteresis,
			Logf:       log.Printf,
		},
		WebhookURL:     c.webhook,
		WebhookTimeout: c.webhookTimeout,
		Forecasts:      fc,
		WarnHorizon:    warnHorizon,
		Basemap:        basemap,
	})
	if err != nil {
		basemap.Close()
		return nil, nil, err
	}
	b.Deltas = append(b.Deltas, d.Hub)
	b.Footfall = append(b.Footfall, d.Sites)
	return d, func() {
		if err := d.Close(); err != nil {
			log.Printf("flowd: closing the live view: %v", err)
		}
	}, nil
}

// startLiveFeed has the hub of a query node sum its peers' recent minutes
// (remote.LiveFeed), polled once a live tick; the returned function stops
// it.
func startLiveFeed(peers [][]*remote.Peer, st *storage.Store, hub *dashboard.Hub, c liveConfig) func() {
	f := &remote.LiveFeed{Peers: peers, Width: int64(c.window / time.Minute), ID: st.MetricID, Observe: hub.ObserveDeltas, Now: time.Now, Logf: log.Printf}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		f.Run(max(c.tick, time.Second), stop)
	}()
	return func() { close(stop); <-done }
}
