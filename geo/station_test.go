package geo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uber/h3-go/v4"
)

func TestReadStationsCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Station
		wantErr string
	}{
		{"plain", "id,name,lat,lng,line\nS1,Wulin Sq,30.27,120.16,1\n",
			[]Station{{ID: "S1", Name: "Wulin Sq", Line: "1", Lat: 30.27, Lng: 120.16}}, ""},
		{"any order, lon, BOM, quotes, extra", "\uFEFFlon,extra,name,id,lat\n120.16,x,\"Wulin, Square\",S1,30.27\n",
			[]Station{{ID: "S1", Name: "Wulin, Square", Lat: 30.27, Lng: 120.16}}, ""},
		{"no id: name is id, transfer lines joined", "line,name,lon,lat\n1,Fengqi Rd,120.1637,30.2611\n2,Fengqi Rd,120.1637,30.2611\n2,Other,120.2,30.3\n",
			[]Station{{ID: "Fengqi Rd", Name: "Fengqi Rd", Line: "1,2", Lat: 30.2611, Lng: 120.1637}, {ID: "Other", Name: "Other", Line: "2", Lat: 30.3, Lng: 120.2}}, ""},
		{"no id: same name far apart", "name,lat,lng\nCentral,30,120\nCentral,31,120\n", nil, `line 3: station "Central" already on line 2`},
		{"duplicate id", "id,name,lat,lng\nA,x,30,120\nA,y,30,120\n", nil, `line 3: station "A" already on line 2`},
		{"bad lat", "id,name,lat,lng\nA,x,3O.1,120\n", nil, `line 2: field lat "3O.1": not a number`},
		{"lat out of range", "id,name,latitude,lng\nA,x,\n", nil, "line 2: field latitude is empty"},
		{"lng range", "id,name,lat,lon\nA,x,30,190\n", nil, `line 2: field lon "190": longitude 190 out of range`},
		{"missing column", "id,name,lat\nA,x,30\n", nil, "no column lng or lon"},
		{"empty id", "id,name,lat,lng\n,x,30,120\n", nil, "line 2: field id is empty"},
		{"empty file", "", nil, "missing header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadStationsCSV(strings.NewReader(tt.in))
			checkRead(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadStationsGTFS(t *testing.T) {
	stops := "\uFEFFstop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon,zone_id,location_type,parent_station\n" +
		"place,,\"Place, Central\",,-34.60,-58.38,,1,\n" +
		"p1,,Platform 1,,-34.6001,-58.3801,,0,place\n" +
		"e1,,Entrance,,-34.6002,-58.3802,,2,place\n" +
		"n1,,,,-34.6003,-58.3803,,,\n"
	tests := []struct {
		name    string
		in      string
		want    []Station
		wantErr string
	}{
		{"stops and stations kept, entrances skipped", stops, []Station{
			{ID: "place", Name: "Place, Central", Lat: -34.60, Lng: -58.38},
			{ID: "p1", Name: "Platform 1", Lat: -34.6001, Lng: -58.3801},
			{ID: "n1", Name: "n1", Lat: -34.6003, Lng: -58.3803},
		}, ""},
		{"minimal columns", "stop_lon,stop_lat,stop_id\n1,2,a\n", []Station{{ID: "a", Name: "a", Lat: 2, Lng: 1}}, ""},
		{"bad location_type", "stop_id,stop_lat,stop_lon,location_type\na,1,2,9\n", nil, `line 2: field location_type "9"`},
		{"bad stop_lat", "stop_id,stop_lat,stop_lon\na,x,2\n", nil, `line 2: field stop_lat "x"`},
		{"duplicate stop_id", "stop_id,stop_lat,stop_lon\na,1,2\na,1,2\n", nil, `line 3: stop_id "a" already on line 2`},
		{"no stop_id", "stop_name,stop_lat,stop_lon\na,1,2\n", nil, "no column stop_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadStationsGTFS(strings.NewReader(tt.in))
			checkRead(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadStationsSniff(t *testing.T) {
	tests := []struct {
		name, file, in string
		wantID         string
	}{
		{"stops.txt by name", "feed/stops.txt", "stop_id,stop_lat,stop_lon,location_type\na,1,2,2\nb,1,2,0\n", "b"},
		{"gtfs by header", "upload.csv", "stop_id,stop_lat,stop_lon,location_type\na,1,2,3\nb,1,2,\n", "b"},
		{"csv", "stations.csv", "id,name,lat,lng\nx,X,1,2\n", "x"},
		{"json", "stations.json", `  [{"id":"j","name":"J","lat":1,"lng":2}]`, "j"},
	}
	for _, tt := range tests {
		got, err := ReadStations(tt.file, strings.NewReader(tt.in))
		if err != nil || len(got) != 1 || got[0].ID != tt.wantID {
			t.Errorf("%s: got %v, %v; want one station %q", tt.name, got, err, tt.wantID)
		}
	}
	_, err := ReadStations("bad.csv", strings.NewReader("id,name,lat,lng\nx,X,1,zz\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.csv: line 2") {
		t.Errorf("error = %v, want it to name the file and line", err)
	}
}

// checkRead compares what a registry reader returned with the expectation.
func checkRead[T comparable](t *testing.T, got []T, err error, want []T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// sharedData returns the path of a file in the project's shared sample data,
// skipping the test when the folder is absent (as in a user's clone).
func sharedData(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("sample data folder %s absent: %v", dir, err)
	}
	return filepath.Join(dir, name)
}

func TestHangzhouMetroStations(t *testing.T) {
	path := sharedData(t, "hangzhou-metro-stations.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stations, err := ReadStations(path, f)
	if err != nil {
		t.Fatal(err)
	}
	// 82 rows; two transfer stations are listed once per line.
	if len(stations) < 75 || len(stations) > 82 {
		t.Fatalf("got %d stations, want about 80", len(stations))
	}
	reg := New(9)
	if err := reg.PutStations(stations); err != nil {
		t.Fatal(err)
	}
	hz := BBox{West: 119.5, South: 29.8, East: 120.7, North: 30.6}
	for _, s := range reg.Stations() {
		if !s.Cell.IsValid() || s.Cell.Resolution() != 9 {
			t.Errorf("station %q has cell %s", s.ID, s.Cell)
		}
		if !hz.Contains(s.Lat, s.Lng) {
			t.Errorf("station %q at %v,%v is outside Hangzhou", s.ID, s.Lat, s.Lng)
		}
	}
	if s, ok := reg.Station("钱江路站"); !ok || s.Line != "2,4" {
		t.Errorf("transfer station 钱江路站 = %+v, %v; want lines 2,4", s, ok)
	}
}

func BenchmarkRegistryStation(b *testing.B) {
	reg := New(9)
	var stations []Station
	for i := range 1000 {
		stations = append(stations, Station{ID: "S" + h3.IndexToString(uint64(i)), Lat: 30 + float64(i)/1000, Lng: 120})
	}
	if err := reg.PutStations(stations); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, ok := reg.Station(stations[i%len(stations)].ID); !ok {
			b.Fatal("missing station")
		}
	}
}
