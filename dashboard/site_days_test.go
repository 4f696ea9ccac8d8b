package dashboard

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// genDay is a generated site day: one gate line every 5 minutes whose
// entries and exits move the occupancy along a bump peaking mid-afternoon
// at peak, with a turnover of people coming and going.
type genDay struct {
	start          time.Time
	lines          []byte
	entries, exits int64
	occ            []int64 // occupancy after each 5-minute line
}

func generateDay(start time.Time, peak float64) genDay {
	g := genDay{start: start}
	target := func(s int) int64 {
		z := (float64(s) - 120) / 50 // step 120 is 10 h after the day start
		return int64(math.Round(peak * math.Exp(-z*z*z*z)))
	}
	for s := range 288 {
		o0, o1 := target(s), target(s+1)
		turn := o0 / 20
		in, out := max(o1-o0, 0)+turn, max(o0-o1, 0)+turn
		g.entries += in
		g.exits += out
		g.occ = append(g.occ, o1)
		if in > 0 || out > 0 {
			t := start.Add(time.Duration(s) * 5 * time.Minute)
			g.lines = fmt.Appendf(g.lines, `{"time":%q,"site":"lake","gate":"north","in":%d,"out":%d}`+"\n", t.UTC().Format(time.RFC3339), in, out)
		}
	}
	return g
}

// levelOf is the highest level a ratio reaches at the test site's
// thresholds, 80, 90 and 95 %.
func levelOf(ratio float64) Level {
	switch {
	case ratio >= 0.95:
		return LevelRed
	case ratio >= 0.9:
		return LevelOrange
	case ratio >= 0.8:
		return LevelYellow
	}
	return LevelNormal
}

// TestSiteDaysExactOnAGeneratedMonth posts 28 generated days of a site of
// capacity 1000 and daily capacity 5000 and one day older than the minute
// retention: GET /api/v1/sites/lake/days lists each day with its exact
// entries, exits, peak occupancy and its time, the shares of both
// capacities and the levels they reached, and counts the days that
// reached each level; the old day comes from the hourly tier, its peak
// that of an hour's end. CSV gives the same rows; bad requests are
// refused naming what was wrong.
func TestSiteDaysExactOnAGeneratedMonth(t *testing.T) {
	zone := time.FixedZone("CST", 8*3600)
	opts := Options{Sites: SitesOptions{DayStart: 4 * time.Hour, Location: zone}}
	s := startServer(t, t.TempDir(), opts)
	today := s.Dash.Sites.dayStart(time.Now())
	var month []genDay
	for i := 28; i >= 1; i-- {
		g := generateDay(today.AddDate(0, 0, -i), 600+float64((i*53)%390))
		s.post(t, "footfall", g.lines)
		month = append(month, g)
	}
	old := generateDay(today.AddDate(0, 0, -40), 930)
	s.post(t, "footfall", old.lines)

	var got SiteDays
	s.getJSON(t, "/api/v1/sites/lake/days?from="+today.AddDate(0, 0, -28).Format(time.DateOnly)+"&to="+today.Format(time.DateOnly), &got)
	if len(got.Days) != len(month) {
		t.Fatalf("%d days listed, want %d", len(got.Days), len(month))
	}
	want := map[string]Counts{}
	var occ, daily Counts
	for i, g := range month {
		d := got.Days[i]
		peak, at := int64(0), 0
		for s, o := range g.occ {
			if o > peak {
				peak, at = o, s
			}
		}
		peakTime := g.start.Add(time.Duration(at)*5*time.Minute + time.Minute).UTC()
		w := SiteDay{Date: g.start.Format(time.DateOnly), Start: g.start.UTC(), Entries: g.entries, Exits: g.exits,
			PeakOccupancy: peak, PeakTime: &peakTime, PeakRatio: round4(float64(peak) / 1000), DailyRatio: round4(float64(g.entries) / 5000),
			Level: levelOf(float64(peak) / 1000), DailyLevel: levelOf(float64(g.entries) / 5000), Tier: "minute"}
		if d.PeakTime == nil || !d.PeakTime.Equal(peakTime) {
			t.Errorf("day %s: peak at %v, want %v", w.Date, d.PeakTime, peakTime)
		}
		d.PeakTime, w.PeakTime = nil, nil
		d.Start = d.Start.UTC()
		if d != w {
			t.Errorf("day %d:\n got %+v\nwant %+v", i, d, w)
		}
		occ.add(w.Level)
		daily.add(w.DailyLevel)
	}
	want["occupancy"], want["daily"] = occ, daily
	if occ.Red == 0 || occ.Orange == occ.Red || occ.Yellow == occ.Orange || daily.Yellow == 0 {
		t.Fatalf("the generated month reaches levels %+v, daily %+v: want days at each level", occ, daily)
	}
	if fmt.Sprint(got.Crossed) != fmt.Sprint(want) {
		t.Errorf("days that reached each level %+v, want %+v", got.Crossed, want)
	}

	// The old day, from the hourly rollups.
	s.getJSON(t, "/api/v1/sites/lake/days?from="+old.start.Format(time.DateOnly)+"&to="+old.start.AddDate(0, 0, 1).Format(time.DateOnly), &got)
	var hourPeak int64
	for s := 11; s < len(old.occ); s += 12 {
		hourPeak = max(hourPeak, old.occ[s])
	}
	if len(got.Days) != 1 || got.Days[0].Tier != "hour" || got.Days[0].Entries != old.entries || got.Days[0].Exits != old.exits || got.Days[0].PeakOccupancy != hourPeak {
		t.Errorf("the day past the minute retention: %+v; want tier hour, %d entries, %d exits, peak %d", got.Days, old.entries, old.exits, hourPeak)
	}

	// CSV: a header and one row a day.
	csv := getBody(t, s.URL+"/api/v1/sites/lake/days?format=csv&from=-720h", 200)
	rows := strings.Split(strings.TrimSpace(csv), "\n")
	if len(rows) != 1+len(month) || !strings.HasPrefix(rows[0], "date,start,entries,exits,peak_occupancy") ||
		!strings.HasPrefix(rows[1], fmt.Sprintf("%s,%s,%d,%d,", month[0].start.Format(time.DateOnly), month[0].start.UTC().Format(time.RFC3339), month[0].entries, month[0].exits)) {
		t.Errorf("CSV of %d rows, want %d:\n%s", len(rows), 1+len(month), csv[:min(len(csv), 400)])
	}
	for _, tc := range []struct {
		query  string
		status int
		names  string
	}{
		{"/api/v1/sites/nowhere/days", 404, "nowhere"},
		{"/api/v1/sites/lake/days?from=yesterday", 400, `\"from\": value \"yesterday\"`},
		{"/api/v1/sites/lake/days?from=2026-01-02&to=2026-01-01", 400, "before to"},
		{"/api/v1/sites/lake/days?from=2000-01-01", 400, "3700 days"},
		{"/api/v1/sites/lake/days?format=xml", 400, `\"format\": value \"xml\"`},
	} {
		if body := getBody(t, s.URL+tc.query, tc.status); !strings.Contains(body, tc.names) {
			t.Errorf("GET %s: %s, want it to name %s", tc.query, body, tc.names)
		}
	}
}

// getBody GETs url and fails unless the answer has status.
func getBody(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s: %s; want %d", url, resp.Status, data, status)
	}
	return string(bytes.TrimSpace(data))
}
