package api

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"
)

// openAPI serves GET /api/openapi.json: the OpenAPI 3 description of the
// routes, built once from the route table, the parameters declared
// beside it (routeParams) and the request bodies below.
func (s *Server) openAPI(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBody(s.openapi)
}

// Routes returns the route table as the server serves it, the page's
// files included.
func (s *Server) Routes() []Route { return s.table }

// requestBody describes what a route takes as its body.
type requestBody struct {
	types   []string
	schema  map[string]any
	example string
}

// routeBodies are the request bodies of the routes that take one, by
// "METHOD path"; the JSON ones' schemas are read from the structs that
// decode them.
func routeBodies(params map[string]Params) map[string]requestBody {
	text := map[string]any{"type": "string"}
	ndjsonCSV := []string{"application/x-ndjson", "text/csv"}
	lineProtocol := requestBody{[]string{"text/plain"}, text, "counts,sensor=cam-0001,class=car count=42i,interval=60i\nfootfall,site=west-lake,gate=north in=12i,out=3i\n"}
	return map[string]requestBody{
		"POST /api/v1/ingest/swipes":   {ndjsonCSV, text, `{"time":"2026-11-26T08:00:00Z","card":"C0453c92","dir":"in","station":"1"}` + "\n"},
		"POST /api/v1/ingest/counts":   {ndjsonCSV, text, `{"time":"2026-11-26T08:00:00Z","sensor":"cam-0001","class":"car","count":42,"interval":60}` + "\n"},
		"POST /api/v1/ingest/footfall": {ndjsonCSV, text, `{"time":"2026-11-26T08:00:00Z","site":"west-lake","gate":"north","in":12,"out":3}` + "\n"},
		"POST /write":                  lineProtocol,
		"POST /api/v2/write":           lineProtocol,
		"POST /api/v1/series":          {[]string{"application/x-www-form-urlencoded"}, formSchema(params["POST /api/v1/series"]), ""},
		"POST /api/v1/density":         {[]string{"application/x-www-form-urlencoded"}, formSchema(params["POST /api/v1/density"]), ""},
		"POST /api/v1/query_range":     {[]string{"application/x-www-form-urlencoded"}, formSchema(params["POST /api/v1/query_range"]), ""},
		"POST /api/v1/query":           {[]string{"application/x-www-form-urlencoded"}, formSchema(params["POST /api/v1/query"]), ""},
		"POST /api/v1/corridor": {[]string{"application/json"}, jsonSchema(reflect.TypeFor[corridorRequest]()),
			`{"path":[[30.27,120.10],[30.26,120.16]],"width":500,"metric":"footfall_in","from":"-1h","step":"5m"}`},
		"POST /api/v1/path/density": {[]string{"application/json"}, jsonSchema(reflect.TypeFor[pathDensityRequest]()),
			`{"paths":[{"id":"a","path":[[30.25,120.10],[30.25,120.16]]}],"width":300,"metric":"footfall_in","window":"15m","recent":"1h"}`},
		"PUT /api/v1/stations": {[]string{"text/csv", "application/json"}, text, "id,name,lat,lng,line\nS1,Longxiangqiao,30.2590,120.1640,1\n"},
		"PUT /api/v1/sensors":  {[]string{"text/csv", "application/geo+json"}, text, "id,name,lat,lng,kind\ncam-0001,Hubin Road,30.2700,120.1500,camera\n"},
		"PUT /api/v1/sites": {[]string{"application/geo+json"}, map[string]any{"type": "object"},
			`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"lake","name":"Lake","capacity":1000,"daily_capacity":5000},"geometry":{"type":"Polygon","coordinates":[[[120.14,30.24],[120.15,30.24],[120.15,30.25],[120.14,30.25],[120.14,30.24]]]}}]}`},
	}
}

// openAPIDocument builds the description of every route that has its
// parameters declared: the page's files are not part of the API.
func openAPIDocument(routes []Route, params map[string]Params) []byte {
	bodies := routeBodies(params)
	paths := map[string]map[string]any{}
	for i := range routes {
		rt := &routes[i]
		key := rt.Method + " " + rt.Path
		ps, ok := params[key]
		if !ok {
			continue
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = operation(rt, ps, bodies[key])
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "flowd",
			"version":     "1",
			"description": "Real-time monitoring of traffic and tourism flows. Conventions, formats and examples are in docs/api.md and the README.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas": map[string]any{"Error": map[string]any{
				"type": "object", "required": []string{"error"},
				"properties": map[string]any{"error": map[string]any{"type": "string", "description": "what was wrong, naming the parameter, line or field and its value"}},
			}},
		},
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		panic("BUG: OpenAPI document: " + err.Error())
	}
	return b
}

// operation describes one route.
func operation(rt *Route, ps Params, body requestBody) map[string]any {
	errorAnswer := map[string]any{"description": "refused; the error says why", "content": map[string]any{
		"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}},
	}}
	op := map[string]any{
		"operationId":  operationID(rt),
		"description":  "Least role: " + rt.Role.String() + ". See docs/api.md.",
		"x-flowd-role": rt.Role.String(),
		"parameters":   parameters(rt, ps),
		"responses": map[string]any{
			"200":     map[string]any{"description": "the answer", "content": answerTypes(rt, ps)},
			"400":     errorAnswer,
			"default": errorAnswer,
		},
	}
	if rt.Role == RoleNone {
		op["security"] = []any{}
	} else {
		op["security"] = []any{map[string]any{"bearer": []string{}}}
	}
	if body.types != nil {
		content := map[string]any{}
		for _, t := range body.types {
			mt := map[string]any{"schema": body.schema}
			if body.example != "" && t == body.types[0] {
				mt["example"] = body.example
				if t == "application/json" || t == "application/geo+json" {
					mt["example"] = json.RawMessage(body.example)
				}
			}
			content[t] = mt
		}
		op["requestBody"] = map[string]any{"required": true, "content": content}
	}
	return op
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func operationID(rt *Route) string {
	return strings.ToLower(rt.Method) + strings.TrimRight(nonWord.ReplaceAllString(rt.Path, "_"), "_")
}

// parameters describes a route's path segments and query parameters.
func parameters(rt *Route, ps Params) []any {
	var out []any
	for _, seg := range strings.Split(rt.Path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			out = append(out, map[string]any{"name": strings.TrimSuffix(name, "}"), "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
	}
	for _, p := range ps {
		param := map[string]any{"name": p.Name, "in": "query", "required": p.Required, "description": p.Doc, "schema": p.schema()}
		if p.Example != "" {
			param["example"] = p.Example
		}
		out = append(out, param)
	}
	if out == nil {
		out = []any{}
	}
	return out
}

// schema is a parameter's JSON Schema.
func (p Param) schema() map[string]any {
	s := map[string]any{"type": p.Type}
	if p.Format != "" {
		s["format"] = p.Format
	}
	if len(p.Enum) > 0 {
		s["enum"] = p.Enum
	}
	if p.Type == "integer" {
		s["minimum"] = p.Min
		if p.Max > 0 {
			s["maximum"] = p.Max
		}
	}
	return s
}

// formSchema describes a form body carrying a route's parameters.
func formSchema(ps Params) map[string]any {
	props := map[string]any{}
	for _, p := range ps {
		props[p.Name] = p.schema()
	}
	return map[string]any{"type": "object", "properties": props}
}

// jsonSchema describes the JSON a struct decodes, from its json tags: an
// embedded struct's fields are its own, a json.RawMessage takes a string
// or a number (times and durations) or a JSON value (paths).
func jsonSchema(t reflect.Type) map[string]any {
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		return map[string]any{"description": "a string, a number or, for a path, a JSON value"}
	case t.Kind() == reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return map[string]any{"type": "array", "items": jsonSchema(t.Elem())}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Float64:
		return map[string]any{"type": "number"}
	}
	panic("BUG: no JSON schema for " + t.String())
}

func addFields(t reflect.Type, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			addFields(f.Type, props)
			continue
		}
		if name != "" && name != "-" {
			props[name] = jsonSchema(f.Type)
		}
	}
}

// answerTypes are the media types of a route's 200 answer.
func answerTypes(rt *Route, ps Params) map[string]any {
	obj := map[string]any{"schema": map[string]any{"type": "object"}}
	text := map[string]any{"schema": map[string]any{"type": "string"}}
	switch rt.Path {
	case "/metrics":
		return map[string]any{"text/plain": text}
	case "/api/v1/sites":
		return map[string]any{"application/geo+json": obj}
	}
	types := map[string]any{"application/json": obj}
	for _, p := range ps {
		switch p.Name {
		case "format":
			types["text/csv"] = text
		case "geojson":
			types["application/geo+json"] = obj
		}
	}
	return types
}
