package api

import (
	"testing"

	"github.com/flowd/flowd/geo"
)

func TestRequiredRole(t *testing.T) {
	s := NewServer(nil, geo.New(9), "", Parts{})
	for _, tc := range []struct {
		method, path string
		want         Role
	}{
		{"GET", "/healthz", RoleNone},
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
