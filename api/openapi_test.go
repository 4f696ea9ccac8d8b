package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/dashboard"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/getkin/kin-openapi/openapi3"
)

// /api/openapi.json is a valid OpenAPI 3 document (as kin-openapi reads
// it) that describes every route of the table but the page's files, and
// nothing else; each described operation answers its examples, and each
// parameter is validated as described: a value its schema refuses, a
// missing required one and an unknown one are 400s naming the parameter.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	fs, page := startFullServer(t)
	r := get(t, fs.URL+"/api/openapi.json")
	if r.status != 200 {
		t.Fatalf("GET /api/openapi.json: %d %s", r.status, r.body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("not an OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("not a valid OpenAPI 3 document: %v", err)
	}

	described := 0
	for _, rt := range fs.API.Routes() {
		if page[rt.Path] {
			continue
		}
		described++
		if item := doc.Paths.Value(rt.Path); item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("%s %s is not described", rt.Method, rt.Path)
		}
	}
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			served := slices.ContainsFunc(fs.API.Routes(), func(rt api.Route) bool { return rt.Method == method && rt.Path == path })
			if !served {
				t.Errorf("%s %s is described and not a route", method, path)
				continue
			}
			checkOperation(t, fs.URL, method, path, op)
		}
	}
	if ops != described || ops < 30 {
		t.Errorf("%d operations described, %d routes besides the page's files", ops, described)
	}
}

// checkOperation calls one described operation with its examples, then
// with each parameter made wrong in turn.
func checkOperation(t *testing.T, base, method, path string, op *openapi3.Operation) {
	t.Helper()
	name := method + " " + path
	path = strings.NewReplacer("{id}", "lake", "{name}", "__name__").Replace(path)
	example := url.Values{}
	for _, p := range op.Parameters {
		if p.Value.In == "query" && p.Value.Example != nil {
			example.Set(p.Value.Name, fmt.Sprint(p.Value.Example))
		}
	}
	ctype, body := exampleBody(op)
	r := do(t, method, base+path+"?"+example.Encode(), ctype, body)
	switch {
	case r.status == 404 || r.status == 405 || r.status >= 500:
		t.Errorf("%s with its examples: %d %s", name, r.status, r.body)
	case method == "GET" && path != "/api/v1/live" && r.status != 200:
		t.Errorf("%s with its examples: %d %s; want 200", name, r.status, r.body)
	}
	for _, p := range op.Parameters {
		v := p.Value
		if v.In != "query" {
			continue
		}
		q := withoutOtherAreas(example, v.Name)
		if bad, ok := badValue(v.Schema.Value); ok {
			q.Set(v.Name, bad)
			wantNamed(t, name+" with "+v.Name+"="+bad, do(t, method, base+path+"?"+q.Encode(), ctype, body), v.Name)
		}
		if v.Required {
			q.Del(v.Name)
			wantNamed(t, name+" without "+v.Name, do(t, method, base+path+"?"+q.Encode(), ctype, body), v.Name)
		}
	}
	q := withoutOtherAreas(example, "")
	q.Set("zzz", "1")
	wantNamed(t, name+" with an unknown parameter", do(t, method, base+path+"?"+q.Encode(), ctype, body), "zzz")
}

// wantNamed fails unless r is a 400 whose error names param.
func wantNamed(t *testing.T, what string, r response, param string) {
	t.Helper()
	var a struct{ Error string }
	json.Unmarshal(r.body, &a)
	if r.status != 400 || !strings.Contains(a.Error, strconv.Quote(param)) {
		t.Errorf("%s: %d %s; want a 400 naming %q", what, r.status, r.body, param)
	}
}

// badValue returns a value the schema refuses, for the schemas whose
// values flowd checks (free text such as a site filter has none).
func badValue(s *openapi3.Schema) (string, bool) {
	switch {
	case len(s.Enum) > 0:
		return "nonsense", true
	case s.Type.Is("integer"):
		return "x", true
	}
	bad, ok := map[string]string{
		api.FormatTime: "yesterday", api.FormatDuration: "5 minutes", api.FormatMetric: "count_carz",
		api.FormatCells: "zz", api.FormatBBox: "1,2", api.FormatGeoJSON: "{", api.FormatPromQL: "rate(footfall_in[5m])",
	}[s.Format]
	return bad, ok
}

// withoutOtherAreas copies q without the area parameters of name's prefix
// other than name: a query reads one area, the first it finds.
func withoutOtherAreas(q url.Values, name string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	prefix := ""
	if strings.HasPrefix(name, "dest_") {
		prefix = "dest_"
	}
	areas := []string{"cells", "site", "bbox", "polygon"}
	if !slices.Contains(areas, strings.TrimPrefix(name, prefix)) {
		return out
	}
	for _, a := range areas {
		if prefix+a != name {
			out.Del(prefix + a)
		}
	}
	return out
}

// exampleBody returns the first content type of an operation's body and
// its example.
func exampleBody(op *openapi3.Operation) (string, []byte) {
	if op.RequestBody == nil {
		return "", nil
	}
	for ctype, mt := range op.RequestBody.Value.Content {
		if mt.Example == nil {
			continue
		}
		if s, ok := mt.Example.(string); ok {
			return ctype, []byte(s)
		}
		b, _ := json.Marshal(mt.Example)
		return ctype, b
	}
	return "application/x-www-form-urlencoded", nil
}

type response struct {
	status int
	body   []byte
}

func do(t *testing.T, method, u, ctype string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, b}
}

func get(t *testing.T, u string) response { return do(t, "GET", u, "", nil) }

// startFullServer serves ingest and the live view as flowd serve does,
// with a site "lake"; it returns the server and the page's paths.
func startFullServer(t *testing.T) (*flowdtest.Server, map[string]bool) {
	dir := t.TempDir()
	page := map[string]bool{}
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		sites, err := geo.ReadSitesGeoJSON(strings.NewReader(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"lake","name":"Lake","capacity":1000},"geometry":{"type":"Polygon","coordinates":[[[120.14,30.24],[120.15,30.24],[120.15,30.25],[120.14,30.25],[120.14,30.24]]]}}]}`))
		if err == nil {
			err = reg.PutSites(sites)
		}
		if err == nil {
			err = reg.PutStations([]geo.Station{{ID: "S1", Name: "Longxiangqiao", Lat: 30.2590, Lng: 120.1640, Line: "1"}, {ID: "S2", Name: "Fengqi Road", Lat: 30.2660, Lng: 120.1680, Line: "1"}})
		}
		if err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := dashboard.New(dashboard.Options{Store: st, Registry: reg, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for p := range d.Page() {
			page[p] = true
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Deltas: []ingest.DeltaObserver{d.Hub}, Footfall: []ingest.FootfallObserver{d.Sites}}
		fc := forecast.NewTracker(st, reg, forecast.Options{Logf: t.Logf})
		if err := fc.Warm(); err != nil { // its models of the registries' sites and stations
			t.Fatal(err)
		}
		return api.Parts{Ingest: ingest.NewHandler(b, 8), Live: d, Forecasts: fc}, func() { d.Close() }
	})
	return fs.Serve(), page
}
