package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

func TestNextLevel(t *testing.T) {
	th := [4]float64{0, 0.80, 0.90, 0.95}
	for _, tc := range []struct {
		cur   Level
		ratio float64
		want  Level
	}{
		{LevelNormal, 0.79, LevelNormal},
		{LevelNormal, 0.80, LevelYellow},
		{LevelNormal, 0.97, LevelRed}, // straight up, one change
		{LevelYellow, 0.90, LevelOrange},
		{LevelRed, 0.94, LevelRed}, // within the 2 % band: holds
		{LevelRed, 0.93, LevelRed},
		{LevelRed, 0.929, LevelOrange},
		{LevelOrange, 0.881, LevelOrange},
		{LevelOrange, 0.87, LevelYellow},
		{LevelRed, 0.5, LevelNormal}, // straight down, one change
		{LevelYellow, 0.785, LevelYellow},
		{LevelYellow, 0.779, LevelNormal},
	} {
		if got := nextLevel(tc.cur, tc.ratio, th, 0.02); got != tc.want {
			t.Errorf("nextLevel(%s, %v) = %s, want %s", tc.cur, tc.ratio, got, tc.want)
		}
	}
}

// noonZone is a time zone in which it is now about noon, so a site day that
// starts at midnight does not roll over during the test.
func noonZone() *time.Location {
	now := time.Now().UTC()
	sinceMidnight := now.Sub(now.Truncate(24 * time.Hour))
	return time.FixedZone("test", int((12*time.Hour-sinceMidnight)/time.Second))
}

func footfall(in, out int64) []byte {
	return fmt.Appendf(nil, `{"time":%q,"site":"lake","gate":"north","in":%d,"out":%d}`+"\n", time.Now().UTC().Format(time.RFC3339), in, out)
}

// TestSiteLevelsCrossAndReturn posts footfall that takes a site of capacity
// 1000 through yellow, orange and red and back to normal: each change shows
// exactly once in the status, the alert history, the WebSocket and the
// webhook, and a restart rebuilds the occupancy without repeating alerts.
func TestSiteLevelsCrossAndReturn(t *testing.T) {
	var hookMu sync.Mutex
	var hooked []Alert
	attempts := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		attempts++
		if attempts == 1 {
			http.Error(w, "down for a moment", http.StatusServiceUnavailable)
			return
		}
		var a Alert
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &a); err != nil {
			t.Errorf("webhook body %s: %v", data, err)
		}
		hooked = append(hooked, a)
	}))
	defer hook.Close()

	dir := t.TempDir()
	opts := Options{
		Hub:        HubOptions{Tick: 100 * time.Millisecond},
		Sites:      SitesOptions{DayStart: time.Minute, Location: noonZone()},
		WebhookURL: hook.URL, WebhookRetries: 3, WebhookTimeout: 2 * time.Second,
	}
	s := startServer(t, dir, opts)
	ws := s.dial(t, nil)
	time.Sleep(50 * time.Millisecond) // let the hub register the client

	steps := []struct {
		in, out int64
		occ     int64
		level   Level
	}{
		{700, 0, 700, LevelNormal},
		{100, 0, 800, LevelYellow},
		{100, 0, 900, LevelOrange},
		{60, 0, 960, LevelRed},
		{0, 30, 930, LevelRed}, // inside the hysteresis band
		{0, 10, 920, LevelOrange},
		{0, 100, 820, LevelYellow},
		{0, 100, 720, LevelNormal},
	}
	var pushed []message
	prev := LevelNormal
	for i, st := range steps {
		s.post(t, "footfall", footfall(st.in, st.out))
		var got SiteStatus
		s.getJSON(t, "/api/v1/sites/lake/status", &got)
		if got.Occupancy != st.occ || got.Level != st.level {
			t.Fatalf("step %d: occupancy %d level %s, want %d %s", i, got.Occupancy, got.Level, st.occ, st.level)
		}
		if st.level != prev {
			m := ws.read(t, 2*time.Second)
			if m.Type != "site" || m.Site != "lake" || m.From != prev || m.To != st.level {
				t.Fatalf("step %d: pushed %+v, want site lake %s→%s", i, m, prev, st.level)
			}
			pushed = append(pushed, m)
		}
		prev = st.level
	}
	// Nothing more is pushed: no frames were asked for and no level moved.
	ws.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, data, err := ws.conn.ReadMessage(); err == nil {
		t.Errorf("unexpected message after the last change: %s", data)
	}

	want := [][2]Level{{LevelNormal, LevelYellow}, {LevelYellow, LevelOrange}, {LevelOrange, LevelRed},
		{LevelRed, LevelOrange}, {LevelOrange, LevelYellow}, {LevelYellow, LevelNormal}}
	changes := func(as []Alert) [][2]Level {
		var out [][2]Level
		for _, a := range as {
			out = append(out, [2]Level{a.From, a.To})
		}
		return out
	}
	var hist struct{ Alerts []Alert }
	s.getJSON(t, "/api/v1/alerts?site=lake", &hist)
	if got := changes(hist.Alerts); !slices.Equal(got, want) {
		t.Errorf("alert history %v, want %v", got, want)
	}
	if len(pushed) != len(want) {
		t.Errorf("%d changes pushed, want %d", len(pushed), len(want))
	}

	var all struct{ Sites []SiteStatus }
	s.getJSON(t, "/api/v1/sites/status", &all)
	if len(all.Sites) != 1 || all.Sites[0].EntriesToday != 960 || all.Sites[0].ExitsToday != 240 || all.Sites[0].DailyRatio != 0.192 {
		t.Errorf("all sites %+v, want lake with 960 entries, 240 exits, 19.2 %% of its daily capacity", all.Sites)
	}
	if tr := all.Sites[0].Trend; len(tr) == 0 || tr[len(tr)-1].Occupancy != 720 {
		t.Errorf("trend %+v, want it to end at the occupancy 720", tr)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		hookMu.Lock()
		got := changes(hooked)
		hookMu.Unlock()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook got %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A restart rebuilds today's occupancy from the store and the level
	// from the history, and adds no alert.
	s.Close()
	s = startServer(t, dir, opts)
	var got SiteStatus
	s.getJSON(t, "/api/v1/sites/lake/status", &got)
	if got.Occupancy != 720 || got.EntriesToday != 960 || got.Level != LevelNormal {
		t.Errorf("after restart: %+v, want occupancy 720, 960 entries, normal", got)
	}
	s.getJSON(t, "/api/v1/alerts", &hist)
	if got := changes(hist.Alerts); !slices.Equal(got, want) {
		t.Errorf("alert history after restart %v, want %v", got, want)
	}
	s.post(t, "footfall", footfall(100, 0))
	s.getJSON(t, "/api/v1/sites/lake/status", &got)
	if got.Occupancy != 820 || got.Level != LevelYellow {
		t.Errorf("after restart and 100 entries: occupancy %d level %s, want 820 yellow", got.Occupancy, got.Level)
	}
}

// TestFootfallIsNotAppliedInTheIngestRequest observes readings that raise
// a site's level while the live hub is stuck (its push blocks): the
// observer returns at once, since the tracker's own goroutine applies the
// readings, writes the alert and pushes it; a status read then sees them.
func TestFootfallIsNotAppliedInTheIngestRequest(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := geo.New(9)
	sites, err := geo.ReadSitesGeoJSON(strings.NewReader(testSitesGeoJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutSites(sites); err != nil {
		t.Fatal(err)
	}
	alerts, err := OpenAlertLog(filepath.Join(dir, "alerts.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer alerts.Close()
	release := make(chan struct{})
	pushed := make(chan []byte, 4)
	push := func(msg []byte) {
		<-release
		pushed <- msg
	}
	s, err := NewSites(reg, st, alerts, push, nil, SitesOptions{DayStart: time.Minute, Location: noonZone()})
	if err != nil {
		t.Fatal(err)
	}
	go s.Run()
	defer s.Close()

	observed := make(chan struct{})
	go func() {
		s.ObserveFootfall([]vocab.SiteReading{{Time: time.Now().UnixMilli(), Site: "lake", In: 900}})
		close(observed)
	}()
	select {
	case <-observed:
	case <-time.After(2 * time.Second):
		t.Fatal("ObserveFootfall waited for the live hub")
	}
	close(release)
	select {
	case msg := <-pushed:
		if !strings.Contains(string(msg), `"to":"orange"`) {
			t.Fatalf("pushed %s, want the change to orange", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the level change was never pushed")
	}
	if got, _ := s.Status("lake"); got.Occupancy != 900 || got.Level != LevelOrange {
		t.Fatalf("status: occupancy %d, level %s; want 900, orange", got.Occupancy, got.Level)
	}
	if a, ok := alerts.Last("lake", AlertOccupancy); !ok || a.To != LevelOrange {
		t.Fatalf("alert log's last alert %+v, %v; want the change to orange", a, ok)
	}
}
