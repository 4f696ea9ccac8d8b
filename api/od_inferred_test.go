package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
)

// /od counts matched trips by default, inferred ones with
// source=inferred, and both with source=all, each pair saying how many of
// its trips were inferred; the inferred trips have no travel time.
func TestODSourceKeepsInferredTripsApart(t *testing.T) {
	dir := t.TempDir()
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if err := reg.PutStations([]geo.Station{
			{ID: "S1", Name: "One", Line: "L1", Lat: 30.25, Lng: 120.10},
			{ID: "S2", Name: "Two", Line: "L1", Lat: 30.25, Lng: 120.16},
		}); err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		inf := &ingest.Inference{Registry: reg, Loc: time.UTC}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, inf)}
		return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
	})
	fs.Serve()
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	at := func(d time.Duration) string { return day.Add(d).Format(time.RFC3339) }
	body := strings.Join([]string{
		// A rides line L1 (tap-in only) out in the morning and back in the evening.
		fmt.Sprintf(`{"time":%q,"card":"A","dir":"in","station":"S1","line":"L1"}`, at(8*time.Hour)),
		fmt.Sprintf(`{"time":%q,"card":"B","dir":"in","station":"S1"}`, at(8*time.Hour+5*time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"B","dir":"out","station":"S2"}`, at(8*time.Hour+25*time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"A","dir":"in","station":"S2","line":"L1"}`, at(17*time.Hour)),
		// The next service day ends A's.
		fmt.Sprintf(`{"time":%q,"card":"C","dir":"in","station":"S1","line":"L1"}`, at(28*time.Hour)),
	}, "\n")
	resp, err := http.Post(fs.URL+"/api/v1/ingest/swipes", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span := fmt.Sprintf("&from=%d&to=%d", day.Unix(), day.Add(24*time.Hour).Unix())
	type pair struct {
		Origin, Destination string
		Trips, Inferred     int64
		MeanMinutes         *float64 `json:"mean_minutes"`
	}
	od := func(source string) (string, []pair) {
		resp, err := http.Get(fs.URL + "/api/v1/od?by=station" + source + span)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct {
			Source string
			Pairs  []pair
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
			t.Fatalf("od%s: %d %v", source, resp.StatusCode, err)
		}
		return a.Source, a.Pairs
	}
	show := func(ps []pair) string {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s→%s:%d/%d", p.Origin, p.Destination, p.Trips, p.Inferred)
			if p.MeanMinutes != nil {
				fmt.Fprintf(&b, "@%.0fm", *p.MeanMinutes)
			}
			b.WriteByte(' ')
		}
		return b.String()
	}
	for _, tc := range []struct{ source, wantSource, want string }{
		{"", "matched", "S1→S2:1/0@20m "},
		{"&source=matched", "matched", "S1→S2:1/0@20m "},
		{"&source=inferred", "inferred", "S1→S2:1/0 S2→S1:1/0 "},
		{"&source=all", "all", "S1→S2:2/1@20m S2→S1:1/1 "},
	} {
		src, pairs := od(tc.source)
		if got := show(pairs); src != tc.wantSource || got != tc.want {
			t.Errorf("od%s: source %s, pairs %s; want %s, %s", tc.source, src, got, tc.wantSource, tc.want)
		}
	}
	resp, err = http.Get(fs.URL + "/api/v1/od?source=guessed" + span)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 400 || !strings.Contains(e.Error, `"source"`) || !strings.Contains(e.Error, "guessed") {
		t.Errorf("od?source=guessed: %d %q; want 400 naming the parameter and value", resp.StatusCode, e.Error)
	}
}

// Inferred legs and trips count in the rider group of the card's tap-in
// too, kept through the open legs' log across a restart: each group's
// inferred OD matrix and section loads are its cards' own, and a card of
// a category no group takes counts in the whole only.
func TestInferredTripsByRiderGroup(t *testing.T) {
	dir := t.TempDir()
	groups, err := ingest.ParseRiderGroups(strings.NewReader("0=adult,2=student"))
	if err != nil {
		t.Fatal(err)
	}
	start := func() *flowdtest.Server {
		return flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
			if err := reg.PutStations([]geo.Station{
				{ID: "S1", Name: "One", Line: "L1", Lat: 30.25, Lng: 120.10},
				{ID: "S2", Name: "Two", Line: "L1", Lat: 30.25, Lng: 120.16},
			}); err != nil {
				t.Fatal(err)
			}
			for _, g := range groups.Names() {
				if _, err := st.MetricIDs(ingest.GroupMetrics(g)...); err != nil {
					t.Fatal(err)
				}
			}
			cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
			if err != nil {
				t.Fatal(err)
			}
			inf := &ingest.Inference{Registry: reg, Loc: time.UTC}
			b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, inf), Groups: groups}
			return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
		}).Serve()
	}
	fs := start()
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	at := func(d time.Duration) string { return day.Add(d).Format(time.RFC3339) }
	post := func(lines ...string) {
		t.Helper()
		resp, err := http.Post(fs.URL+"/api/v1/ingest/swipes", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ingest: %d", resp.StatusCode)
		}
	}
	post(
		// A, an adult, rides L1 out and back, as do two students and a card
		// of a category no group takes (its trips count in the whole only).
		fmt.Sprintf(`{"time":%q,"card":"A","dir":"in","station":"S1","line":"L1","group":"0"}`, at(8*time.Hour)),
		fmt.Sprintf(`{"time":%q,"card":"B","dir":"in","station":"S2","line":"L1","group":"2"}`, at(8*time.Hour+time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"D","dir":"in","station":"S2","line":"L1","group":"2"}`, at(8*time.Hour+2*time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"E","dir":"in","station":"S1","line":"L1","group":"9"}`, at(8*time.Hour+3*time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"A","dir":"in","station":"S2","line":"L1","group":"0"}`, at(17*time.Hour)),
		fmt.Sprintf(`{"time":%q,"card":"B","dir":"in","station":"S1","line":"L1","group":"2"}`, at(18*time.Hour)),
		fmt.Sprintf(`{"time":%q,"card":"D","dir":"in","station":"S1","line":"L1","group":"2"}`, at(18*time.Hour+30*time.Minute)),
		fmt.Sprintf(`{"time":%q,"card":"E","dir":"in","station":"S2","line":"L1","group":"9"}`, at(19*time.Hour)),
	)
	// The open legs wait in the log under their group: the server
	// restarts before the next service day ends them.
	fs.Close()
	fs = start()
	post(fmt.Sprintf(`{"time":%q,"card":"C","dir":"in","station":"S1","line":"L1"}`, at(28*time.Hour)))
	span := fmt.Sprintf("&from=%d&to=%d", day.Unix(), day.Add(24*time.Hour).Unix())
	od := func(group string) string {
		t.Helper()
		resp, err := http.Get(fs.URL + "/api/v1/od?by=station&source=inferred" + group + span)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct {
			Pairs []struct {
				Origin, Destination string
				Trips               int64
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
			t.Fatalf("od%s: %d %v", group, resp.StatusCode, err)
		}
		var b strings.Builder
		for _, p := range a.Pairs {
			fmt.Fprintf(&b, "%s→%s:%d ", p.Origin, p.Destination, p.Trips)
		}
		return b.String()
	}
	for _, tc := range []struct{ group, want string }{
		{"", "S1→S2:4 S2→S1:4 "},
		{"&group=adult", "S1→S2:1 S2→S1:1 "},
		{"&group=student", "S1→S2:2 S2→S1:2 "},
	} {
		if got := od(tc.group); got != tc.want {
			t.Errorf("inferred od%s: %s; want %s", tc.group, got, tc.want)
		}
	}
	loads := func(group string) string {
		t.Helper()
		resp, err := http.Get(fs.URL + "/api/v1/sections?line=L1&source=inferred" + group + span)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a struct {
			Sections []struct {
				From, To string
				Total    int64
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
			t.Fatalf("sections%s: %d %v", group, resp.StatusCode, err)
		}
		var b strings.Builder
		for _, s := range a.Sections {
			fmt.Fprintf(&b, "%s→%s:%d ", s.From, s.To, s.Total)
		}
		return b.String()
	}
	for _, tc := range []struct{ group, want string }{
		{"", "S1→S2:4 S2→S1:4 "},
		{"&group=adult", "S1→S2:1 S2→S1:1 "},
		{"&group=student", "S1→S2:2 S2→S1:2 "},
	} {
		if got := loads(tc.group); got != tc.want {
			t.Errorf("inferred sections%s: %s; want %s", tc.group, got, tc.want)
		}
	}
}
