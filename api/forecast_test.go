package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// forecastServer is a flowd with ingest, a forecast tracker fed by it,
// tokens and a privacy layer, on a clock the test moves, whose store holds
// two weeks of a station's taps in and a camera's people.
type forecastServer struct {
	*analystServer
	tr    *forecast.Tracker
	clock atomic.Int64 // unix seconds
}

// tapsPerMinute is the station's rhythm: a morning and an evening peak
// every day.
func tapsPerMinute(m int64) int64 {
	h := float64(m%1440) / 60
	return int64(math.Round(20*math.Exp(-(h-8)*(h-8)/2) + 15*math.Exp(-(h-18)*(h-18)/3) + 2))
}

var (
	stationS1 = geo.Station{ID: "S1", Name: "Longxiangqiao", Lat: 30.2547, Lng: 120.1642}
	camera1   = geo.Sensor{ID: "cam-1", Name: "Yan'an Rd", Lat: 30.2600, Lng: 120.1700}
	camera2   = geo.Sensor{ID: "cam-2", Name: "Hubin Rd", Lat: 30.2500, Lng: 120.1600}
)

func startForecastServer(t *testing.T) *forecastServer {
	t.Helper()
	s := &forecastServer{}
	// Yesterday 09:00 UTC: two weeks before it are inside the minute tier.
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(-15 * time.Hour)
	s.clock.Store(now.Unix() + 6)
	clock := func() time.Time { return time.Unix(s.clock.Load(), 0) }
	layer := privacy.New(privacy.DefaultPolicy(9, 3*time.Hour), []byte("a fixed secret for the forecast tests"))
	fs := flowdtest.New(t, t.TempDir(), func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if err := reg.PutStations([]geo.Station{stationS1}); err != nil {
			t.Fatal(err)
		}
		if err := reg.PutSensors([]geo.Sensor{camera1, camera2}); err != nil {
			t.Fatal(err)
		}
		storeHistory(t, st, reg, now)
		s.tr = forecast.NewTracker(st, reg, forecast.Options{Now: clock, Privacy: layer})
		b := newBucketer(t, st, reg)
		b.Deltas = append(b.Deltas, s.tr)
		return api.Parts{Ingest: ingest.NewHandler(b, 8), Forecasts: s.tr}, nil
	})
	fs.API.Now = clock
	fs.API.Privacy = layer
	g := api.NewGuard(api.Limits{})
	g.AddToken(readToken, api.RoleRead, "analyst")
	g.AddToken(adminToken, api.RoleAdmin, "admin")
	fs.API.Guard = g
	fs.Serve()
	if err := s.tr.Warm(); err != nil {
		t.Fatal(err)
	}
	s.analystServer = &analystServer{url: fs.URL, now: now}
	return s
}

// storeHistory writes two weeks up to end of the station's taps in and
// of people at camera 1's cell (20 a minute by day, 2 by night).
func storeHistory(t *testing.T, st *storage.Store, reg *geo.Registry, end time.Time) {
	ids, err := st.MetricIDs(vocab.SwipesIn, vocab.CountPrefix+"person")
	if err != nil {
		t.Fatal(err)
	}
	station, _ := reg.Station("S1")
	cam, _ := reg.Sensor("cam-1")
	var deltas []storage.Delta
	for m := end.Unix()/60 - 14*1440; m < end.Unix()/60; m++ {
		people := int64(2)
		if h := m % 1440 / 60; h >= 7 && h < 21 {
			people = 20
		}
		deltas = append(deltas,
			storage.Delta{Key: storage.Key{Metric: ids[0], Cell: uint64(station.Cell), Minute: m}, Value: tapsPerMinute(m)},
			storage.Delta{Key: storage.Key{Metric: ids[1], Cell: uint64(cam.Cell), Minute: m}, Value: people})
	}
	if err := st.Add(deltas); err != nil {
		t.Fatal(err)
	}
}

type forecastReply struct {
	Step   string `json:"step"`
	Series []struct {
		ID     string    `json:"id"`
		Kind   string    `json:"kind"`
		Known  time.Time `json:"known_until"`
		Points []struct {
			Time                   time.Time `json:"t"`
			Expected, Lower, Upper float64
		} `json:"points"`
	} `json:"series"`
	Privacy *privacy.Note `json:"privacy"`
}

// TestForecastOfAStation asks for the next hour of a station's taps in:
// an admin gets 10-minute steps from the exact model, within 10 % of the
// rhythm and inside their intervals, as JSON and as CSV; a read token
// gets 15-minute steps (the time floor of taps) forecast from the figures
// the privacy layer released, known up to the release line, at no cost to
// its budget, and still near the rhythm. A station that does not exist is
// a 400 naming it.
func TestForecastOfAStation(t *testing.T) {
	s := startForecastServer(t)
	from := s.now.Unix()/60 + 1
	for _, tc := range []struct {
		token string
		step  int64
		tol   float64
	}{{adminToken, 10, 0.1}, {readToken, 15, 0.15}} {
		var got forecastReply
		if err := json.Unmarshal(s.ask(t, tc.token, "GET", "/api/v1/forecast?station=S1&horizon=1h&step=10m", nil), &got); err != nil {
			t.Fatal(err)
		}
		if got.Step != fmt.Sprint(time.Duration(tc.step)*time.Minute) || len(got.Series) != 1 || got.Series[0].Kind != "count" {
			t.Fatalf("%s: step %s, %d series; want %dm steps of one count series", tc.token, got.Step, len(got.Series), tc.step)
		}
		for i, p := range got.Series[0].Points {
			var want float64
			for m := from + int64(i)*tc.step; m < from+int64(i+1)*tc.step; m++ {
				want += float64(tapsPerMinute(m))
			}
			if math.Abs(p.Expected-want) > tc.tol*want || p.Lower > p.Expected || p.Upper < p.Expected {
				t.Errorf("%s: point %d at %s: %.1f [%.1f, %.1f], want %.0f within %.0f %%", tc.token, i, p.Time, p.Expected, p.Lower, p.Upper, want, 100*tc.tol)
			}
		}
		n := got.Privacy
		switch {
		case tc.token == adminToken && (n == nil || !n.Exact):
			t.Errorf("admin: privacy note %+v, want exact", n)
		case tc.token == readToken && (n == nil || n.ReleasedUntil == nil || n.Cost != 0 || got.Series[0].Known.After(*n.ReleasedUntil)):
			t.Errorf("read token: privacy note %+v, known until %s: want figures released until a line the forecast knows no more than, at no cost", n, got.Series[0].Known)
		}
	}
	csv := string(s.ask(t, adminToken, "GET", "/api/v1/forecast?station=S1&horizon=1h&step=10m&format=csv", nil))
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != 7 || lines[0] != "id,time,expected,lower,upper" || !strings.HasPrefix(lines[1], "S1,") {
		t.Errorf("CSV: %q, want a header and 6 rows of S1", csv)
	}
	if status, body := s.do(t, readToken, "GET", "/api/v1/forecast?station=S9", nil); status != 400 || !strings.Contains(string(body), "S9") {
		t.Errorf("an unknown station: %d %s, want 400 naming it", status, body)
	}
}

// TestAnomalyOfANewCrowd posts people counted by a camera whose cell has
// never counted anyone: once the minute has ended the cell is flagged in
// GET /api/v1/anomalies (for a read token too: counts are public), with
// its place, score and position; a bbox elsewhere leaves it out.
func TestAnomalyOfANewCrowd(t *testing.T) {
	s := startForecastServer(t)
	m := s.now.Unix() / 60
	body := fmt.Sprintf("time,sensor,class,count,interval\n%d,cam-2,person,60,60\n", m*60)
	if status, out := s.do(t, adminToken, "POST", "/api/v1/ingest/counts", []byte(body)); status != 200 {
		t.Fatalf("ingest: %d %s", status, out)
	}
	s.clock.Store((m+1)*60 + 6)
	s.tr.Advance()
	var got struct {
		Anomalies []struct {
			Place, Metric, Cell string
			Lat, Lng            float64
			Value, Score        float64
		}
	}
	if err := json.Unmarshal(s.ask(t, readToken, "GET", "/api/v1/anomalies", nil), &got); err != nil {
		t.Fatal(err)
	}
	cell := h3.LatLngToCell(h3.LatLng{Lat: camera2.Lat, Lng: camera2.Lng}, 9).String()
	if len(got.Anomalies) != 1 || got.Anomalies[0].Cell != cell || got.Anomalies[0].Place != "cell" ||
		got.Anomalies[0].Metric != "count_person" || got.Anomalies[0].Value != 60 || got.Anomalies[0].Score < 4 {
		t.Fatalf("anomalies %+v, want cam-2's cell %s with 60 people and a score of 4 or more", got.Anomalies, cell)
	}
	if math.Abs(got.Anomalies[0].Lat-camera2.Lat) > 0.005 || math.Abs(got.Anomalies[0].Lng-camera2.Lng) > 0.005 {
		t.Errorf("anomaly at %v,%v, want near the camera %v,%v", got.Anomalies[0].Lat, got.Anomalies[0].Lng, camera2.Lat, camera2.Lng)
	}
	if err := json.Unmarshal(s.ask(t, readToken, "GET", "/api/v1/anomalies?bbox=121,31,121.1,31.1", nil), &got); err != nil || len(got.Anomalies) != 0 {
		t.Errorf("a bbox elsewhere: %+v (%v), want none", got.Anomalies, err)
	}
}
