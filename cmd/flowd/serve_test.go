package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
)

const (
	testStations = "id,name,lat,lng,line\nS1,Longxiangqiao,30.2590,120.1640,1\nS2,Fengqi Road,30.2810,120.1650,1\n"
	testSensors  = "id,name,lat,lng,kind\nD1,Hubin Road camera,30.2700,120.1500,camera\n"
	testSites    = `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"lake","name":"Lake shore","capacity":1000,"daily_capacity":5000},"geometry":{"type":"Polygon","coordinates":[[[120.140,30.244],[120.144,30.244],[120.144,30.248],[120.140,30.248],[120.140,30.244]]]}}]}`
	testBBox     = "120.10,30.20,120.20,30.30"
)

// registryFlags writes the test registries to files and returns the flags
// that load them.
func registryFlags(t *testing.T) []string {
	dir := t.TempDir()
	files := map[string]string{"stations.csv": testStations, "sensors.csv": testSensors, "sites.geojson": testSites}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"-stations", filepath.Join(dir, "stations.csv"), "-sensors", filepath.Join(dir, "sensors.csv"), "-sites", filepath.Join(dir, "sites.geojson")}
}

// testT0 is a minute half an hour ago, so every test event is recent and
// inside every default window.
func testT0() time.Time {
	return time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
}

func cellOf(t *testing.T, lat, lng float64, res int) h3.Cell {
	return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)
}

func span(t0 time.Time, minutes int) string {
	return fmt.Sprintf("from=%d&to=%d", t0.Unix(), t0.Add(time.Duration(minutes)*time.Minute).Unix())
}

func TestIngestEverySourceAndQuery(t *testing.T) {
	c := startFlowd(t, t.TempDir(), registryFlags(t)...)
	t0 := testT0()
	rfc := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }

	// Swipes: NDJSON with RFC 3339, unix seconds and milliseconds; CSV gzip.
	a := c.post(t, "swipes", "application/x-ndjson", fmt.Sprintf(
		`{"time":%q,"card":"c1","dir":"in","station":"S1"}
{"time":%d,"card":"c2","dir":"in","station":"S1"}
{"time":%d,"card":"c3","dir":"in","station":"S1"}
{"time":%q,"card":"c4","dir":"in","lat":30.2590,"lng":120.1640}
{"time":%q,"card":"c1","dir":"out","station":"S2"}
{"time":%q,"card":"c2","dir":"out","station":"S2"}
`, rfc(0), t0.Unix(), t0.UnixMilli()+59999, rfc(0), rfc(1), rfc(1)), false)
	if a.Accepted != 6 || len(a.Rejected) != 0 {
		t.Fatalf("swipes NDJSON: %+v", a)
	}
	a = c.post(t, "swipes", "text/csv", fmt.Sprintf("time,card,dir,station\n%s,c5,in,S2\n%s,c6,in,S2\n%s,c7,in,S2\n%s,c8,in,S2\n", rfc(2), rfc(2), rfc(2), rfc(2)), true)
	if a.Accepted != 4 {
		t.Fatalf("swipes CSV gzip: %+v", a)
	}
	// Counts: a 2-minute bus count is spread over its two minutes.
	a = c.post(t, "counts", "application/x-ndjson", fmt.Sprintf(`{"time":%q,"sensor":"D1","class":"car","count":10,"interval":60,"speed":42.5}`+"\n", rfc(0)), false)
	if a.Accepted != 1 {
		t.Fatalf("counts NDJSON: %+v", a)
	}
	a = c.post(t, "counts", "text/csv", fmt.Sprintf("time,sensor,class,count,interval\n%s,D1,bus,7,120\n", rfc(0)), false)
	if a.Accepted != 1 {
		t.Fatalf("counts CSV: %+v", a)
	}
	// Footfall.
	a = c.post(t, "footfall", "application/x-ndjson", fmt.Sprintf(`{"time":%q,"site":"lake","gate":"north","in":50,"out":20}`+"\n", rfc(0)), false)
	if a.Accepted != 1 {
		t.Fatalf("footfall NDJSON: %+v", a)
	}
	a = c.post(t, "footfall", "text/csv", fmt.Sprintf("time,site,gate,in,out\n%s,lake,south,5,1\n", rfc(1)), true)
	if a.Accepted != 1 {
		t.Fatalf("footfall CSV gzip: %+v", a)
	}

	s1 := cellOf(t, 30.2590, 120.1640, 9)
	s2 := cellOf(t, 30.2810, 120.1650, 9)
	d1 := cellOf(t, 30.2700, 120.1500, 9)
	win := span(t0, 5)

	tests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"swipes in at S1's cell", "metric=swipes_in&cells=" + s1.String() + "&" + win, []int64{4, 0, 0, 0, 0}},
		{"swipes in over a bbox", "metric=swipes_in&bbox=" + testBBox + "&" + win, []int64{4, 0, 4, 0, 0}},
		{"swipes out at S2's res-7 parent", "metric=swipes_out&cells=" + s2.Parent(7).String() + "&" + win, []int64{0, 2, 0, 0, 0}},
		{"swipes in at res 7 over a bbox", "metric=swipes_in&res=7&bbox=" + testBBox + "&" + win, []int64{4, 0, 4, 0, 0}},
		{"bus counts spread over the interval", "metric=count_bus&cells=" + d1.String() + "&" + win, []int64{4, 3, 0, 0, 0}},
		{"car speed sum", "metric=speed_car&cells=" + d1.String() + "&" + win, []int64{425, 0, 0, 0, 0}},
		{"footfall in at a site", "metric=footfall_in&site=lake&" + win, []int64{50, 5, 0, 0, 0}},
		{"footfall out, 5-minute step", "metric=footfall_out&site=lake&step=5m&" + win, []int64{21}},
	}
	for _, tc := range tests {
		got := c.series(t, tc.query)
		var vals []int64
		for _, p := range got.Points {
			vals = append(vals, p[1])
		}
		if !slices.Equal(vals, tc.want) {
			t.Errorf("%s: series %v, want %v", tc.name, vals, tc.want)
		}
	}

	// A long cell list goes in a form body: 2,000 cells around S1, reaching
	// S2 too.
	var cells []string
	for _, c := range s1.GridDisk(26)[:2000] {
		cells = append(cells, c.String())
	}
	form := "metric=swipes_in&" + win + "&cells=" + strings.Join(cells, ",")
	r := do(t, "POST", c.url+"/api/v1/series", "application/x-www-form-urlencoded", []byte(form), false)
	var posted seriesAnswer
	r.json(t, &posted)
	if r.status != 200 || posted.Total != 8 {
		t.Errorf("POST series with 2,000 cells: %d, total %d, want 8: %.200s", r.status, posted.Total, r.body)
	}
	if got := c.series(t, "metric=swipes_in&"+win+"&cells="+strings.Join(cells, ",")); got.Total != 8 {
		t.Errorf("GET series naming 2,000 cells in the URL: total %d, want 8", got.Total)
	}

	at := fmt.Sprintf("at=%d&window=10m", t0.Add(5*time.Minute).Unix())
	d := c.density(t, "metric=swipes_in&bbox="+testBBox+"&"+at)
	got := map[string]int64{}
	for _, cv := range d.Cells {
		got[cv.Cell] = cv.Value
	}
	if len(got) != 2 || got[s1.String()] != 4 || got[s2.String()] != 4 {
		t.Errorf("density at res 9: %v; want %s:4 %s:4", got, s1, s2)
	}
	d = c.density(t, "metric=swipes_in&res=7&bbox="+testBBox+"&"+at)
	want7 := map[string]int64{}
	want7[s1.Parent(7).String()] += 4
	want7[s2.Parent(7).String()] += 4
	got = map[string]int64{}
	for _, cv := range d.Cells {
		got[cv.Cell] = cv.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(want7) || d.Total != 8 {
		t.Errorf("density at res 7: %v (total %d); want %v", got, d.Total, want7)
	}
	// A month of whole hours is read from the hour tier, whose few rows
	// cost little however wide the area. It ends after the hour of the
	// last event, which is t0's next hour when t0 is a minute or two
	// before one.
	monthTo := t0.Add(30 * time.Minute).Truncate(time.Hour).Add(time.Hour)
	if r := c.get(t, fmt.Sprintf("/api/v1/density?metric=swipes_in&bbox=119,29,121,31&res=5&from=%d&to=%d", monthTo.Add(-720*time.Hour).Unix(), monthTo.Unix())); r.status != 200 || !strings.Contains(string(r.body), `"tier":"hour"`) || !strings.Contains(string(r.body), `"total":8`) {
		t.Errorf("density of a province over a month: %s; want 200 from the hour tier, total 8", r)
	}
	if r := c.get(t, "/metrics"); r.status != 200 || !strings.Contains(string(r.body), "# TYPE flowd_memtable_rows gauge\n") || !strings.Contains(string(r.body), "\nflowd_memtable_rows{tier=\"minute\"} ") {
		t.Errorf("/metrics: %.300s", r.body)
	}
	for _, q := range []string{"series", "density", "top"} {
		if r := c.get(t, "/api/v1/"+q+"?metric=hll_cards&bbox="+testBBox); r.status != 400 || !strings.Contains(string(r.body), "/api/v1/distinct") {
			t.Errorf("%s of sketch registers: %s; want a 400 pointing to /api/v1/distinct", q, r)
		}
	}
	if r := c.get(t, "/api/v1/density?metric=swipes_in&geojson=1&bbox="+testBBox+"&"+at); r.status != 200 || !strings.Contains(string(r.body), `"FeatureCollection"`) || !strings.Contains(string(r.body), s1.String()) {
		t.Errorf("density as GeoJSON: %d %.300s", r.status, r.body)
	}
}

func TestBadLinesAreNamedAndGoodLinesKept(t *testing.T) {
	c := startFlowd(t, t.TempDir(), registryFlags(t)...)
	t0 := testT0()
	ts := t0.Format(time.RFC3339)
	body := strings.Join([]string{
		fmt.Sprintf(`{"time":%q,"card":"a","dir":"in","station":"S1"}`, ts),
		`{"time":"yesterday","card":"b","dir":"in","station":"S1"}`,
		fmt.Sprintf(`{"time":%q,"card":"c","dir":"in","station":"S1"}`, ts),
		fmt.Sprintf(`{"time":%q,"card":"d","dir":"in","station":"NOPE"}`, ts),
		`{"time": not json`,
		fmt.Sprintf(`{"time":%q,"card":"e","dir":"sideways","station":"S1"}`, ts),
		fmt.Sprintf(`{"time":%q,"card":"f","dir":"in","lat":95,"lng":120}`, ts),
		fmt.Sprintf(`{"time":%q,"card":"g","dir":"in","station":"S1"}`, ts),
	}, "\n")
	a := c.post(t, "swipes", "application/x-ndjson", body, false)
	if a.Accepted != 3 {
		t.Errorf("accepted %d, want 3", a.Accepted)
	}
	var lines []int
	fields := map[int]string{}
	for _, r := range a.Rejected {
		lines = append(lines, r.Line)
		fields[r.Line] = r.Field
		if r.Reason == "" {
			t.Errorf("line %d rejected without a reason", r.Line)
		}
	}
	if !slices.Equal(lines, []int{2, 4, 5, 6, 7}) {
		t.Errorf("rejected lines %v, want [2 4 5 6 7]: %+v", lines, a.Rejected)
	}
	for line, field := range map[int]string{2: "time", 4: "station", 6: "dir", 7: "lat"} {
		if fields[line] != field {
			t.Errorf("line %d: field %q, want %q", line, fields[line], field)
		}
	}
	s := c.series(t, "metric=swipes_in&bbox="+testBBox+"&"+span(t0, 1))
	if s.Total != 3 {
		t.Errorf("stored %d swipes, want exactly the 3 good lines", s.Total)
	}
	// Negative counts and unknown sensors in CSV.
	a = c.post(t, "counts", "text/csv", fmt.Sprintf("time,sensor,class,count,interval\n%s,D1,car,-4,60\n%s,D9,car,4,60\n%s,D1,car,6,60\n", ts, ts, ts), false)
	if a.Accepted != 1 || len(a.Rejected) != 2 || a.Rejected[0].Line != 2 || a.Rejected[0].Field != "count" || a.Rejected[1].Line != 3 || a.Rejected[1].Field != "sensor" {
		t.Errorf("counts CSV: %+v", a)
	}
	// A batch with no good line is a 400 and keeps nothing.
	r := do(t, "POST", c.url+"/api/v1/ingest/footfall", "application/x-ndjson", []byte(`{"time":"x","site":"lake","in":1}`), false)
	if r.status != 400 {
		t.Errorf("all-bad batch: status %d, want 400: %s", r.status, r.body)
	}
}

func TestAcknowledgedEventsSurviveStopAndKill(t *testing.T) {
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			data := t.TempDir()
			flags := registryFlags(t)
			c := startFlowd(t, data, flags...)
			t0 := testT0()
			var want int64
			for i := range 5 {
				var b strings.Builder
				for j := range 100 + i {
					fmt.Fprintf(&b, `{"time":%d,"card":"k%d-%d","dir":"in","station":"S%d"}`+"\n", t0.Add(time.Duration(j%7)*time.Minute).Unix(), i, j, 1+j%2)
				}
				a := c.post(t, "swipes", "application/x-ndjson", b.String(), false)
				want += int64(a.Accepted)
			}
			if how == "SIGKILL" {
				c.kill()
			} else {
				c.stop()
			}
			c2 := startFlowd(t, data, flags...)
			if s := c2.series(t, "metric=swipes_in&bbox="+testBBox+"&"+span(t0, 10)); s.Total != want {
				t.Fatalf("after %s and restart: %d swipes, want %d", how, s.Total, want)
			}
		})
	}
}

func TestRawCardIDsNeverReachDiskOrLogs(t *testing.T) {
	data := t.TempDir()
	flags := registryFlags(t)
	c := startFlowd(t, data, flags...)
	t0 := testT0()
	var cards []string
	var b strings.Builder
	for i := range 50 {
		card := fmt.Sprintf("RAWCARD%08dXYZ", i*7919)
		cards = append(cards, card)
		station := "S1"
		if i%10 == 0 {
			station = "UNKNOWN" // rejected lines must not echo the card either
		}
		fmt.Fprintf(&b, `{"time":%d,"card":%q,"dir":"in","station":%q}`+"\n", t0.Unix(), card, station)
	}
	b.WriteString(`{"time":"bad","card":"RAWCARD-BADTIME","dir":"in","station":"S1"}` + "\n")
	cards = append(cards, "RAWCARD-BADTIME")
	r := do(t, "POST", c.url+"/api/v1/ingest/swipes", "application/x-ndjson", []byte(b.String()), false)
	answers := string(r.body)
	csv := fmt.Sprintf("time,card,dir,station\n%d,RAWCARD-CSV-1,in,S1\n%d,RAWCARD-CSV-2,maybe,S1\n", t0.Unix(), t0.Unix())
	cards = append(cards, "RAWCARD-CSV-1", "RAWCARD-CSV-2")
	r = do(t, "POST", c.url+"/api/v1/ingest/swipes", "text/csv", []byte(csv), false)
	answers += string(r.body)
	c.kill()
	c2 := startFlowd(t, data, flags...) // replays the WAL
	c2.stop()

	var files []string
	filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if len(files) < 3 {
		t.Fatalf("data directory holds only %v", files)
	}
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, card := range cards {
			if strings.Contains(string(content), card) {
				t.Errorf("raw card id %s found in %s", card, f)
			}
		}
	}
	for _, card := range cards {
		if strings.Contains(c.Logs()+c2.Logs(), card) {
			t.Errorf("raw card id %s found in the logs", card)
		}
		if strings.Contains(answers, card) {
			t.Errorf("raw card id %s echoed in an answer", card)
		}
	}
}
