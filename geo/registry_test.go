package geo

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func testSites(t *testing.T) []Site {
	t.Helper()
	sites, err := ReadSitesGeoJSON(strings.NewReader(siteCollection(
		siteFeature(`"id":"west-lake","name":"西湖","capacity":219000,"daily_capacity":797500`),
		`{"type":"Feature","properties":{"id":"tiny","capacity":50},"geometry":{"type":"Polygon","coordinates":[`+square(120.2, 30.3, 0.00001)+`]}}`,
	)))
	if err != nil {
		t.Fatal(err)
	}
	return sites
}

func TestRegistryPutAndLookup(t *testing.T) {
	r := New(9)
	if err := r.PutStations([]Station{{ID: "b", Name: "B", Lat: 30.27, Lng: 120.16}, {ID: "a", Name: "A", Lat: 30.25, Lng: 120.17}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutSensors([]Sensor{{ID: "c1", Lat: -37.8, Lng: 144.9}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutSites(testSites(t)); err != nil {
		t.Fatal(err)
	}
	st, ok := r.Station("a")
	if want, _ := CellOf(30.25, 120.17, 9); !ok || st.Cell != want {
		t.Fatalf("Station(a) = %+v, %v; want cell %s", st, ok, want)
	}
	if _, ok := r.Station("zz"); ok {
		t.Fatal("unknown station found")
	}
	if list := r.Stations(); len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("Stations() = %+v, want a, b", list)
	}
	if s, ok := r.Sensor("c1"); !ok || !s.Cell.IsValid() {
		t.Fatalf("Sensor(c1) = %+v, %v", s, ok)
	}
	lake, ok := r.Site("west-lake")
	if !ok || len(lake.Cells) < 50 || !lake.Cell.IsValid() || lake.Cell.Resolution() != 9 {
		t.Fatalf("Site(west-lake) has %d cells, cell %s", len(lake.Cells), lake.Cell)
	}
	if tiny, _ := r.Site("tiny"); len(tiny.Cells) != 1 || tiny.Cells[0] != tiny.Cell {
		t.Fatalf("a site smaller than a cell should have its centroid's cell, got %v (cell %s)", tiny.Cells, tiny.Cell)
	}

	// A failed put leaves everything as it was.
	tests := []struct {
		name    string
		put     func() error
		wantErr string
	}{
		{"station lat", func() error { return r.PutStations([]Station{{ID: "x", Lat: 91}}) }, `station "x": latitude 91`},
		{"station id", func() error { return r.PutStations([]Station{{Lat: 1}}) }, "station 1: id is empty"},
		{"station twice", func() error { return r.PutStations([]Station{{ID: "x"}, {ID: "x"}}) }, `station "x": id given twice`},
		{"sensor lng", func() error { return r.PutSensors([]Sensor{{ID: "s", Lng: 200}}) }, `sensor "s": longitude 200`},
		{"site capacity", func() error { return r.PutSites([]Site{{ID: "s", Yellow: .8, Orange: .9, Red: .95}}) }, `site "s": capacity 0`},
	}
	for _, tt := range tests {
		if err := tt.put(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if len(r.Stations()) != 2 || len(r.Sensors()) != 1 || len(r.Sites()) != 2 {
		t.Fatal("a failed put changed the registry")
	}
}

func TestRegistrySiteTooLarge(t *testing.T) {
	sites := testSites(t)[:1]
	err := New(13).PutSites(sites)
	if err == nil || !strings.Contains(err.Error(), `site "west-lake"`) || !strings.Contains(err.Error(), "try resolution") {
		t.Fatalf("error = %v, want the site named and a coarser resolution suggested", err)
	}
}

func TestRegistrySaveLoad(t *testing.T) {
	dir := t.TempDir()
	r := New(9)
	if err := r.PutStations([]Station{{ID: "s1", Name: "Wulin", Line: "1,3", Lat: 30.27, Lng: 120.16}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutSensors([]Sensor{{ID: "c1", Name: "Cam", Kind: "camera", Lat: -37.8, Lng: 144.9}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutSites(testSites(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{SensorsFile, SitesFile, StationsFile}) {
		t.Fatalf("dir holds %v, want just the three registry files", names)
	}

	back := New(9)
	if err := back.Load(dir); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Stations(), r.Stations()) || !reflect.DeepEqual(back.Sensors(), r.Sensors()) || !reflect.DeepEqual(back.Sites(), r.Sites()) {
		t.Fatalf("loaded registry differs:\n%+v\n%+v", back.Stations(), r.Stations())
	}

	// Missing files are fine: an empty dir loads an empty registry.
	empty := New(9)
	if err := empty.Load(t.TempDir()); err != nil || len(empty.Stations()) != 0 {
		t.Fatalf("Load of empty dir: %v, %d stations", err, len(empty.Stations()))
	}

	// A damaged file is named and leaves the registry as it was.
	if err := os.WriteFile(filepath.Join(dir, SensorsFile), []byte(`[{"id":"c1","lat":"x"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := back.Load(dir)
	if err == nil || !strings.Contains(err.Error(), SensorsFile) {
		t.Fatalf("Load of damaged file: %v, want an error naming %s", err, SensorsFile)
	}
	if len(back.Sensors()) != 1 || len(back.Stations()) != 1 {
		t.Fatal("a failed Load changed the registry")
	}
}

func TestRegistryConcurrentReaders(t *testing.T) {
	r := New(9)
	put := func(lat float64) {
		if err := r.PutStations([]Station{{ID: "s", Lat: lat, Lng: 120}}); err != nil {
			t.Error(err)
		}
	}
	put(30)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if s, ok := r.Station("s"); !ok || !s.Cell.IsValid() {
					t.Error("reader saw a registry without station s")
					return
				}
			}
		})
	}
	for i := range 100 {
		put(30 + float64(i)/100)
	}
	wg.Wait()
}

// TestCellLookupsFollowTheSets checks the ingest path's cell lookups
// against the entries, across replacements of the sets.
func TestCellLookupsFollowTheSets(t *testing.T) {
	r := New(9)
	if err := r.PutSensors([]Sensor{{ID: "a", Lat: 30.25, Lng: 120.16}, {ID: "b", Lat: 30.3, Lng: 120.2}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutStations([]Station{{ID: "s1", Lat: 30.27, Lng: 120.1}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		sn, _ := r.Sensor(id)
		if c, ok := r.SensorCell(id); !ok || c != sn.Cell || c == 0 {
			t.Errorf("SensorCell(%q) = %v, %v; the sensor's cell is %v", id, c, ok, sn.Cell)
		}
	}
	if err := r.PutSensors([]Sensor{{ID: "b", Lat: 30.31, Lng: 120.21}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.SensorCell("a"); ok {
		t.Error("a sensor removed by a PUT is still found")
	}
	sn, _ := r.Sensor("b")
	if c, _ := r.SensorCell("b"); c != sn.Cell {
		t.Errorf("SensorCell(b) = %v after the move, want %v", c, sn.Cell)
	}
	st, _ := r.Station("s1")
	if c, ok := r.StationCell("s1"); !ok || c != st.Cell {
		t.Errorf("StationCell(s1) = %v, %v; want %v (kept across the sensors' PUT)", c, ok, st.Cell)
	}
}
