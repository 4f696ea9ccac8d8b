package dashboard

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestReplayShowsAPastDay stores swipes and a site's footfall of a day
// three days back, and swipes of a day 40 days back (past the minute
// retention, kept hourly), then opens links to both times with the
// network off: each shows its hexagons from the store, the first the
// site's occupancy and level as they were; the address keeps the time and
// the view; playing at 600× moves the time on by ten minutes a second.
func TestReplayShowsAPastDay(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found; install Debian's chromium package to run this test")
	}
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 500 * time.Millisecond}})
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	at, old := day.Add(10*time.Hour), day.AddDate(0, 0, -37).Add(10*time.Hour)
	swipes := func(when time.Time) []byte {
		var b []byte
		for i := range 40 {
			b = fmt.Appendf(b, `{"time":%q,"card":"c%d","dir":"in","lat":%.5f,"lng":%.5f}`+"\n",
				when.Format(time.RFC3339), i, 30.235+0.0005*float64(i), 120.135+0.0007*float64(i%20))
		}
		return b
	}
	s.post(t, "swipes", swipes(at.Add(-2*time.Minute)))
	s.post(t, "swipes", swipes(old.Add(-30*time.Minute)))
	s.post(t, "footfall", fmt.Appendf(nil, `{"time":%q,"site":"lake","in":850}`+"\n", day.Add(9*time.Hour).Format(time.RFC3339)))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	link := fmt.Sprintf("%s/?metric=swipes_in&view=120.145,30.245,13&at=%s", s.URL, at.Format(time.RFC3339))
	pg := openPage(t, ctx, browser, link, 1280, 800, networkOff...)
	defer pg.close()
	pg.wait("the replayed hexagons", fmt.Sprintf(`flowdStats.mode === 'replay' && flowdStats.replayAt === %d && flowdStats.replayCells > 0 && flowdDrawnHexagons() > 0`, at.Unix()))
	pg.wait("the site as it was", `Array.from(document.querySelectorAll('#sites .site-occ')).some(e => e.textContent.startsWith('850 / 1,000'))`)
	texts, err := chromedp.Run(pg.ctx, chromedp.Evaluate[[]string](`[document.querySelector('#sites .level').textContent, document.getElementById('day').value, document.getElementById('legend-title').textContent, location.search]`))
	if err != nil {
		t.Fatal(err)
	}
	if texts[0] != "yellow" || texts[1] != day.Local().Format(time.DateOnly) || !strings.Contains(texts[2], "swipes_in · 5 min to") {
		t.Errorf("level %q, day %q, legend %q; want yellow, %s, the replayed window", texts[0], texts[1], texts[2], day.Format(time.DateOnly))
	}
	pg.wait("the address to keep the time and view", `location.search.includes('view=') && location.search.includes('at=')`)
	q, _ := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`location.search`))
	v, _ := url.ParseQuery(strings.TrimPrefix(q, "?"))
	if v.Get("at") != at.Format(time.RFC3339) || v.Get("metric") != "swipes_in" || !strings.HasPrefix(v.Get("view"), "120.145") {
		t.Errorf("address %s; want the replayed time %s, the metric and the view", q, at.Format(time.RFC3339))
	}
	// Play at 600×: ten minutes of the day a second.
	if _, err := chromedp.Run(pg.ctx, chromedp.Evaluate[bool](`document.getElementById('speed').value = '600', document.getElementById('play').click(), true`)); err != nil {
		t.Fatal(err)
	}
	pg.wait("the replay to play on", fmt.Sprintf(`flowdStats.replayAt >= %d`, at.Unix()+1200))
	pg.checkConsole()
	pg.close()

	// A day past the minute retention, from the hourly rollups.
	pg = openPage(t, ctx, browser, fmt.Sprintf("%s/?metric=swipes_in&view=120.145,30.245,13&at=%d", s.URL, old.Unix()), 1280, 800, networkOff...)
	defer pg.close()
	pg.wait("the old day's hexagons", fmt.Sprintf(`flowdStats.replayAt === %d && flowdStats.replayCells > 0 && flowdDrawnHexagons() > 0 && document.getElementById('status').textContent.includes('hourly')`, old.Unix()))
	pg.checkConsole()
}
