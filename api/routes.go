package api

import (
	"fmt"

	"github.com/flowd/flowd/privacy"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/valyala/fasthttp"
)

// Ingest serves the ingest endpoints; package ingest's Handler is one.
type Ingest interface {
	Swipes(ctx *fasthttp.RequestCtx)
	Counts(ctx *fasthttp.RequestCtx)
	Footfall(ctx *fasthttp.RequestCtx)
}

// Live serves the live view's endpoints; package dashboard's Dashboard is
// one.
type Live interface {
	// Socket upgrades GET /api/v1/live to the live map's WebSocket.
	Socket(ctx *fasthttp.RequestCtx)
	LiveStats(ctx *fasthttp.RequestCtx)
	AllSitesStatus(ctx *fasthttp.RequestCtx)
	// SiteStatus serves /api/v1/sites/{id}/status and reads the site's
	// id as ctx.UserValue("id").
	SiteStatus(ctx *fasthttp.RequestCtx)
	// SiteDays serves /api/v1/sites/{id}/days, the site's past days.
	SiteDays(ctx *fasthttp.RequestCtx)
	AlertHistory(ctx *fasthttp.RequestCtx)
	Config(ctx *fasthttp.RequestCtx)
	// Page returns the handlers of the embedded page's files by path.
	Page() map[string]fasthttp.RequestHandler
}

// Parts are the endpoints a Server mounts from other packages. A nil part
// keeps its routes and their policy; they answer 404 (tests mount only
// what they use).
type Parts struct {
	Ingest Ingest
	Live   Live
	// Forecasts keeps the series' models for /forecast and /anomalies.
	Forecasts *forecast.Tracker
}

// routes is every endpoint flowd serves, with its policy: the least role
// that may call it, what bounds it besides the token's request rate, and
// which calls the audit log records. The guard reads the policy from here.
func (s *Server) routes(p Parts) []Route {
	in, lv, fc := p.Ingest, p.Live, forecasts{s, p.Forecasts}
	routes := []Route{
		{"GET", "/healthz", RoleNone, LimitRate, AuditAdmin, s.health},
		{"GET", "/readyz", RoleNone, LimitRate, AuditAdmin, s.ready},
		{"GET", "/metrics", RoleAdmin, LimitRate, AuditAdmin, s.prometheus},

		// Ingest, which an admin token may do in bulk: not audited.
		{"POST", "/api/v1/ingest/swipes", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Swipes)},
		{"POST", "/api/v1/ingest/counts", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Counts)},
		{"POST", "/api/v1/ingest/footfall", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Footfall)},

		// Queries. A POST carries a long area or path as its body and
		// changes nothing, so a read token may make it.
		{"GET", "/api/v1/series", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseSeries, s.series)},
		{"POST", "/api/v1/series", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseSeries, s.series)},
		{"GET", "/api/v1/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDensity, s.density)},
		{"POST", "/api/v1/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDensity, s.density)},
		{"GET", "/api/v1/top", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseTop, s.top)},
		{"POST", "/api/v1/corridor", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseCorridorQuery, s.corridor)},
		{"POST", "/api/v1/path/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePathDensity, s.pathDensity)},
		{"GET", "/api/v1/od", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseOD, s.od)},
		{"GET", "/api/v1/distinct", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDistinct, s.distinct)},
		{"GET", "/api/v1/metrics", RoleRead, LimitRate, AuditAdmin, s.metricNames},
		{"GET", "/api/v1/forecast", RoleRead, LimitQuery, AuditAdmin, fc.served(endpoint(s, fc.parseForecast, fc.forecast))},
		{"GET", "/api/v1/anomalies", RoleRead, LimitQuery, AuditAdmin, fc.served(endpoint(s, fc.parseAnomalies, fc.anomalies))},

		// Registries, and the sites' live status beside them.
		{"GET", "/api/v1/stations", RoleRead, LimitRate, AuditAdmin, s.getStations},
		{"PUT", "/api/v1/stations", RoleAdmin, LimitUpload, AuditChanges, s.putRegistry(geo.SetStations)},
		{"GET", "/api/v1/sensors", RoleRead, LimitRate, AuditAdmin, s.getSensors},
		{"PUT", "/api/v1/sensors", RoleAdmin, LimitUpload, AuditChanges, s.putRegistry(geo.SetSensors)},
		{"GET", "/api/v1/sites", RoleRead, LimitRate, AuditAdmin, s.getSites},
		{"PUT", "/api/v1/sites", RoleAdmin, LimitUpload, AuditChanges, s.putRegistry(geo.SetSites)},
		{"GET", "/api/v1/sites/status", RoleRead, LimitRate, AuditAdmin, served(lv, Live.AllSitesStatus)},
		{"GET", "/api/v1/sites/{id}/status", RoleRead, LimitRate, AuditAdmin, served(lv, Live.SiteStatus)},
		{"GET", "/api/v1/sites/{id}/days", RoleRead, LimitQuery, AuditAdmin, served(lv, Live.SiteDays)},

		// The live view.
		{"GET", "/api/v1/live", RoleRead, LimitLive, AuditNever, liveSocket(lv)},
		{"GET", "/api/v1/live/stats", RoleRead, LimitRate, AuditAdmin, served(lv, Live.LiveStats)},
		{"GET", "/api/v1/alerts", RoleRead, LimitRate, AuditAdmin, served(lv, Live.AlertHistory)},
		{"GET", "/api/v1/dashboard/config", RoleRead, LimitRate, AuditAdmin, served(lv, Live.Config)},
	}
	// The page and its assets, open to all: each at its own path, so that
	// no catch-all shadows an endpoint.
	if lv != nil {
		for path, h := range lv.Page() {
			routes = append(routes, Route{"GET", path, RoleNone, LimitRate, AuditAdmin, h})
		}
	}
	return routes
}

// served returns the handler h of part p, or when the server was built
// without p, one that answers 404.
func served[P any](p P, h func(P, *fasthttp.RequestCtx)) fasthttp.RequestHandler {
	if any(p) == nil {
		return notServed
	}
	return func(ctx *fasthttp.RequestCtx) { h(p, ctx) }
}

// liveSocket serves the live map's WebSocket, telling it whether the
// caller may see exact figures about people (privacy.OffLive): an admin,
// or anyone while authentication is off.
func liveSocket(lv Live) fasthttp.RequestHandler {
	socket := served(lv, Live.Socket)
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetUserValue(privacy.ExactKey, RoleOf(ctx) == RoleAdmin)
		socket(ctx)
	}
}

func notServed(ctx *fasthttp.RequestCtx) {
	answer.Error(ctx, fasthttp.StatusNotFound, fmt.Errorf("%s %s is not served by this server", ctx.Method(), ctx.Path()))
}
