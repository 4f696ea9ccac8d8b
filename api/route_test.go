package api

import (
	"fmt"
	"testing"

	"github.com/flowd/flowd/geo"
	"github.com/valyala/fasthttp"
)

func TestRequiredRole(t *testing.T) {
	s := NewServer(nil, geo.New(9), "", Parts{})
	for _, tc := range []struct {
		method, path string
		want         Role
	}{
		{"GET", "/healthz", RoleNone},
		{"GET", "/readyz", RoleNone},
		{"GET", "/", RoleNone},
		{"GET", "/app.js", RoleNone},
		{"GET", "/vendor/maplibre-gl.js", RoleNone},
		{"GET", "/metrics", RoleAdmin},
		{"POST", "/api/v1/ingest/swipes", RoleIngest},
		{"GET", "/api/v1/ingest/swipes", RoleAdmin},
		{"GET", "/api/v1/series", RoleRead},
		{"HEAD", "/api/v1/density", RoleRead},
		{"POST", "/api/v1/corridor", RoleRead},
		{"POST", "/api/v1/path/density", RoleRead},
		{"GET", "/api/v1/live", RoleRead},
		{"GET", "/api/v1/sites/lake/status", RoleRead},
		{"PUT", "/api/v1/sites", RoleAdmin},
		{"DELETE", "/api/v1/sites", RoleAdmin},
		{"POST", "/api/v1/something-new", RoleAdmin},
	} {
		if got := s.requiredRole(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct {
		have, need Role
		want       bool
	}{
		{RoleIngest, RoleIngest, true}, {RoleIngest, RoleRead, false}, {RoleIngest, RoleAdmin, false},
		{RoleRead, RoleIngest, false}, {RoleRead, RoleRead, true}, {RoleRead, RoleAdmin, false},
		{RoleAdmin, RoleIngest, true}, {RoleAdmin, RoleRead, true}, {RoleAdmin, RoleAdmin, true},
		{RoleNone, RoleNone, true}, {RoleNone, RoleRead, false},
	} {
		if got := allows(tc.have, tc.need); got != tc.want {
			t.Errorf("allows(%v, %v) = %v", tc.have, tc.need, got)
		}
	}
}

func TestRouterFindsPatternsAndRefuses(t *testing.T) {
	ok := func(*fasthttp.RequestCtx) {}
	r := newRouter([]Route{
		{"GET", "/api/v1/sites/status", RoleRead, LimitRate, AuditAdmin, ok},
		{"GET", "/api/v1/sites/{id}/status", RoleRead, LimitRate, AuditAdmin, ok},
		{"PUT", "/api/v1/sites", RoleAdmin, LimitRate, AuditChanges, ok},
	})
	for _, tc := range []struct {
		method, path string
		want         string // the route's path, or the refusal's status
		id           string
	}{
		{"GET", "/api/v1/sites/status", "/api/v1/sites/status", ""},
		{"GET", "/api/v1/sites/lake/status", "/api/v1/sites/{id}/status", "lake"},
		{"HEAD", "/api/v1/sites/lake/status", "/api/v1/sites/{id}/status", "lake"},
		{"GET", "/api/v1/sites//status", "404", ""},
		{"GET", "/api/v1/sites/a/b/status", "404", ""},
		{"POST", "/api/v1/sites/lake/status", "405", ""},
		{"GET", "/api/v1/sites", "405", ""},
		{"GET", "/nowhere", "404", ""},
	} {
		rt, vars := r.find(tc.method, tc.path)
		got := rt.Path
		if got == "" {
			var ctx fasthttp.RequestCtx
			rt.Handler(&ctx)
			got = fmt.Sprint(ctx.Response.StatusCode())
		}
		if got != tc.want || vars["id"] != tc.id {
			t.Errorf("%s %s: %s with id %q, want %s with id %q", tc.method, tc.path, got, vars["id"], tc.want, tc.id)
		}
	}
}
