// Package dashboard is flowd's live view: the hub that keeps a sliding
// window of density per cell and pushes the changes to WebSocket clients,
// the site tracker that turns footfall into occupancy and warning levels,
// and the map page embedded in the binary. The WebSocket protocol is in
// docs/live-protocol.md.
package dashboard

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	// TileURL is the base map's raster tile template ({z}/{x}/{y}); empty
	// shows the hexagons and sites on a plain background.
	TileURL string
}

// Dashboard is the live view's pieces, built together and mounted on
// flowd's server and bucketer.
type Dashboard struct {
	Hub     *Hub
	Sites   *Sites
	Alerts  *AlertLog
	webhook *Webhook
	tileURL string
}

// Router is where the dashboard mounts its endpoints; *api.Server is one.
type Router interface {
	Handle(method, path string, h fasthttp.RequestHandler)
	HandlePrefix(method, prefix string, h fasthttp.RequestHandler)
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
	d := &Dashboard{Hub: hub, Alerts: alerts, tileURL: o.TileURL}
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
	go hub.Run()
	go d.Sites.Run()
	return d, nil
}

// Mount registers the dashboard's endpoints on r. Its observers, d.Hub of
// durable deltas and d.Sites of gate readings, are wired to ingest by the
// caller. Call it before the server takes requests.
func (d *Dashboard) Mount(r Router) {
	r.Handle("GET", "/api/v1/live", d.Hub.Handler())
	r.Handle("GET", "/api/v1/live/stats", d.liveStats)
	r.Handle("GET", "/api/v1/sites/status", d.allStatus)
	r.HandlePrefix("GET", "/api/v1/sites/", d.siteStatus)
	r.Handle("GET", "/api/v1/alerts", d.alertList)
	r.Handle("GET", "/api/v1/dashboard/config", d.config)
	mountStatic(r)
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
	return d.Alerts.Close()
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal answer: %v", err))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(data)
}

func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, map[string]string{"error": msg})
}

func tookMs(start time.Time) float64 { return float64(time.Since(start).Microseconds()) / 1000 }

func (d *Dashboard) liveStats(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, d.Hub.Stats())
}

// allStatus serves GET /api/v1/sites/status.
func (d *Dashboard) allStatus(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	sites := d.Sites.All()
	writeJSON(ctx, fasthttp.StatusOK, struct {
		Sites  []SiteStatus `json:"sites"`
		TookMs float64      `json:"took_ms"`
	}{sites, tookMs(start)})
}

// siteStatus serves GET /api/v1/sites/{id}/status.
func (d *Dashboard) siteStatus(ctx *fasthttp.RequestCtx) {
	rest := strings.TrimPrefix(string(ctx.Path()), "/api/v1/sites/")
	id, ok := strings.CutSuffix(rest, "/status")
	if !ok || id == "" || strings.Contains(id, "/") {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("no endpoint GET %s; want /api/v1/sites/{id}/status", ctx.Path()))
		return
	}
	st, ok := d.Sites.Status(id)
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("unknown site %q", id))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, st)
}

// alertList serves GET /api/v1/alerts?site=&since=&limit=.
func (d *Dashboard) alertList(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	var since time.Time
	if v := string(args.Peek("since")); v != "" {
		ms, err := vocab.ParseTime(v)
		if err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("parameter \"since\": value %q: %v", v, err))
			return
		}
		since = time.UnixMilli(ms)
	}
	limit := 1000
	if v := string(args.Peek("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAlertsKept {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("parameter \"limit\": value %q: want an integer from 1 to %d", v, maxAlertsKept))
			return
		}
		limit = n
	}
	writeJSON(ctx, fasthttp.StatusOK, struct {
		Alerts []Alert `json:"alerts"`
	}{d.Alerts.List(string(args.Peek("site")), since, limit)})
}

// config serves GET /api/v1/dashboard/config: what the page needs to know
// of the server's settings.
func (d *Dashboard) config(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{
		"tiles":          d.tileURL,
		"res":            d.Hub.res,
		"window_seconds": int64(d.Hub.opts.Window / time.Second),
		"tick_ms":        d.Hub.opts.Tick.Milliseconds(),
	})
}
