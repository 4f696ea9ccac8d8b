package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
)

// TestRegistryPutRefusesEmptyBodiesAndBadIDs puts bodies that would empty
// a set or carry a path as an id: each is answered 400 and the set is
// kept; ?clear=1 with an empty body empties it on purpose.
func TestRegistryPutRefusesEmptyBodiesAndBadIDs(t *testing.T) {
	fs := flowdtest.New(t, t.TempDir(), func(*storage.Store, *geo.Registry) (api.Parts, func()) { return api.Parts{}, nil })
	fs.API.Logf = t.Logf
	fs.Serve()
	put := func(path, ctype, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", fs.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(text)
	}
	const stations = "id,name,lat,lng\nS1,One,30.25,120.16\nS2,Two,30.26,120.17\n"
	if status, text := put("/api/v1/stations", "text/csv", stations); status != 200 {
		t.Fatalf("PUT stations: %d %s", status, text)
	}
	for _, tc := range []struct{ path, ctype, body, want string }{
		{"/api/v1/stations", "text/csv", "", "empty"},
		{"/api/v1/stations", "text/csv", "id,name,lat,lng\n", "no entries"},
		{"/api/v1/stations", "application/json", "[]", "no entries"},
		{"/api/v1/sensors", "text/csv", "", "empty"},
		{"/api/v1/sites", "application/geo+json", `{"type":"FeatureCollection","features":[]}`, "no entries"},
		{"/api/v1/stations", "text/csv", "id,name,lat,lng\n../../etc,x,30.25,120.16\n", "../../etc"},
		{"/api/v1/stations?clear=1", "text/csv", stations, "clear"},
	} {
		status, text := put(tc.path, tc.ctype, tc.body)
		if status != 400 || !strings.Contains(text, tc.want) {
			t.Errorf("PUT %s %q: %d %s; want 400 saying %q", tc.path, tc.body, status, text, tc.want)
		}
	}
	if n := len(fs.Registry.Stations()); n != 2 {
		t.Fatalf("refused PUTs left %d stations, want 2", n)
	}
	if status, text := put("/api/v1/stations?clear=1", "text/csv", ""); status != 200 {
		t.Fatalf("PUT ?clear=1 with an empty body: %d %s", status, text)
	}
	if n := len(fs.Registry.Stations()); n != 0 {
		t.Fatalf("?clear=1 left %d stations", n)
	}
}
