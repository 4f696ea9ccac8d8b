package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// startMetroDay serves a store holding a day of the synthetic city's
// metro, tapped in and out, two days ago, with its stations; scale sets
// the riders (1: Hangzhou's 3 million taps); groups, when not nil, counts
// rider groups. It returns the AFC rows too.
func startMetroDay(tb testing.TB, scale float64, groups *ingest.RiderGroups) (*flowdtest.Server, time.Time, []byte) {
	tb.Helper()
	c := city.New(city.Config{Seed: 7, Scale: scale})
	var stations []geo.Station
	for _, s := range c.Stations {
		stations = append(stations, geo.Station{ID: s.ID, Name: s.Name, Line: s.Line, Lat: s.Pos.Lat, Lng: s.Pos.Lng})
	}
	dir := tb.TempDir()
	fs := flowdtest.New(tb, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if err := reg.PutStations(stations); err != nil {
			tb.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			tb.Fatal(err)
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, nil), Groups: groups}
		return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
	})
	fs.Serve()
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	var afc bytes.Buffer
	if _, _, err := c.AFCDay(day, &afc); err != nil {
		tb.Fatal(err)
	}
	rows := bytes.Clone(afc.Bytes())
	resp, err := http.Post(fs.URL+"/api/v1/ingest/swipes", "text/csv", &afc)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("ingest of the AFC day: %d", resp.StatusCode)
	}
	return fs, day, rows
}

// sectionsReply is what the tests read of a sections answer.
type sectionsReply struct {
	Line     string
	Sections []struct {
		From, To string
		Total    int64
		Loads    []int64
	}
	Peak *struct {
		From, To string
		Time     time.Time
		Load     int64
	}
	Trips, Unassigned *int64
}

// A day of the synthetic city's metro, tapped in and out: each line's
// section loads per hour and direction equal a brute-force assignment of
// the same trips — every trip alone, along the cheapest path of all
// pairs' shortest paths (Floyd–Warshall) over the network's arcs.
func TestSectionLoadEqualsBruteForceAssignment(t *testing.T) {
	fs, day, _ := startMetroDay(t, 0.01, nil)
	from, to := day.Add(-24*time.Hour), day.Add(48*time.Hour)

	// The brute force: all pairs' shortest paths over the arcs.
	net := geo.NewNetwork(fs.Registry.Stations())
	nn := len(net.Nodes)
	dist := make([][]float64, nn)
	next := make([][]int, nn) // next[i][j]: the arc index to take from i towards j
	arcs := net.Arcs()
	for i := range dist {
		dist[i] = make([]float64, nn)
		next[i] = make([]int, nn)
		for j := range dist[i] {
			dist[i][j], next[i][j] = math.Inf(1), -1
		}
		dist[i][i] = 0
	}
	for k, a := range arcs {
		if a.Km < dist[a.From][a.To] {
			dist[a.From][a.To], next[a.From][a.To] = a.Km, k
		}
	}
	for k := range nn {
		for i := range nn {
			for j := range nn {
				if d := dist[i][k] + dist[k][j]; d < dist[i][j] {
					dist[i][j], next[i][j] = d, next[i][k]
				}
			}
		}
	}
	type dirLink struct {
		link    int
		forward bool
	}
	type tripRow struct{ o, d, minute, v int64 }
	var rows []tripRow
	err := fs.Store.ScanSub(storage.TierMinute, vocab.Trips, vocab.Everywhere, from.Unix()/60, to.Unix()/60, func(o, d uint64, minute, v int64) {
		rows = append(rows, tripRow{int64(o), int64(d), minute, v})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[dirLink]map[int64]int64{} // per link and way: hour → trips
	var trips, unassigned int64
	for _, r := range rows {
		best, bi, bj := math.Inf(1), -1, -1
		for _, i := range net.NodesAt(h3.Cell(r.o)) {
			for _, j := range net.NodesAt(h3.Cell(r.d)) {
				if dist[i][j] < best {
					best, bi, bj = dist[i][j], i, j
				}
			}
		}
		if bi < 0 {
			unassigned += r.v
			continue
		}
		trips += r.v
		hour := r.minute / 60 * 60
		for i := bi; i != bj; {
			a := arcs[next[i][bj]]
			if a.Link >= 0 {
				k := dirLink{a.Link, net.Links[a.Link].A == a.From}
				if want[k] == nil {
					want[k] = map[int64]int64{}
				}
				want[k][hour] += r.v
			}
			i = a.To
		}
	}
	t.Logf("%d trips assigned, %d between stations no path joins", trips, unassigned)
	if trips < 1000 {
		t.Fatalf("%d trips stored; want a day's", trips)
	}
	compared := 0
	for line, links := range net.Lines {
		var got sectionsReply
		r := get(t, fmt.Sprintf("%s/api/v1/sections?line=%s&from=%d&to=%d&step=1h", fs.URL, line, from.Unix(), to.Unix()))
		if r.status != 200 {
			t.Fatalf("sections of line %s: %d %s", line, r.status, r.body)
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Sections) != 2*len(links) || got.Trips == nil || *got.Trips != trips || *got.Unassigned != unassigned {
			t.Fatalf("line %s: %d sections, %v trips, %v unassigned; want %d, %d, %d", line, len(got.Sections), got.Trips, got.Unassigned, 2*len(links), trips, unassigned)
		}
		var peak int64
		for i, l := range links {
			for way, forward := range []bool{true, false} {
				sec := got.Sections[2*i+way]
				lk := net.Links[l]
				a, b := net.Stations[net.Nodes[lk.A].Station].ID, net.Stations[net.Nodes[lk.B].Station].ID
				if !forward {
					a, b = b, a
				}
				if sec.From != a || sec.To != b {
					t.Fatalf("line %s section %d: %s→%s; want %s→%s", line, 2*i+way, sec.From, sec.To, a, b)
				}
				for k, v := range sec.Loads {
					hour := from.Unix()/60 + int64(k)*60
					if w := want[dirLink{l, forward}][hour]; v != w {
						t.Errorf("line %s %s→%s at %s: %d; brute force %d", line, a, b, time.Unix(hour*60, 0).UTC().Format(time.RFC3339), v, w)
					}
					peak = max(peak, v)
					compared++
				}
			}
		}
		if peak > 0 && (got.Peak == nil || got.Peak.Load != peak) {
			t.Errorf("line %s: peak %+v; want the largest load %d", line, got.Peak, peak)
		}
	}
	if compared == 0 {
		t.Fatal("no section compared")
	}
	r := get(t, fmt.Sprintf("%s/api/v1/sections?line=1&from=%d&to=%d&format=csv", fs.URL, from.Unix(), to.Unix()))
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\n"); r.status != 200 || lines[0] != "from,to,time,load" || len(lines) < 2 {
		t.Errorf("sections as CSV: %d %.200s", r.status, r.body)
	}
	r = get(t, fs.URL+"/api/v1/sections?line=99")
	if r.status != 400 || !strings.Contains(string(r.body), `parameter \"line\": value \"99\"`) {
		t.Errorf("an unknown line: %d %s; want a 400 naming it", r.status, r.body)
	}
}

// A read token sees section loads through the privacy layer: three
// people's trips on a link, which an admin sees exactly, are withheld,
// and the exact totals are left out (unless this hour's noise lifts the
// load over K: see released).
func TestSectionLoadsOfFewPeopleAreWithheld(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Hour)
	s := startAnalystServer(t, now, nil)
	if status, out := s.do(t, adminToken, "PUT", "/api/v1/stations", []byte("id,name,lat,lng,line\nS1,One,30.2590,120.1640,1\nS2,Two,30.2660,120.1680,1\n")); status != 200 {
		t.Fatalf("PUT stations: %d %s", status, out)
	}
	a, b := h3.LatLngToCell(h3.LatLng{Lat: 30.2590, Lng: 120.1640}, 9), h3.LatLngToCell(h3.LatLng{Lat: 30.2660, Lng: 120.1680}, 9)
	start := now.Add(-10 * time.Hour)
	var taps []tap
	for i := range 3 {
		card := fmt.Sprintf("c%d", i)
		taps = append(taps, tap{card, true, start.Add(time.Duration(i) * time.Minute), a}, tap{card, false, start.Add(time.Duration(i+10) * time.Minute), b})
	}
	s.post(t, taps)
	path := fmt.Sprintf("/api/v1/sections?line=1&from=%d&to=%d", start.Unix(), start.Add(time.Hour).Unix())
	for _, tc := range []struct {
		token string
		want  int64
		exact bool
	}{{adminToken, 3, true}, {readToken, 0, false}} {
		status, out := s.do(t, tc.token, "GET", path, nil)
		var got sectionsReply
		if err := json.Unmarshal(out, &got); err != nil || status != 200 || len(got.Sections) != 2 {
			t.Fatalf("sections: %d %s", status, out)
		}
		total := got.Sections[0].Total
		if !tc.exact && released(t, total, 1, "read token: S1→S2, 3 trips") {
			total = 0
		}
		if got.Sections[0].From != "S1" || total != tc.want || (got.Trips != nil) != tc.exact {
			t.Errorf("sections as %s: %s; want S1→S2 %d, totals shown %v", tc.token[:5], out, tc.want, tc.exact)
		}
	}
}

// A trip adds to the load of every link of its path, so one trip from
// end to end of a line of three links is in three figures of a step:
// the answer costs a read token 3ε, whatever the trips were, and asking
// it again the same day is free.
func TestSectionLoadsAreChargedPerLinkOfAPath(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Hour)
	s := startAnalystServer(t, now, nil)
	stations := "id,name,lat,lng,line\nS1,One,30.2590,120.1640,1\nS2,Two,30.2660,120.1680,1\nS3,Three,30.2730,120.1720,1\nS4,Four,30.2800,120.1760,1\n"
	if status, out := s.do(t, adminToken, "PUT", "/api/v1/stations", []byte(stations)); status != 200 {
		t.Fatalf("PUT stations: %d %s", status, out)
	}
	a, d := h3.LatLngToCell(h3.LatLng{Lat: 30.2590, Lng: 120.1640}, 9), h3.LatLngToCell(h3.LatLng{Lat: 30.2800, Lng: 120.1760}, 9)
	start := now.Add(-10 * time.Hour)
	var taps []tap
	for i := range 40 {
		card := fmt.Sprintf("c%d", i)
		taps = append(taps, tap{card, true, start.Add(time.Duration(i) * time.Minute), a}, tap{card, false, start.Add(time.Duration(i+20) * time.Minute), d})
	}
	s.post(t, taps)
	path := fmt.Sprintf("/api/v1/sections?line=1&from=%d&to=%d", start.Unix(), start.Add(time.Hour).Unix())
	eps := privacy.DefaultPolicy(9, 3*time.Hour).Epsilon
	for _, want := range []float64{3 * eps, 0} {
		status, out := s.do(t, readToken, "GET", path, nil)
		var got struct {
			Sections []struct{ Total int64 }
			Privacy  struct{ Cost float64 }
		}
		if err := json.Unmarshal(out, &got); err != nil || status != 200 || len(got.Sections) != 6 {
			t.Fatalf("sections: %d %s", status, out)
		}
		if math.Abs(got.Privacy.Cost-want) > 1e-9 {
			t.Errorf("a section answer of three links cost ε %v; want %v", got.Privacy.Cost, want)
		}
	}
}
