package geo

import (
	"bytes"
	"math"
	"testing"
)

// The fuzz targets below feed the registry readers and area parsers what an
// operator's file or a caller's request could hold. Each must return an
// error or a valid result, never panic, and what it accepts must go through
// the registry (which resolves H3 cells through cgo) without a panic either.
// Seed corpora live in testdata/fuzz/<target>/; `make fuzz` and .ci/run run
// each target for a short time.

// fuzzRes is coarse so that a large hostile area stays cheap to cover.
const fuzzRes = 7

func FuzzReadStations(f *testing.F) {
	for _, s := range []string{
		"id,name,lat,lng,line\nS1,Longxiangqiao,30.2590,120.1640,1\nS2,Fengqi Road,30.2810,120.1650,1\n",
		"stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n1,A,30.1,120.1,1,\n1a,A,30.1,120.1,0,1\n",
		"\ufeffstop_id,stop_name,stop_lat,stop_lon\r\n\"x\"\"y\",B,-90,180\r\n",
		`[{"id":"S1","name":"A","lat":30.2,"lng":120.1}]`,
		"name,lat,lng\nA,30.2,120.1\nA,30.2001,120.1001\nA,10,10\n",
		"id,name,lat,lng\nS1,A,NaN,Inf\nS2,B,1e400,-1e400\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, gtfs bool) {
		name := "stations.csv"
		if gtfs {
			name = "stops.txt"
		}
		st, err := ReadStations(name, bytes.NewReader(data))
		if err != nil {
			return
		}
		New(fuzzRes).PutStations(st)
	})
}

func FuzzReadSensors(f *testing.F) {
	for _, s := range []string{
		"id,name,lat,lng,kind\nD1,Hubin Road camera,30.2700,120.1500,camera\n",
		`{"type":"FeatureCollection","features":[{"type":"Feature","id":"D1","properties":{"name":"cam","kind":"camera"},"geometry":{"type":"Point","coordinates":[120.15,30.27]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":7},"geometry":{"type":"Point","coordinates":[120.15]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"x"},"geometry":null}]}`,
		`[{"id":"D1","name":"A","lat":30.2,"lng":120.1}]`,
		"sensor_id,lat,lon\nD1,91,181\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := ReadSensors("sensors", bytes.NewReader(data))
		if err != nil {
			return
		}
		New(fuzzRes).PutSensors(ss)
	})
}

func FuzzReadSitesGeoJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"lake","name":"Lake shore","capacity":1000,"daily_capacity":5000},"geometry":{"type":"Polygon","coordinates":[[[120.140,30.244],[120.144,30.244],[120.144,30.248],[120.140,30.248],[120.140,30.244]]]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"m","capacity":"10","yellow":80,"orange":90,"red":95},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"world","capacity":1},"geometry":{"type":"Polygon","coordinates":[[[-180,-90],[180,-90],[180,90],[-180,90],[-180,-90]]]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"hole","capacity":5},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.2,0.2],[0.4,0.2],[0.4,0.4],[0.2,0.2]]]}}]}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"bad","capacity":-1},"geometry":{"type":"Point","coordinates":[1,2]}}]}`,
		`{"type":"FeatureCollection","features":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sites, err := ReadSitesGeoJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range sites {
			if err := sites[i].check(); err != nil {
				t.Fatalf("accepted an invalid site: %v", err)
			}
		}
		reg := New(fuzzRes)
		if reg.PutSites(sites) != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteSitesGeoJSON(&buf, reg.Sites()); err != nil {
			t.Fatalf("writing accepted sites: %v", err)
		}
		if _, err := ReadSitesGeoJSON(&buf); err != nil {
			t.Fatalf("accepted sites do not read back: %v\n%s", err, buf.Bytes())
		}
	})
}

func FuzzParseGeoJSONArea(f *testing.F) {
	for _, s := range []string{
		`{"type":"Polygon","coordinates":[[[120.140,30.244],[120.144,30.244],[120.144,30.248],[120.140,30.244]]]}`,
		`{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]]]}}`,
		`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[0,1],[1,1],[0,0]]]}}]}`,
		`{"type":"Polygon","coordinates":[[[-180,-90],[180,-90],[180,90],[-180,90],[-180,-90]]]}`,
		`{"type":"Polygon","coordinates":[[[179,0],[-179,0],[-179,1],[179,1],[179,0]]]}`,
		`{"type":"Polygon","coordinates":[[[1e308,1e308],[0,0],[0,0]]]}`,
		`{"type":"LineString","coordinates":[[0,0],[1,1]]}`,
		`{"type":"Polygon","coordinates":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseGeoJSONArea(data)
		if err != nil {
			return
		}
		cells, err := m.Cells(fuzzRes, 5000)
		if err != nil {
			return
		}
		if len(cells) == 0 || len(cells) > 5000 {
			t.Fatalf("%d cells, want 1 to 5000", len(cells))
		}
		c := m.Centroid()
		if math.IsNaN(c.Lat) || math.IsNaN(c.Lng) {
			t.Fatalf("centroid %v of an accepted area", c)
		}
	})
}

func FuzzParseQueryShapes(f *testing.F) {
	for _, s := range []string{
		"120.10,30.20,120.20,30.30",
		"[[30.2590,120.1640],[30.2810,120.1650]]",
		`{"type":"LineString","coordinates":[[120.1,30.2],[120.2,30.3]]}`,
		"89283082803ffff,89283082807ffff",
		"-180,-90,180,90",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := ParseBBox(string(data)); err == nil {
			b.Cells(fuzzRes, 5000)
		}
		ParsePath(data)
		ParseCells(string(data))
	})
}
