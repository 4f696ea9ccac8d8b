package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flowd/flowd/answer"
	"github.com/valyala/fasthttp"
)

// Param is a query parameter a route takes, declared beside the route in
// routes.go: the server refuses a parameter its route does not declare,
// and the OpenAPI description (/api/openapi.json) is built from these.
type Param struct {
	Name string
	// Type is the value's JSON Schema type: "string", "integer" or
	// "boolean"; Format names flowd's forms of strings (see paramFormats).
	Type, Format string
	Min, Max     int // of an integer; Max 0: no bound
	Enum         []string
	Required     bool
	Doc          string
	// Example is a value with which, and the other parameters'
	// examples, the route answers 200 (TestOpenAPIDescribesEveryRoute).
	Example string
}

// The formats of string parameters, as the OpenAPI description names
// them.
const (
	FormatTime     = "flowd-time"     // RFC 3339, unix seconds or ms, now, or -24h
	FormatDuration = "flowd-duration" // whole minutes: 1m, 15m, 1h
	FormatMetric   = "flowd-metric"   // a metric name GET /api/v1/metrics lists
	FormatCells    = "h3-cells"       // comma-separated H3 ids
	FormatBBox     = "bbox"           // west,south,east,north in degrees
	FormatGeoJSON  = "geojson"        // a GeoJSON Polygon, MultiPolygon or Feature
	FormatPromQL   = "promql"         // the subset of PromQL of /api/v1/query
)

// Params are a route's parameters, in the order documentation lists them.
type Params []Param

// names returns the parameters' names.
func (ps Params) names() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// with returns ps and more as one list.
func (ps Params) with(more ...Params) Params {
	out := slices.Clone(ps)
	for _, m := range more {
		out = append(out, m...)
	}
	return out
}

// The parameters several routes share.
var (
	metricParam = Params{{Name: "metric", Type: "string", Format: FormatMetric, Required: true, Doc: "metric to sum, as GET /api/v1/metrics lists them", Example: "footfall_in"}}
	resParam    = Params{{Name: "res", Type: "integer", Min: 0, Max: 15, Doc: "H3 resolution of the answer, no finer than the base one (default the base one; cells keep their own)"}}
	spanParams  = Params{
		{Name: "from", Type: "string", Format: FormatTime, Doc: "start of the span"},
		{Name: "to", Type: "string", Format: FormatTime, Doc: "end of the span (default the end of the current minute); must come after from"},
	}
	formatParam  = Params{{Name: "format", Type: "string", Enum: []string{"json", "csv"}, Doc: "csv for a table (also Accept: text/csv)"}}
	geoJSONParam = Params{{Name: "geojson", Type: "string", Enum: []string{"1", "true", "0", "false"}, Doc: "1 for a GeoJSON FeatureCollection of cell boundaries"}}
	noParams     = Params{}
)

// areaParamsOf are the parameters that name an area, one at a time, with
// a prefix (dest_ for OD destinations).
func areaParamsOf(prefix, what string) Params {
	return Params{
		{Name: prefix + "cells", Type: "string", Format: FormatCells, Doc: what + ": H3 cells, comma-separated"},
		{Name: prefix + "site", Type: "string", Doc: what + ": a scenic site's id"},
		{Name: prefix + "bbox", Type: "string", Format: FormatBBox, Doc: what + ": west,south,east,north in degrees", Example: "120.10,30.20,120.20,30.30"},
		{Name: prefix + "polygon", Type: "string", Format: FormatGeoJSON, Doc: what + ": a GeoJSON polygon"},
	}
}

// checkParams wraps h so that a request naming a parameter the route does
// not take (in its URL, or in a POSTed form) is answered 400, naming the
// parameter and the closest one the route takes: a misspelt step must
// not silently become the default. A value outside a parameter's Enum is
// a 400 too.
func checkParams(rt *Route, ps Params, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	known := ps.names()
	return func(ctx *fasthttp.RequestCtx) {
		if err := unknownParam(rt, known, ctx.QueryArgs()); err != nil {
			answer.Fail(ctx, err)
			return
		}
		if err := ps.checkEnums(ctx.QueryArgs()); err != nil {
			answer.Fail(ctx, err)
			return
		}
		// A form body carries a query's parameters; an upload's body is
		// data, whatever type it claims (curl posts line protocol as a
		// form).
		if rt.Limit != LimitUpload && ctx.IsPost() && strings.HasPrefix(string(ctx.Request.Header.ContentType()), "application/x-www-form-urlencoded") {
			if err := unknownParam(rt, known, ctx.PostArgs()); err != nil {
				answer.Fail(ctx, err)
				return
			}
		}
		h(ctx)
	}
}

// checkEnums refuses a value of an enumerated parameter that is not one
// of its values.
func (ps Params) checkEnums(args *fasthttp.Args) error {
	for _, p := range ps {
		if v := args.Peek(p.Name); len(v) > 0 && len(p.Enum) > 0 && !slices.Contains(p.Enum, string(v)) {
			return &paramError{Param: p.Name, Value: string(v), Reason: "want one of " + strings.Join(p.Enum, ", ")}
		}
	}
	return nil
}

// unknownParam returns the error for the first argument of args whose
// name is not among known.
func unknownParam(rt *Route, known []string, args *fasthttp.Args) error {
	for k, v := range args.All() {
		if !slices.Contains(known, string(k)) {
			takes := "no parameters"
			if len(known) > 0 {
				takes = "only " + strings.Join(known, ", ")
			}
			return &paramError{Param: answer.Clip(string(k)), Value: string(v),
				Reason: fmt.Sprintf("unknown parameter%s: %s %s takes %s", answer.DidYouMean(string(k), known), rt.Method, rt.Path, takes)}
		}
	}
	return nil
}
