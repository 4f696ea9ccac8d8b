package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/forecast"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// usualOccupancy is the lake's occupancy on an ordinary day: a
// flat-topped bump peaking at 600 of its 1,000 at 14:00 UTC.
func usualOccupancy(m int64) float64 {
	z := (float64(m%1440)/60 - 14) / 5
	return 600 * math.Exp(-z*z*z*z)
}

// pastOccupancy is the lake's occupancy on a day of its history: the
// usual day, busier or quieter by up to 8 % as days are, the same all day.
func pastOccupancy(m int64) float64 {
	r := rand.New(rand.NewPCG(uint64(m/1440), 16))
	return usualOccupancy(m) * (0.92 + 0.16*r.Float64())
}

// warnServer is a flowd with the live view, the forecast tracker and
// ingest wired as serve wires them, on a clock the test moves, its store
// holding two ordinary weeks of the lake's footfall.
type warnServer struct {
	*testServer
	tr     *forecast.Tracker
	clock  atomic.Int64 // unix seconds
	hook   *httptest.Server
	mu     sync.Mutex
	hooked []Alert
}

func startWarnServer(t *testing.T, today time.Time) *warnServer {
	t.Helper()
	w := &warnServer{}
	w.hook = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var a Alert
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &a); err == nil {
			w.mu.Lock()
			w.hooked = append(w.hooked, a)
			w.mu.Unlock()
		}
	}))
	t.Cleanup(w.hook.Close)
	w.clock.Store(today.Add(6 * time.Hour).Unix())
	now := func() time.Time { return time.Unix(w.clock.Load(), 0) }
	dir := t.TempDir()
	var d *Dashboard
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		sites, err := geo.ReadSitesGeoJSON(strings.NewReader(testSitesGeoJSON))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.PutSites(sites); err != nil {
			t.Fatal(err)
		}
		lake, _ := reg.Site("lake")
		storeUsualWeeks(t, st, lake.Cell, today)
		w.tr = forecast.NewTracker(st, reg, forecast.Options{Now: now, Logf: t.Logf})
		if d, err = New(Options{Store: st, Registry: reg, DataDir: dir, Forecasts: w.tr, WebhookURL: w.hook.URL,
			Hub:   HubOptions{Tick: 100 * time.Millisecond, Now: now},
			Sites: SitesOptions{DayStart: 4 * time.Hour, Location: time.UTC, Now: now}}); err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
		b.Deltas = append(b.Deltas, d.Hub, w.tr)
		b.Footfall = append(b.Footfall, d.Sites)
		return api.Parts{Ingest: ingest.NewHandler(b, 64), Live: d, Forecasts: w.tr}, func() { d.Close() }
	})
	fs.API.Logf = t.Logf
	fs.API.Now = now
	fs.Serve()
	if err := w.tr.Warm(); err != nil {
		t.Fatal(err)
	}
	w.testServer = &testServer{URL: fs.URL, Dash: d, Reg: fs.Registry, Close: fs.Close}
	return w
}

// storeUsualWeeks writes the entries and exits of two ordinary weeks
// before today at the site's cell.
func storeUsualWeeks(t *testing.T, st *storage.Store, cell h3.Cell, today time.Time) {
	ids, err := st.MetricIDs(vocab.FootfallIn, vocab.FootfallOut)
	if err != nil {
		t.Fatal(err)
	}
	var deltas []storage.Delta
	start := today.Unix()/60 - 14*1440
	for m := start; m < today.Unix()/60; m++ {
		in, out := flows(pastOccupancy(m-1), pastOccupancy(m))
		for i, v := range []int64{in, out} {
			if v > 0 {
				deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: ids[i], Cell: uint64(cell), Minute: m}, Value: v})
			}
		}
	}
	if err := st.Add(deltas); err != nil {
		t.Fatal(err)
	}
}

// flows are the entries and exits that take occupancy from a to b in a
// minute, with a turnover of 2 % of the people inside.
func flows(a, b float64) (in, out int64) {
	turn := math.Round(0.02 * (a + b) / 2)
	d := math.Round(b) - math.Round(a)
	return int64(turn + max(d, 0)), int64(turn + max(-d, 0))
}

// minute posts the minute's gate counts taking occupancy from prev to
// occ, moves the clock past the minute and lets the tracker feed it.
func (w *warnServer) minute(t *testing.T, m int64, prev, occ float64) {
	in, out := flows(prev, occ)
	w.post(t, "footfall", fmt.Appendf(nil, `{"time":%d,"site":"lake","gate":"north","in":%d,"out":%d}`+"\n", m*60, in, out))
	w.clock.Store((m+1)*60 + 6)
	w.tr.Advance()
}

// alerts returns the history's alerts of a kind.
func (w *warnServer) alerts(t *testing.T, kind string) []Alert {
	var hist struct{ Alerts []Alert }
	w.getJSON(t, "/api/v1/alerts?site=lake", &hist)
	var out []Alert
	for _, a := range hist.Alerts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// TestForecastWarnsBeforeRed feeds the lake an ordinary morning, then
// from 09:00 a surge of 4 more people a minute than usual, which takes it
// to red (95 % of its 1,000) before noon. The forecast alert of red comes
// at least 15 minutes before the real change to red, expecting it no
// later than it came, on every channel (the history, the live feed, the
// webhook); once the lake is red the warning clears as reached.
func TestForecastWarnsBeforeRed(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour).Add(-2 * 24 * time.Hour)
	w := startWarnServer(t, today)
	ws := w.dial(t, nil)
	time.Sleep(50 * time.Millisecond) // let the hub register the client

	day := today.Unix() / 60
	surge := func(m int64) float64 { return usualOccupancy(m) + 4*max(0, float64(m-(day+9*60))) }
	var warned, red time.Time
	w.run(t, day+6*60, day+13*60, surge, func(m int64) bool {
		if fa := w.alerts(t, AlertForecast); warned.IsZero() && len(fa) > 0 && fa[len(fa)-1].To == LevelRed {
			warned = fa[len(fa)-1].Time
			if e := fa[len(fa)-1].Expected; e == nil || e.Before(warned) {
				t.Errorf("forecast alert %+v: want the expected time of red, after the alert", fa[len(fa)-1])
			}
		}
		for _, a := range w.alerts(t, AlertOccupancy) {
			if a.To == LevelRed {
				red = a.Time
			}
		}
		return red.IsZero()
	})
	if warned.IsZero() || red.IsZero() || red.Sub(warned) < 15*time.Minute {
		t.Fatalf("forecast alert of red at %s, red at %s: want the warning at least 15 minutes before", warned.Format("15:04"), red.Format("15:04"))
	}
	t.Logf("forecast alert of red at %s, red at %s: %.0f minutes ahead", warned.Format("15:04"), red.Format("15:04"), red.Sub(warned).Minutes())
	m := red.Unix() / 60
	w.minute(t, m, surge(m-1), surge(m))
	fa := w.alerts(t, AlertForecast)
	if last := fa[len(fa)-1]; last.To != LevelNormal || !strings.Contains(last.Reason, "reached") {
		t.Errorf("after the lake turned red, last forecast alert %+v: want the warning cleared as reached", last)
	}
	w.checkChannels(t, ws, fa)
}

// TestForecastWarningFallsBack feeds the lake a surge that stops: 6 more
// people a minute from 09:00 to 09:45, who leave again by 10:30. A
// warning is raised while the surge lasts and cleared when the forecast
// falls back, the lake never leaving normal. An ordinary day raises none.
func TestForecastWarningFallsBack(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour).Add(-2 * 24 * time.Hour)
	w := startWarnServer(t, today)
	day := today.Unix() / 60
	extra := func(m int64) float64 {
		switch x := float64(m - (day + 9*60)); {
		case x < 0:
			return 0
		case x < 45:
			return 6 * x
		default:
			return max(0, 270-6*(x-45))
		}
	}
	w.run(t, day+6*60, day+12*60, func(m int64) float64 { return usualOccupancy(m) + extra(m) }, nil)
	fa := w.alerts(t, AlertForecast)
	for _, a := range fa {
		t.Logf("%s forecast %s→%s: %s (occupancy %d)", a.Time.Format("15:04"), a.From, a.To, a.Reason, a.Occupancy)
	}
	if len(fa) < 2 || fa[0].To == LevelNormal || fa[len(fa)-1].To != LevelNormal || fa[len(fa)-1].Reason != "forecast fell back" {
		t.Errorf("forecast alerts %+v: want a warning, then cleared as the forecast fell back", fa)
	}
	if la := w.alerts(t, AlertOccupancy); len(la) != 0 {
		t.Errorf("level alerts %+v: want the lake normal all along", la)
	}

	w.run(t, day+1440+6*60, day+1440+20*60, usualOccupancy, nil)
	if n := len(w.alerts(t, AlertForecast)); n != len(fa) {
		t.Errorf("an ordinary day raised %d forecast alerts: %+v", n-len(fa), w.alerts(t, AlertForecast)[len(fa):])
	}
}

// run feeds the minutes [from, to) of occupancy occ, calling each (when
// not nil) after every minute until it returns false.
func (w *warnServer) run(t *testing.T, from, to int64, occ func(int64) float64, each func(int64) bool) {
	prev := occ(from - 1)
	for m := from; m < to; m++ {
		v := occ(m)
		w.minute(t, m, prev, v)
		prev = v
		if each != nil && !each(m) {
			return
		}
	}
}

// checkChannels checks that the forecast alerts of the history were pushed
// on the live feed and posted to the webhook, in order.
func (w *warnServer) checkChannels(t *testing.T, ws *liveClient, history []Alert) {
	var pushed []message
	for len(pushed) < len(history) {
		m := ws.read(t, 2*time.Second)
		if m.Type == AlertForecast {
			pushed = append(pushed, m)
		}
	}
	for i, a := range history {
		if pushed[i].From != a.From || pushed[i].To != a.To {
			t.Errorf("live forecast message %d: %s→%s, want %s→%s", i, pushed[i].From, pushed[i].To, a.From, a.To)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.hooked)
		w.mu.Unlock()
		if n >= len(history) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %d forecast alerts, want %d", n, len(history))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
