package geo

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// siteFeature is a site Feature over a square around West Lake, Hangzhou.
func siteFeature(props string) string {
	return `{"type":"Feature","properties":{` + props + `},"geometry":{"type":"Polygon","coordinates":[` + square(120.13, 30.23, 0.03) + `]}}`
}

func siteCollection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

func TestReadSitesGeoJSON(t *testing.T) {
	westLake := `"id":"west-lake","name":"西湖","capacity":219000,"daily_capacity":797500`
	tests := []struct {
		name                string
		in                  string
		yellow, orange, red float64
		wantErr             string
	}{
		{"defaults", siteCollection(siteFeature(westLake)), 0.80, 0.90, 0.95, ""},
		{"fractions", siteCollection(siteFeature(westLake + `,"yellow":0.7,"orange":0.85,"red":1`)), 0.7, 0.85, 1, ""},
		{"percents", siteCollection(siteFeature(westLake + `,"yellow":75,"orange":"88","red":97`)), 0.75, 0.88, 0.97, ""},
		{"not increasing", siteCollection(siteFeature(westLake + `,"red":0.85`)), 0, 0, 0, `feature 1: site "west-lake": thresholds yellow 0.8, orange 0.9, red 0.85 must increase`},
		{"threshold out of range", siteCollection(siteFeature(westLake + `,"red":150`)), 0, 0, 0, "feature 1: property red 150 is neither"},
		{"no id", siteCollection(siteFeature(`"capacity":10`)), 0, 0, 0, "feature 1: property id is missing"},
		{"no capacity", siteCollection(siteFeature(`"id":"a"`)), 0, 0, 0, `site "a": capacity 0`},
		{"capacity not a number", siteCollection(siteFeature(`"id":"a","capacity":"lots"`)), 0, 0, 0, `property capacity "lots" is not a number`},
		{"capacity fraction", siteCollection(siteFeature(`"id":"a","capacity":10.5`)), 0, 0, 0, "capacity 10.5 is not a whole number"},
		{"point geometry", siteCollection(`{"type":"Feature","properties":{"id":"a","capacity":1},"geometry":{"type":"Point","coordinates":[1,2]}}`), 0, 0, 0, `geometry type "Point"`},
		{"bad ring", siteCollection(`{"type":"Feature","properties":{"id":"a","capacity":1},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,91],[0,0]]]}}`), 0, 0, 0, "polygon 1 ring 1: point 3: latitude 91"},
		{"duplicate", siteCollection(siteFeature(westLake), siteFeature(westLake)), 0, 0, 0, `feature 2: site "west-lake" already in feature 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sites, err := ReadSitesGeoJSON(strings.NewReader(tt.in))
			if !succeeds(t, err, tt.wantErr) {
				return
			}
			s := sites[0]
			if s.ID != "west-lake" || s.Name != "西湖" || s.Capacity != 219000 || s.DailyCapacity != 797500 || len(s.Area) != 1 {
				t.Fatalf("site = %+v", s)
			}
			if s.Yellow != tt.yellow || s.Orange != tt.orange || s.Red != tt.red {
				t.Fatalf("thresholds %v/%v/%v, want %v/%v/%v", s.Yellow, s.Orange, s.Red, tt.yellow, tt.orange, tt.red)
			}
		})
	}
}

func TestWriteSitesGeoJSONRoundTrip(t *testing.T) {
	in := siteCollection(
		siteFeature(`"id":"west-lake","name":"West \"Lake\"","capacity":219000,"daily_capacity":797500,"yellow":70`),
		`{"type":"Feature","id":7,"properties":{"name":"Two parts","capacity":5},"geometry":{"type":"MultiPolygon","coordinates":[[`+square(1, 1, 1)+`,`+square(1.2, 1.2, 0.1)+`],[`+square(5, 5, 1)+`]]}}`,
	)
	sites, err := ReadSitesGeoJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSitesGeoJSON(&buf, sites); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSites("written.geojson", &buf)
	if err != nil {
		t.Fatalf("reading back %s: %v", buf.String(), err)
	}
	if !reflect.DeepEqual(back, sites) {
		t.Fatalf("round trip changed sites:\n got %+v\nwant %+v", back, sites)
	}
}
