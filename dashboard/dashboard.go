// Package dashboard is flowd's live view: the hub that keeps a sliding
// window of density per cell and pushes the changes to WebSocket clients,
// the site tracker that turns footfall into occupancy and warning levels,
// and the map page embedded in the binary. The WebSocket protocol is in
// docs/live-protocol.md.
package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/valyala/fasthttp"
)

// AlertsFile is the alert history's file name inside the data directory.
const AlertsFile = "alerts.ndjson"

// Options configures a Dashboard.
type Options struct {
	Store    *storage.Store
	Registry *geo.Registry
	DataDir  string // holds AlertsFile
	Hub      HubOptions
	Sites    SitesOptions
	// WebhookURL, when set, receives every alert as a JSON POST.
	WebhookURL     string
	WebhookTimeout time.Duration // per attempt [5s]
	WebhookRetries int           // after the first attempt [3]
	// Forecasts, when set, is given the sites' occupancy and raises the
	// sites' predictive warnings over WarnHorizon [DefaultWarnHorizon].
	// Start its Run after New.
	Forecasts   *forecast.Tracker
	WarnHorizon time.Duration
	// Basemap is what the page draws under the hexagons besides the
	// offline layer [the offline layer alone]. The Dashboard closes it.
	Basemap *Basemap
}

// Dashboard is the live view's pieces, built together. Its observers,
// Hub of durable deltas and Sites of gate readings, are wired to ingest by
// the caller; its endpoints are declared in flowd's route table (package
// api), which it serves as an api.Live.
type Dashboard struct {
	Hub     *Hub
	Sites   *Sites
	Alerts  *AlertLog
	webhook *Webhook
	basemap *Basemap
	// forecasts says that the page may show forecasts and anomalies.
	forecasts bool
	socket    fasthttp.RequestHandler
	page      map[string]fasthttp.RequestHandler
}

// New builds the hub and the site tracker, rebuilding both from the store
// and the alert history, and starts their loops. Close stops them.
func New(o Options) (*Dashboard, error) {
	alerts, err := OpenAlertLog(filepath.Join(o.DataDir, AlertsFile))
	if err != nil {
		return nil, err
	}
	hub, err := NewHub(o.Store, o.Registry.Res(), o.Hub)
	if err != nil {
		alerts.Close()
		return nil, err
	}
	if o.Basemap == nil {
		o.Basemap = &Basemap{Kind: "offline"}
	}
	d := &Dashboard{Hub: hub, Alerts: alerts, basemap: o.Basemap, socket: hub.Handler(), page: pageFiles()}
	if o.Basemap.pm != nil {
		d.page[BasemapTilePath] = o.Basemap.serveTile
	}
	if o.WebhookURL != "" {
		timeout, retries := o.WebhookTimeout, o.WebhookRetries
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		if retries <= 0 {
			retries = 3
		}
		d.webhook = StartWebhook(o.WebhookURL, timeout, retries, hub.opts.Logf)
	}
	if o.Sites.Logf == nil {
		o.Sites.Logf = hub.opts.Logf
	}
	if d.Sites, err = NewSites(o.Registry, o.Store, alerts, hub.Broadcast, d.webhook, o.Sites); err != nil {
		d.closeParts()
		return nil, err
	}
	if o.Forecasts != nil {
		d.forecasts = true
		o.Forecasts.AddLevelSource(siteLevels{d.Sites, o.Store})
		horizon := cmp.Or(o.WarnHorizon, DefaultWarnHorizon)
		o.Forecasts.OnMinute(newSiteWarnings(d.Sites, o.Registry, o.Forecasts, horizon, d.raiseForecast).minute)
	}
	go hub.Run()
	go d.Sites.Run()
	return d, nil
}

// Close stops the loops, disconnects the live clients and closes the
// alert history.
func (d *Dashboard) Close() error {
	d.Sites.Close()
	d.Hub.Close()
	return d.closeParts()
}

func (d *Dashboard) closeParts() error {
	if d.webhook != nil {
		d.webhook.Close()
	}
	return errors.Join(d.Alerts.Close(), d.basemap.Close())
}

// Socket serves GET /api/v1/live: the WebSocket upgrade to the hub.
func (d *Dashboard) Socket(ctx *fasthttp.RequestCtx) { d.socket(ctx) }

// Page returns the handlers of the embedded page's files by path, and of
// the base map's tiles when flowd serves a local archive.
func (d *Dashboard) Page() map[string]fasthttp.RequestHandler { return d.page }

// LiveStats serves GET /api/v1/live/stats.
func (d *Dashboard) LiveStats(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, d.Hub.Stats())
}

// AllSitesStatus serves GET /api/v1/sites/status[?at=]: now, from the
// live tracker, or at a past time, from the store (a replay).
func (d *Dashboard) AllSitesStatus(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	var sites []SiteStatus
	if v := string(ctx.QueryArgs().Peek("at")); v != "" {
		ms, err := vocab.ParseTime(v)
		if err != nil {
			answer.Fail(ctx, &answer.ParamError{Param: "at", Value: v, Reason: err.Error()})
			return
		}
		if at := time.UnixMilli(ms); at.Before(start.Add(-time.Minute)) {
			if sites, err = d.Sites.AllAt(at); err != nil {
				answer.Fail(ctx, err)
				return
			}
		}
	}
	if sites == nil {
		sites = d.Sites.All()
	}
	answer.JSON(ctx, fasthttp.StatusOK, struct {
		Sites  []SiteStatus `json:"sites"`
		TookMs float64      `json:"took_ms"`
	}{sites, answer.Since(start)})
}

// SiteStatus serves GET /api/v1/sites/{id}/status; the route table leaves
// the id as the request's user value "id".
func (d *Dashboard) SiteStatus(ctx *fasthttp.RequestCtx) {
	id, _ := ctx.UserValue("id").(string)
	st, ok := d.Sites.Status(id)
	if !ok {
		answer.Error(ctx, fasthttp.StatusNotFound, fmt.Errorf("unknown site %q", id))
		return
	}
	answer.JSON(ctx, fasthttp.StatusOK, st)
}

// SiteDays serves GET /api/v1/sites/{id}/days?from=&to=[&format=csv].
func (d *Dashboard) SiteDays(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	id, _ := ctx.UserValue("id").(string)
	args := ctx.QueryArgs()
	format := string(args.Peek("format"))
	if format != "" && format != "json" && format != "csv" {
		answer.Fail(ctx, &answer.ParamError{Param: "format", Value: format, Reason: "want json or csv"})
		return
	}
	days, err := d.Sites.DaysQuery(id, func(name string) string { return string(args.Peek(name)) })
	var unknown errUnknownSite
	switch {
	case errors.As(err, &unknown):
		answer.Error(ctx, fasthttp.StatusNotFound, err)
	case err != nil:
		answer.Fail(ctx, err)
	case format == "csv":
		answer.CSV(ctx, days.AppendCSV(nil))
	default:
		days.Stamp(start)
		answer.JSON(ctx, fasthttp.StatusOK, days)
	}
}

// AlertHistory serves GET /api/v1/alerts?site=&since=&limit=.
func (d *Dashboard) AlertHistory(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	var since time.Time
	if v := string(args.Peek("since")); v != "" {
		ms, err := vocab.ParseTime(v)
		if err != nil {
			answer.Fail(ctx, &answer.ParamError{Param: "since", Value: v, Reason: err.Error()})
			return
		}
		since = time.UnixMilli(ms)
	}
	limit := 1000
	if v := string(args.Peek("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAlertsKept {
			answer.Fail(ctx, &answer.ParamError{Param: "limit", Value: v, Reason: fmt.Sprintf("want an integer from 1 to %d", maxAlertsKept)})
			return
		}
		limit = n
	}
	d.Sites.catchUp() // the alerts of every reading acknowledged so far
	answer.JSON(ctx, fasthttp.StatusOK, struct {
		Alerts []Alert `json:"alerts"`
	}{d.Alerts.List(string(args.Peek("site")), since, limit)})
}

// Config serves GET /api/v1/dashboard/config: what the page needs to know
// of the server's settings.
func (d *Dashboard) Config(ctx *fasthttp.RequestCtx) {
	answer.JSON(ctx, fasthttp.StatusOK, map[string]any{
		"basemap":        d.basemap.config(),
		"res":            d.Hub.res,
		"window_seconds": int64(d.Hub.opts.Window / time.Second),
		"tick_ms":        d.Hub.opts.Tick.Milliseconds(),
		"forecasts":      d.forecasts,
		// The oldest time a replay can show: what the hourly tier keeps.
		"oldest": d.Sites.store.RetentionCutoff(storage.TierHour) * 60,
	})
}
