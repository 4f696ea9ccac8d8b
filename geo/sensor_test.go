package geo

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestReadSensorsCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Sensor
		wantErr string
	}{
		{"plain", "id,name,lat,lng,kind\nc1,Gate cam,30.1,120.1,camera\n",
			[]Sensor{{ID: "c1", Name: "Gate cam", Kind: "camera", Lat: 30.1, Lng: 120.1}}, ""},
		{"open data names", "sensor_id,sensor_description,sensor_name,latitude,longitude\n55,Elizabeth St (East),Eli380_T,-37.8,144.9\n",
			[]Sensor{{ID: "55", Name: "Elizabeth St (East)", Lat: -37.8, Lng: 144.9}}, ""},
		{"name defaults to id", "id,lat,lon\nd7,1,2\n", []Sensor{{ID: "d7", Name: "d7", Lat: 1, Lng: 2}}, ""},
		{"bad longitude", "sensor_id,latitude,longitude\n1,-37.8,abc\n", nil, `line 2: field longitude "abc": not a number`},
		{"duplicate", "id,lat,lng\na,1,2\na,1,2\n", nil, `line 3: sensor "a" already on line 2`},
		{"no id column", "name,lat,lng\na,1,2\n", nil, "no column id or sensor_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSensorsCSV(strings.NewReader(tt.in))
			checkRead(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadSensorsGeoJSON(t *testing.T) {
	point := func(id, props string) string {
		return `{"type":"Feature"` + id + `,"geometry":{"type":"Point","coordinates":[120.1,30.2]},"properties":{` + props + `}}`
	}
	fc := func(features ...string) string {
		return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
	}
	tests := []struct {
		name    string
		in      string
		want    []Sensor
		wantErr string
	}{
		{"properties", fc(point("", `"id":"c1","name":"Cam","kind":"camera"`)),
			[]Sensor{{ID: "c1", Name: "Cam", Kind: "camera", Lat: 30.2, Lng: 120.1}}, ""},
		{"numeric feature id", fc(point(`,"id":17`, `"name":"Loop"`)),
			[]Sensor{{ID: "17", Name: "Loop", Lat: 30.2, Lng: 120.1}}, ""},
		{"missing id", fc(point("", `"name":"x"`)), nil, "feature 1: property id is missing"},
		{"bad id", fc(point("", `"id":true`)), nil, "feature 1: id: true is not a string or number"},
		{"not a point", fc(`{"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{"id":"a"}}`), nil, "feature 1: geometry must be a Point"},
		{"lat range", fc(`{"type":"Feature","geometry":{"type":"Point","coordinates":[1,99]},"properties":{"id":"a"}}`), nil, "feature 1: latitude 99"},
		{"duplicate", fc(point("", `"id":"a"`), point("", `"id":"a"`)), nil, `feature 2: sensor "a" already in feature 1`},
		{"not a collection", point("", `"id":"a"`), nil, `type "Feature", want FeatureCollection`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSensorsGeoJSON(strings.NewReader(tt.in))
			checkRead(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestReadSensorsSniff(t *testing.T) {
	inputs := map[string]string{
		"s.geojson": `{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"id":"x"}}]}`,
		"s.json":    `[{"id":"x","name":"x","lat":1,"lng":2}]`,
		"s.csv":     "id,lat,lng\nx,1,2\n",
	}
	for name, in := range inputs {
		got, err := ReadSensors(name, strings.NewReader(in))
		if err != nil || len(got) != 1 || got[0].ID != "x" || got[0].Lat != 1 || got[0].Lng != 2 {
			t.Errorf("%s: got %+v, %v; want sensor x at 1,2", name, got, err)
		}
	}
}

func TestMelbourneSensors(t *testing.T) {
	path := sharedData(t, "melbourne-sensor-locations.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sensors, err := ReadSensors(path, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(sensors) != 77 {
		t.Fatalf("got %d sensors, want the file's 77", len(sensors))
	}
	reg := New(10)
	if err := reg.PutSensors(sensors); err != nil {
		t.Fatal(err)
	}
	melbourne := BBox{West: 144.8, South: -37.9, East: 145.1, North: -37.7}
	for _, s := range reg.Sensors() {
		if !s.Cell.IsValid() || s.Cell.Resolution() != 10 {
			t.Errorf("sensor %q has cell %s", s.ID, s.Cell)
		}
		if !melbourne.Contains(s.Lat, s.Lng) {
			t.Errorf("sensor %q at %v,%v is outside Melbourne", s.ID, s.Lat, s.Lng)
		}
	}
	if s, ok := reg.Sensor("15"); !ok || s.Name != "State Library" {
		t.Errorf("sensor 15 = %+v, %v; want State Library, the name the counts file uses", s, ok)
	}
}

// BenchmarkSensorPlaceCold locates sensors as ingest does in a server: 5,000
// sensors, a request's 1,000 lookups in an order of their own, the caches
// emptied before each request (32 MiB written, untimed) as the rest of a
// server's work between two requests would.
func BenchmarkSensorPlaceCold(b *testing.B) {
	reg := New(9)
	var sensors []Sensor
	for i := range 5000 {
		sensors = append(sensors, Sensor{ID: fmt.Sprintf("cam-%05d", i), Lat: 30.1 + float64(i/100)*0.004, Lng: 120.0 + float64(i%100)*0.004})
	}
	if err := reg.PutSensors(sensors); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 1000)
	junk := make([]uint64, 4<<20)
	lookups := 0
	for b.Loop() {
		b.StopTimer()
		for i := range ids {
			ids[i] = sensors[r.IntN(len(sensors))].ID
		}
		for j := 0; j < len(junk); j += 8 { // a word a cache line
			junk[j]++
		}
		b.StartTimer()
		for _, id := range ids {
			if _, ok := reg.SensorPlace(id); !ok {
				b.Fatal("missing sensor", id)
			}
		}
		lookups += len(ids)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lookups), "ns/lookup")
}
