package dashboard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flowd/flowd/geo"
)

// TestForecastsOnThePage opens the page on a flowd whose lake is in a
// surge that its forecast says will turn it red, and where a camera has
// counted a crowd where none is usual: the site panel shows the lake's
// forecast band and the time to red, and the map outlines the anomaly,
// with no console error.
func TestForecastsOnThePage(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found (looked for chromium, chromium-browser, google-chrome, headless-shell on PATH and $FLOWD_BROWSER); install Debian's chromium package to run this test")
	}
	today := time.Now().UTC().Truncate(24 * time.Hour).Add(-2 * 24 * time.Hour)
	w := startWarnServer(t, today)
	if err := w.Reg.PutSensors([]geo.Sensor{{ID: "cam-1", Name: "Nanshan Rd", Lat: 30.2450, Lng: 120.1450}}); err != nil {
		t.Fatal(err)
	}
	day := today.Unix() / 60
	surge := func(m int64) float64 { return usualOccupancy(m) + 4*max(0, float64(m-(day+9*60))) }
	w.run(t, day+6*60, day+10*60, surge, nil)
	m := day + 10*60
	w.post(t, "counts", fmt.Appendf(nil, `{"time":%d,"sensor":"cam-1","class":"person","count":60,"interval":60}`+"\n", m*60))
	w.minute(t, m, surge(m-1), surge(m))

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	pg := openPage(t, ctx, browser, w.URL+"/", 1280, 800)
	defer pg.close()
	pg.wait("the anomaly outlined", `window.flowdStats && flowdStats.anomalies >= 1`)
	pg.wait("the lake's forecast in the panel", `flowdStats.siteForecasts >= 1`)
	text, err := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`document.querySelector('#sites li[data-site="lake"] .site-forecast span').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "red in") {
		t.Errorf("the lake's forecast says %q, want the time to red", text)
	}
	t.Logf("panel: %q; %v anomalies outlined", text, pg.eval(`flowdStats.anomalies`))
	pg.checkConsole()
}
