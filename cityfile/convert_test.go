package cityfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file whose header does not fit its mapping fails once, naming every
// column that is wrong and what was expected.
func TestHeaderErrors(t *testing.T) {
	reg := NewRegistry([][2]string{{"55", "State Library"}, {"7", "Birrarung Marr"}, {"8", "Twin Gate"}, {"9", "Twin Gate"}})
	str := func(s string) *string { return &s }
	wide := &Spec{Layout: LayoutWide, Kind: "counts", Time: TimeSpec{Column: "Date", Hour: "Hour"}}
	cases := []struct {
		name   string
		spec   *Spec
		header string
		want   []string
	}{
		{"no time column", wide, "Day,Hour,State Library",
			[]string{`no time column "Date"; the header has "Day", "Hour", "State Library"`}},
		{"unknown names, all at once, with the closest", wide, "Date,Hour,State Libary,Nowhere,Birrarung Marr",
			[]string{`2 columns name no sensor`, `"State Libary" (closest sensor name: "state library")`, `"Nowhere"`, `"columns"`}},
		{"a name two sensors have", wide, "Date,Hour,Twin Gate",
			[]string{`column "Twin Gate": 2 sensors have that name (ids 8, 9)`}},
		{"two columns of one sensor", &Spec{Layout: LayoutWide, Kind: "counts", Time: TimeSpec{Column: "Date"}, Columns: map[string]*string{"Old Library": str("55")}},
			"Date,State Library,Old Library", []string{`columns "State Library" and "Old Library" are both sensor "55"`}},
		{"rows without the mapped columns", &Spec{Layout: LayoutRows, Kind: "swipes", Columns: map[string]*string{"card": str("id_tarjeta"), "dir": str("tipo")}},
			"time,id_tarjeta,lat", []string{`no column "tipo"`, `swipes needs columns time, id_tarjeta (as card), tipo (as dir), station`, `the header has "time", "id_tarjeta", "lat"`}},
		{"rows mapping a field flowd lacks", &Spec{Layout: LayoutRows, Kind: "counts", Columns: map[string]*string{"volume": str("v")}},
			"time,v", []string{`"columns" maps "volume", which is no field of counts (time, sensor, class, count, interval, speed)`}},
		{"GTFS-ride without times", &Spec{Layout: LayoutGTFSRide}, "trip_id,stop_id,boardings",
			[]string{"needs columns stop_id, service_date, service_arrival_time or service_departure_time"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.spec.check(); err != nil {
				t.Fatal(err)
			}
			_, err := New(c.spec, strings.Split(c.header, ","), reg)
			if err == nil {
				t.Fatalf("no error; want one saying %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A wide row becomes one event per column with a reading; missing markers
// are reported and written as nothing, a bad cell is rejected by column.
func TestWideRow(t *testing.T) {
	sp := &Spec{Layout: LayoutWide, Kind: "counts", TZ: "Australia/Melbourne", Missing: []string{"-1", "undefined"},
		Time: TimeSpec{Column: "Date", Formats: []string{"2/1/2006"}, Hour: "Hour"}}
	if err := sp.check(); err != nil {
		t.Fatal(err)
	}
	conv, err := New(sp, []string{"Date", "Hour", "A", "B", "C", "D", "E"}, NewRegistry([][2]string{{"a", "A"}, {"b", "B"}, {"c", "C"}, {"d", "D"}, {"e", "E"}}))
	if err != nil {
		t.Fatal(err)
	}
	out, res := conv.Convert(7, []string{"01/04/2018", "2", "5", "-1", "", "x", "0"}, nil)
	want := "2018-03-31T15:00:00Z,a,person,5,3600,\n2018-03-31T15:00:00Z,e,person,0,3600,\n"
	if string(out) != want || res.Events != 2 || len(res.Missing) != 2 || len(res.Rejected) != 1 ||
		res.Missing[0] != (Problem{7, "B", "-1", "missing"}) || res.Rejected[0].Field != "D" || res.Rejected[0].Value != "x" {
		t.Errorf("got %q %+v\nwant %q, B and C missing, D rejected", out, res, want)
	}
	// The same wall time again is the repeated hour's second occurrence.
	out, _ = conv.Convert(8, []string{"01/04/2018", "2", "1", "", "", "", ""}, nil)
	if !strings.HasPrefix(string(out), "2018-03-31T16:00:00Z,a,") {
		t.Errorf("the repeated 02:00 row: %q, want 16:00 UTC", out)
	}
	if _, res := conv.Convert(9, []string{"", "", "", "", "", "", ""}, nil); !res.Blank {
		t.Errorf("an empty row: %+v, want blank", res)
	}
}

// The Hangzhou join keys stations by number: one number listed on two
// lines is one transfer station, two spellings apart are said, and a
// number the files place twice far apart is an error.
func TestStationJoin(t *testing.T) {
	ids := filepath.Join("..", "..", "shared", "data", "hangzhou-metro-station-ids.csv")
	coords := filepath.Join("..", "..", "shared", "data", "hangzhou-metro-stations.csv")
	if _, err := os.Stat(ids); err != nil {
		t.Skipf("real sample not found (%v): ../shared/data is not beside this checkout", err)
	}
	m, err := loadStationMap(&Spec{Stations: &StationJoin{IDs: ids, Coordinates: coords}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := m.place("46"); err != nil || p.line != "2,4" || p.name != "钱江路站" {
		t.Errorf("station 46: %+v %v, want 钱江路站 on lines 2,4", p, err)
	}
	if _, err := m.place("10"); err == nil || !strings.Contains(err.Error(), "(line 1, 凤起路A站) has no row") {
		t.Errorf("station 10 without a name mapping: %v", err)
	}
	if len(m.warnings) != 2 {
		t.Errorf("warnings %q, want stations 10 and 51", m.warnings)
	}
	if _, err := m.place("99"); err == nil || !strings.Contains(err.Error(), "not in the station ids file") {
		t.Errorf("station 99: %v", err)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ids.csv"), []byte("id,line,name\n1,1,North\n1,2,North\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "xy.csv"), []byte("line,name,lon,lat\n1,North,120.1,30.1\n2,North,120.3,30.3\n"), 0o644)
	if _, err := loadStationMap(&Spec{dir: dir, Stations: &StationJoin{IDs: "ids.csv", Coordinates: "xy.csv"}}); err == nil || !strings.Contains(err.Error(), "one number must be one place") {
		t.Errorf("a number placed twice far apart: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "xy2.csv"), []byte("name,lon,lat\nNorth,120.1,30.1\nNorth,120.3,30.3\n"), 0o644)
	if _, err := loadStationMap(&Spec{dir: dir, Stations: &StationJoin{IDs: "ids.csv", Coordinates: "xy2.csv"}}); err == nil || !strings.Contains(err.Error(), `both are "North"`) {
		t.Errorf("a coordinates file naming one station twice: %v", err)
	}
}
