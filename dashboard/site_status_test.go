package dashboard

import (
	"fmt"
	"testing"
	"time"
)

// gateLine is a footfall line of site lake stamped at t; occ < 0 leaves
// the occupancy out.
func gateLine(t time.Time, in, out, occ int64) []byte {
	if occ >= 0 {
		return fmt.Appendf(nil, `{"time":%q,"site":"lake","gate":"office","occupancy":%d}`+"\n", t.UTC().Format(time.RFC3339), occ)
	}
	return fmt.Appendf(nil, `{"time":%q,"site":"lake","gate":"north","in":%d,"out":%d}`+"\n", t.UTC().Format(time.RFC3339), in, out)
}

// TestOccupancyNeverNegativeNorStuckAtZero posts to a real server the
// issue's day: the morning's entries never seen (exits first), then
// entries, a headcount, more exits than anyone counted in, entries again.
// Occupancy is never negative, shows every entry at once, takes up the
// headcount, and the trend holds the whole last hour. After a restart,
// which keeps no headcount, the day's entries and exits give it again.
func TestOccupancyNeverNegativeNorStuckAtZero(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Sites: SitesOptions{DayStart: time.Minute, Location: noonZone()}}
	s := startServer(t, dir, opts)
	t0 := time.Now().Add(-50 * time.Minute).Truncate(time.Minute)
	steps := []struct {
		in, out, occ int64 // occ: a headcount reading, -1 for none
		want         int64
	}{
		{0, 500, -1, 0},      // exits of the unseen morning: not negative
		{100, 0, -1, 100},    // entries show at once, not stuck at 0
		{0, 0, 800, 800},     // the site's headcount re-baselines
		{0, 300, -1, 500},    // the gates move it on
		{50, 0, -1, 550},     //
		{0, 2000, -1, 0},     // more exits than people: 0, not negative
		{10, 0, -1, 10},      // and the next entries show
		{20, 25, -1, 5},      //
		{0, 0, 1200, 1200},   // a later headcount
		{300, 100, -1, 1400}, //
	}
	for i, st := range steps {
		s.post(t, "footfall", gateLine(t0.Add(time.Duration(i)*time.Minute), st.in, st.out, st.occ))
		var got SiteStatus
		s.getJSON(t, "/api/v1/sites/lake/status", &got)
		if got.Occupancy != st.want {
			t.Fatalf("step %d (in %d, out %d, reading %d): occupancy %d, want %d", i, st.in, st.out, st.occ, got.Occupancy, st.want)
		}
	}
	var got SiteStatus
	s.getJSON(t, "/api/v1/sites/lake/status", &got)
	if len(got.Trend) != trendPoints+1 {
		t.Fatalf("trend of %d points, want %d: the last hour in 5-minute steps and now; %+v", len(got.Trend), trendPoints+1, got.Trend)
	}
	first, last := got.Trend[0], got.Trend[len(got.Trend)-1]
	if since := last.Time.Sub(first.Time); since < 55*time.Minute || since > time.Hour {
		t.Errorf("trend from %v to %v: want the last hour", first.Time, last.Time)
	}
	for _, p := range got.Trend {
		want := int64(-1)
		switch {
		case !p.Time.After(t0):
			want = 0 // before the first reading
		case !p.Time.Before(t0.Add(10 * time.Minute)):
			want = 1400 // after the last
		}
		if p.Occupancy < 0 || (want >= 0 && p.Occupancy != want) {
			t.Errorf("trend point %v: occupancy %d, want %d", p.Time, p.Occupancy, want)
		}
	}

	s.Close()
	s = startServer(t, dir, opts)
	s.getJSON(t, "/api/v1/sites/lake/status", &got)
	// From the gates alone: 0, 100, 100, 0 (300 out), 50, 0, 10, 5, 5, 205.
	if got.Occupancy != 205 || got.EntriesToday != 480 || got.ExitsToday != 2925 {
		t.Errorf("after a restart: occupancy %d, entries %d, exits %d; want 205, 480, 2925", got.Occupancy, got.EntriesToday, got.ExitsToday)
	}
}

// TestDailyCapacityCrossingRaisesOneDailyAlert takes a site of daily
// capacity 5000 past 80 % and then 90 % of it while its occupancy stays
// low: each crossing raises exactly one alert marked daily, in the history
// and on the WebSocket; the occupancy level does not move; entries that
// cross nothing raise nothing; a restart repeats nothing.
func TestDailyCapacityCrossingRaisesOneDailyAlert(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Hub: HubOptions{Tick: 100 * time.Millisecond}, Sites: SitesOptions{DayStart: time.Minute, Location: noonZone()}}
	s := startServer(t, dir, opts)
	ws := s.dial(t, nil)
	time.Sleep(50 * time.Millisecond) // let the hub register the client
	now := time.Now()
	steps := []struct {
		in    int64
		daily Level
	}{
		{3900, LevelNormal}, // 78 %
		{100, LevelYellow},  // 80 %: one alert
		{50, LevelYellow},   // 81 %: nothing
		{500, LevelOrange},  // 91 %: one alert
		{0, LevelOrange},
	}
	prev := LevelNormal
	for i, st := range steps {
		// As many out as in: the occupancy stays 0, only the daily count rises.
		s.post(t, "footfall", gateLine(now, st.in, st.in, -1))
		var got SiteStatus
		s.getJSON(t, "/api/v1/sites/lake/status", &got)
		if got.DailyLevel != st.daily || got.Level != LevelNormal || got.Occupancy != 0 {
			t.Fatalf("step %d: daily level %s, level %s, occupancy %d; want %s, normal, 0", i, got.DailyLevel, got.Level, got.Occupancy, st.daily)
		}
		if st.daily != prev {
			m := ws.read(t, 2*time.Second)
			if m.Type != "site" || m.Kind != AlertDaily || m.From != prev || m.To != st.daily {
				t.Fatalf("step %d: pushed %+v, want a daily %s→%s", i, m, prev, st.daily)
			}
		}
		prev = st.daily
	}
	ws.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, data, err := ws.conn.ReadMessage(); err == nil {
		t.Errorf("unexpected message after the last crossing: %s", data)
	}
	checkHistory := func(when string) {
		t.Helper()
		var hist struct{ Alerts []Alert }
		s.getJSON(t, "/api/v1/alerts?site=lake", &hist)
		if len(hist.Alerts) != 2 {
			t.Fatalf("%s: alerts %+v, want the two daily crossings", when, hist.Alerts)
		}
		for i, want := range [][2]Level{{LevelNormal, LevelYellow}, {LevelYellow, LevelOrange}} {
			a := hist.Alerts[i]
			if a.Kind != AlertDaily || a.From != want[0] || a.To != want[1] || a.Capacity != 5000 || a.Entries == 0 || a.Ratio != float64(a.Entries)/5000 {
				t.Errorf("%s: alert %d is %+v, want daily %s→%s with the entries over the daily capacity 5000", when, i, a, want[0], want[1])
			}
		}
	}
	checkHistory("before a restart")
	s.Close()
	s = startServer(t, dir, opts)
	var got SiteStatus
	s.getJSON(t, "/api/v1/sites/lake/status", &got)
	if got.DailyLevel != LevelOrange || got.EntriesToday != 4550 {
		t.Errorf("after a restart: daily level %s, %d entries; want orange, 4550", got.DailyLevel, got.EntriesToday)
	}
	checkHistory("after a restart")
}
