package api

import (
	"fmt"

	"github.com/flowd/flowd/privacy"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/remote"
	"github.com/valyala/fasthttp"
)

// Ingest serves the ingest endpoints; package ingest's Handler is one.
type Ingest interface {
	Swipes(ctx *fasthttp.RequestCtx)
	Counts(ctx *fasthttp.RequestCtx)
	Footfall(ctx *fasthttp.RequestCtx)
	// Influx serves InfluxDB line protocol at InfluxDB's write paths.
	Influx(ctx *fasthttp.RequestCtx)
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
	// Remote ships finished buckets to VictoriaMetrics; nil without one.
	Remote *remote.Tier
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
		{"GET", "/api/openapi.json", RoleRead, LimitRate, AuditAdmin, s.openAPI},

		// Ingest, which an admin token may do in bulk: not audited.
		{"POST", "/api/v1/ingest/swipes", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Swipes)},
		{"POST", "/api/v1/ingest/counts", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Counts)},
		{"POST", "/api/v1/ingest/footfall", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Footfall)},
		{"POST", "/write", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Influx)},
		{"POST", "/api/v2/write", RoleIngest, LimitUpload, AuditNever, served(in, Ingest.Influx)},

		// Queries. A POST carries a long area or path as its body and
		// changes nothing, so a read token may make it.
		{"GET", "/api/v1/series", RoleRead, LimitQuery, AuditAdmin, s.seriesOrList(endpoint(s, s.parseSeries, s.series))},
		{"POST", "/api/v1/series", RoleRead, LimitQuery, AuditAdmin, s.seriesOrList(endpoint(s, s.parseSeries, s.series))},
		{"GET", "/api/v1/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDensity, s.density)},
		{"POST", "/api/v1/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDensity, s.density)},
		{"GET", "/api/v1/top", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseTop, s.top)},
		{"POST", "/api/v1/corridor", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseCorridorQuery, s.corridor)},
		{"POST", "/api/v1/path/density", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePathDensity, s.pathDensity)},
		{"GET", "/api/v1/od", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseOD, s.od)},
		{"GET", "/api/v1/sections", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseSections, s.sections)},
		{"GET", "/api/v1/distinct", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parseDistinct, s.distinct)},
		{"GET", "/api/v1/metrics", RoleRead, LimitRate, AuditAdmin, s.metricNames},
		{"GET", "/api/v1/privacy", RoleRead, LimitRate, AuditAdmin, s.privacyTerms},
		{"GET", "/api/v1/forecast", RoleRead, LimitQuery, AuditAdmin, fc.served(endpoint(s, fc.parseForecast, fc.forecast))},
		{"GET", "/api/v1/anomalies", RoleRead, LimitQuery, AuditAdmin, fc.served(endpoint(s, fc.parseAnomalies, fc.anomalies))},
		// Prometheus' query API, in the subset docs/api.md describes.
		{"GET", "/api/v1/query_range", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePromRange, s.promQuery)},
		{"POST", "/api/v1/query_range", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePromRange, s.promQuery)},
		{"GET", "/api/v1/query", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePromInstant, s.promQuery)},
		{"POST", "/api/v1/query", RoleRead, LimitQuery, AuditAdmin, endpoint(s, s.parsePromInstant, s.promQuery)},
		// Its listings, for Grafana's metric browser (/api/v1/series with
		// match[] is the third).
		{"GET", "/api/v1/labels", RoleRead, LimitRate, AuditAdmin, s.promLabels},
		{"POST", "/api/v1/labels", RoleRead, LimitRate, AuditAdmin, s.promLabels},
		{"GET", "/api/v1/label/{name}/values", RoleRead, LimitRate, AuditAdmin, s.promLabelValues},

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
		// A query node's live map polls its peers' recent minutes, and its
		// queries read their buckets not in VictoriaMetrics yet, exact.
		{"POST", "/api/v1/buckets", RoleAdmin, LimitQuery, AuditNever, endpoint(s, s.parseBuckets, s.buckets)},
		{"GET", "/api/v1/live/recent", RoleAdmin, LimitQuery, AuditNever, endpoint(s, s.parseRecent, s.recent)},
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

// routeParams declares the query parameters of each route of the table,
// by "METHOD path": a request naming any other is refused (400), and the
// OpenAPI description lists these. A route of the table missing here
// takes any parameter and goes undescribed (TestOpenAPIDescribesEveryRoute
// fails); the page's files take none.
func routeParams() map[string]Params {
	area := areaParamsOf("", "the area")
	series := metricParam.with(area, resParam, spanParams, Params{
		{Name: "step", Type: "string", Format: FormatDuration, Doc: "step of the points (default 1m)"},
		{Name: "local", Type: "string", Enum: []string{"1", "true"}, Doc: "answer from this node's store only, not from VictoriaMetrics or peers (a query node asks its peers so)"},
		{Name: "sensor", Type: "string", Doc: "in place of an area: one detector's own counts of a count_ or speed_ metric, even where it shares its cell (with flowd serve -entity-series)"},
		{Name: "station", Type: "string", Doc: "in place of an area: one station's own taps (swipes_in, swipes_out), even where it shares its cell (with flowd serve -entity-series)"},
		{Name: "group", Type: "string", Doc: "a rider group's own figures (flowd serve -rider-groups): its swipes, its matched trips"},
	}, formatParam)
	density := metricParam.with(area, resParam, Params{
		{Name: "at", Type: "string", Format: FormatTime, Doc: "end of the window (default now)"},
		{Name: "window", Type: "string", Format: FormatDuration, Doc: "span summed, ending at at (default 5m)"},
		{Name: "local", Type: "string", Enum: []string{"1", "true"}, Doc: "answer from this node's store only, not from VictoriaMetrics or peers (a query node asks its peers so)"},
	}, spanParams, formatParam, geoJSONParam)
	precision := Param{Name: "precision", Type: "string", Enum: []string{"ns", "us", "ms", "s"}, Doc: "unit of the timestamps (default ns)"}
	ignored := func(name string) Param {
		return Param{Name: name, Type: "string", Doc: "accepted for InfluxDB clients, and ignored"}
	}
	influxV1 := Params{precision, ignored("db"), ignored("rp"), ignored("u"), ignored("p"), ignored("consistency")}
	influxV1[0].Enum = []string{"n", "ns", "u", "us", "µ", "ms", "s", "m", "h"}
	influxV2 := Params{precision, ignored("org"), ignored("orgID"), ignored("bucket")}
	promQL := Param{Name: "query", Type: "string", Format: FormatPromQL, Required: true, Example: `sum(footfall_in{bbox="120.10,30.20,120.20,30.30"})`,
		Doc: "metric{cell|site|bbox|polygon|res=\"...\"}, sum(...) or sum by (cell) (...)"}
	promIgnored := Params{ignored("timeout"), ignored("limit")}
	promRange := Params{promQL,
		{Name: "start", Type: "string", Format: FormatTime, Doc: "first evaluation time (default an hour ago)"},
		{Name: "end", Type: "string", Format: FormatTime, Doc: "last evaluation time (default now)"},
		{Name: "step", Type: "string", Required: true, Example: "60", Doc: "whole minutes, as seconds or a duration; the value at t sums the step ending at t"},
	}.with(promIgnored)
	promInstant := Params{promQL, {Name: "time", Type: "string", Format: FormatTime, Doc: "evaluation time (default now); the value sums the 5 minutes before it"}}.with(promIgnored)
	promListing := Params{
		{Name: "match[]", Type: "string", Doc: "series selectors, metric{...} or {__name__=~\"...\"}, repeated: only what they match"},
		{Name: "start", Type: "string", Format: FormatTime, Doc: "accepted for Prometheus clients: every metric flowd keeps is listed, whatever the span"},
		{Name: "end", Type: "string", Format: FormatTime, Doc: "as start"},
		{Name: "limit", Type: "integer", Min: 0, Doc: "at most this many (0: all)"},
	}
	registryPut := Params{{Name: "clear", Type: "string", Enum: []string{"1", "true"}, Doc: "with an empty body, empty the set"}}
	return map[string]Params{
		"GET /healthz": noParams, "GET /readyz": noParams, "GET /metrics": noParams, "GET /api/openapi.json": noParams,
		"POST /api/v1/ingest/swipes": noParams, "POST /api/v1/ingest/counts": noParams, "POST /api/v1/ingest/footfall": noParams,
		"POST /write":        influxV1,
		"POST /api/v2/write": influxV2,
		"GET /api/v1/series": series.with(promListing), "POST /api/v1/series": series.with(promListing),
		"GET /api/v1/density": density, "POST /api/v1/density": density,
		"GET /api/v1/top": metricParam.with(Params{
			{Name: "k", Type: "integer", Min: 1, Max: 10000, Doc: "how many cells (default 10)"},
			{Name: "window", Type: "string", Format: FormatDuration, Doc: "span summed, ending at to (default 15m)"},
		}, resParam, spanParams, area, formatParam),
		"POST /api/v1/corridor":     formatParam,
		"POST /api/v1/path/density": noParams,
		"GET /api/v1/od": Params{
			{Name: "by", Type: "string", Enum: []string{"cell", "station"}, Doc: "pairs of cells (default) or of stations"},
			{Name: "top", Type: "integer", Min: 1, Max: 100000, Doc: "how many pairs (default 100)"},
			{Name: "source", Type: "string", Enum: []string{"matched", "inferred", "all"}, Doc: "trips counted: matched tap-in/tap-out (default), inferred from tap-in-only legs, or all"},
			{Name: "group", Type: "string", Doc: "a rider group's own figures (flowd serve -rider-groups): its swipes, its matched trips"},
		}.with(resParam, spanParams, areaParamsOf("", "the origins"), areaParamsOf("dest_", "the destinations"), formatParam),
		"GET /api/v1/sections": Params{
			{Name: "line", Type: "string", Required: true, Doc: "the line, as the station registry names it", Example: "1"},
			{Name: "source", Type: "string", Enum: []string{"matched", "inferred", "all"}, Doc: "rides assigned: matched trips (default), inferred legs of tap-in-only lines, or all"},
			{Name: "group", Type: "string", Doc: "a rider group's own figures (flowd serve -rider-groups): its swipes, its matched trips"},
			{Name: "step", Type: "string", Format: FormatDuration, Doc: "load per step of the tap-in (default 1h)"},
		}.with(spanParams, formatParam),
		"GET /api/v1/distinct": area.with(resParam, spanParams, Params{
			{Name: "step", Type: "string", Format: FormatDuration, Doc: "also count per step"},
		}),
		"GET /api/v1/metrics":     noParams,
		"GET /api/v1/privacy":     noParams,
		"GET /api/v1/query_range": promRange, "POST /api/v1/query_range": promRange,
		"GET /api/v1/query": promInstant, "POST /api/v1/query": promInstant,
		"GET /api/v1/labels": promListing, "POST /api/v1/labels": promListing,
		"GET /api/v1/label/{name}/values": promListing,
		"GET /api/v1/stations":            noParams, "PUT /api/v1/stations": registryPut,
		"GET /api/v1/sensors": noParams, "PUT /api/v1/sensors": registryPut,
		"GET /api/v1/sites": noParams, "PUT /api/v1/sites": registryPut,
		"GET /api/v1/sites/status": {
			{Name: "at", Type: "string", Format: FormatTime, Doc: "the sites' status at this past time, from the store (default now, live)"},
		},
		"GET /api/v1/sites/{id}/status": noParams,
		"GET /api/v1/sites/{id}/days": Params{
			{Name: "from", Type: "string", Doc: "first site day: a date (YYYY-MM-DD), a time or a duration before now (default 30 days ago)"},
			{Name: "to", Type: "string", Doc: "the site day after the last: a date, a time or a duration before now (default tomorrow)"},
		}.with(formatParam),
		"GET /api/v1/forecast": Params{
			{Name: "site", Type: "string", Example: "lake", Doc: "a site's forecast (one of site, station or cells)"},
			{Name: "station", Type: "string", Doc: "a station's forecast"},
			{Name: "cells", Type: "string", Doc: "base cells' forecasts (comma-separated H3 ids), with metric"},
			{Name: "metric", Type: "string", Doc: "occupancy, footfall_in or footfall_out for a site (default occupancy); swipes_in or swipes_out for a station; any metric the cells are watched for"},
			{Name: "horizon", Type: "string", Format: FormatDuration, Doc: "how far ahead, at most 24h (default 1h)"},
			{Name: "step", Type: "string", Format: FormatDuration, Doc: "step of the points (default 10m)"},
		}.with(formatParam),
		"GET /api/v1/anomalies": {
			{Name: "metric", Type: "string", Doc: "only this metric's series"},
			{Name: "place", Type: "string", Enum: []string{"station", "site", "cell"}, Doc: "only stations, sites or cells"},
			{Name: "bbox", Type: "string", Doc: "only places in west,south,east,north"},
		},
		"GET /api/v1/live":       {{Name: "token", Type: "string", Doc: "the bearer token, since a browser cannot set headers on a WebSocket"}},
		"GET /api/v1/live/stats": noParams,
		"POST /api/v1/buckets": {
			{Name: "metric", Type: "string", Required: true, Doc: "a metric or family, as stored"},
			{Name: "tier", Type: "string", Enum: []string{"minute", "hour"}, Doc: "the tier (default minute)"},
			{Name: "ranges", Type: "string", Doc: "comma-separated lo-hi ranges of base cell ids in hex (default everywhere)"},
			{Name: "from", Type: "string", Format: FormatTime, Doc: "first minute (default an hour ago)"},
			{Name: "to", Type: "string", Format: FormatTime, Doc: "the minute after the last (default now)"},
		},
		"GET /api/v1/live/recent": {
			{Name: "from", Type: "string", Format: FormatTime, Doc: "the first minute, at most 2 hours ago (default 10 minutes ago)"},
		},
		"GET /api/v1/alerts": {
			{Name: "site", Type: "string", Doc: "only this site's level changes"},
			{Name: "since", Type: "string", Format: FormatTime, Doc: "only changes from this time on"},
			{Name: "limit", Type: "integer", Min: 1, Max: 10000, Doc: "at most this many, the latest (default 1000)"},
		},
		"GET /api/v1/dashboard/config": noParams,
	}
}
