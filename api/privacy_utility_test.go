package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
)

// utilityScale is the size of the synthetic day: an ordinary weekday,
// about 3 million taps, as the OD matrix of a city has few pairs of a
// thousand trips a day at less.
const utilityScale = 1

// TestPrivacyKeepsPlannersFigures: on a synthetic weekday, a read token's
// station hourly entries, corridor 15-minute loads and station OD matrix
// of the day are within 3 % of the exact figures (an admin's) wherever
// those are 1,000 or more, at the default parameters; and each kind of
// figure has such values, so the test cannot pass by having none.
func TestPrivacyKeepsPlannersFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("ingests a day of 3 million taps")
	}
	c := city.New(city.Config{Seed: 3, Scale: utilityScale})
	var reg *geo.Registry
	fs := flowdtest.New(t, t.TempDir(), func(st *storage.Store, r *geo.Registry) (api.Parts, func()) {
		reg = r
		b := newBucketer(t, st, r)
		b.Trips = ingest.NewTrips(st, 3*time.Hour, nil)
		return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
	})
	stations, err := geo.ReadStationsCSV(bytes.NewReader(c.StationsCSV()))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutStations(stations); err != nil {
		t.Fatal(err)
	}
	g := api.NewGuard(api.Limits{})
	g.AddToken(readToken, api.RoleRead, "planner")
	g.AddToken(adminToken, api.RoleAdmin, "admin")
	fs.API.Guard = g
	fs.API.Privacy = privacy.New(privacy.DefaultPolicy(9, 3*time.Hour), []byte("the planners' test secret, fixed"))
	fs.Serve()
	s := &analystServer{url: fs.URL, now: time.Now().UTC()}

	// A weekday well before now, so that every bin has settled; the day
	// is Hangzhou's.
	day := time.Now().In(city.Hangzhou).AddDate(0, 0, -3)
	for day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
		day = day.AddDate(0, 0, -1)
	}
	day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, city.Hangzhou)
	var body bytes.Buffer
	rows := 0
	flush := func() {
		status, out := s.do(t, adminToken, "POST", "/api/v1/ingest/swipes", append([]byte(city.AFCHeader), body.Bytes()...))
		if status != 200 || !bytes.Contains(out, []byte(fmt.Sprintf(`"accepted":%d`, rows))) {
			t.Fatalf("ingest: %d %.300s", status, out)
		}
		body.Reset()
		rows = 0
	}
	c.AFCRows(day, func(row []byte) {
		body.Write(row)
		if rows++; rows == 20000 {
			flush()
		}
	})
	flush()
	whole := span(day, day.Add(24*time.Hour))

	var checked [3]int
	var worst [3]float64
	compare := func(kind int, what string, read, exact int64) {
		if exact < 1000 {
			return
		}
		checked[kind]++
		rel := math.Abs(float64(read-exact)) / float64(exact)
		worst[kind] = max(worst[kind], rel)
		if rel > 0.03 {
			t.Errorf("%s: read token %d, exact %d: off by %.1f %%", what, read, exact, 100*rel)
		}
	}

	// Station hourly entries: one cell over aligned hours, the pyramid.
	for _, st := range reg.Stations() {
		var read, exact struct{ Points [][2]int64 }
		q := fmt.Sprintf("/api/v1/series?metric=swipes_in&cells=%s&step=1h&%s", st.Cell, whole)
		json.Unmarshal(s.ask(t, readToken, "GET", q, nil), &read)
		json.Unmarshal(s.ask(t, adminToken, "GET", q, nil), &exact)
		for i, p := range exact.Points {
			compare(0, fmt.Sprintf("station %s, hour %d", st.ID, i), read.Points[i][1], p[1])
		}
	}

	// The 15-minute section load of a corridor along line 1, in 3 km
	// segments.
	var path [][2]float64
	for _, st := range c.Stations {
		if st.Line == "1" {
			path = append(path, [2]float64{st.Pos.Lat, st.Pos.Lng})
		}
	}
	corridor := map[string]any{"path": path, "width": 300, "segment": 3000, "metric": "swipes_in",
		"from": day.Unix(), "to": day.Add(24 * time.Hour).Unix(), "step": "15m"}
	var readC, exactC struct{ Steps []struct{ Loads []int64 } }
	json.Unmarshal(s.ask(t, readToken, "POST", "/api/v1/corridor", corridor), &readC)
	json.Unmarshal(s.ask(t, adminToken, "POST", "/api/v1/corridor", corridor), &exactC)
	for i, st := range exactC.Steps {
		for j, v := range st.Loads {
			compare(1, fmt.Sprintf("corridor step %d segment %d", i, j), readC.Steps[i].Loads[j], v)
		}
	}

	// The station OD matrix of the day.
	od := func(token string) map[string]int64 {
		var a struct {
			Pairs []struct {
				Origin, Destination string
				Trips               int64
			}
		}
		json.Unmarshal(s.ask(t, token, "GET", "/api/v1/od?by=station&top=100000&"+whole, nil), &a)
		out := map[string]int64{}
		for _, p := range a.Pairs {
			out[p.Origin+"→"+p.Destination] = p.Trips
		}
		return out
	}
	readOD := od(readToken)
	for pair, n := range od(adminToken) {
		compare(2, "OD "+pair, readOD[pair], n)
	}
	t.Logf("figures of 1,000 or more checked: %d station hours (worst off by %.2f %%), %d corridor loads (%.2f %%), %d OD pairs (%.2f %%)",
		checked[0], 100*worst[0], checked[1], 100*worst[1], checked[2], 100*worst[2])
	for i, what := range []string{"station hours", "corridor loads", "OD pairs"} {
		if checked[i] < 5 {
			t.Errorf("only %d %s of 1,000 or more: the synthetic day is too small to show utility", checked[i], what)
		}
	}
}
