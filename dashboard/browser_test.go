package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flowd/flowd/bench/city"
)

// findBrowser returns the path of a Chromium or Chrome binary, or "".
func findBrowser() string {
	if p := os.Getenv("FLOWD_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInBrowser loads the page in headless Chromium against a
// flowd fed by the synthetic city, live: no console errors, hexagons
// drawn, the map following the feed, the site panel showing levels. It
// writes the screenshot the README shows to docs/dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found (looked for chromium, chromium-browser, google-chrome, headless-shell on PATH and $FLOWD_BROWSER); install Debian's chromium package to run this test")
	}
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 500 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	c := city.New(city.Config{Seed: 1, Scale: 0.05, Start: time.Now(), Holiday: true})
	feed := &city.Feeder{URL: s.URL, BatchSize: 5000, Senders: 2}
	if err := feed.PutRegistries(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Minute)
	if err := feed.Run(ctx, c, now.Add(-10*time.Minute), now, nil); err != nil {
		t.Fatal(err)
	}
	liveCtx, stopLive := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		live := &city.Feeder{URL: s.URL, BatchSize: 2000, Senders: 1, Live: true}
		if err := live.Run(liveCtx, c, now, time.Time{}, nil); err != nil {
			t.Errorf("live feed: %v", err)
		}
	})
	defer func() {
		stopLive()
		wg.Wait()
	}()

	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 800),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var mu sync.Mutex
	var console []chromedp.ConsoleMessage
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m)
			mu.Unlock()
		}
	}()

	if err := chromedp.Do(bctx, chromedp.Navigate(s.URL+"/?metric=count_car")); err != nil {
		t.Fatalf("loading the page in %s: %v", browser, err)
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			stats, _ := chromedp.Run(bctx, chromedp.Evaluate[map[string]any](`window.flowdStats || {}`))
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("waiting for %s (%s): %v; page stats %v; console %v", what, expr, err, stats, console)
		}
	}
	eval := func(expr string) float64 {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[float64](expr))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		return v
	}

	wait("hexagons from the live feed", `window.flowdStats && flowdStats.hexagons > 20 && flowdStats.connected`)
	wait("the map to finish drawing them", `window.flowdDrawnHexagons && flowdDrawnHexagons() > 20`)
	drawn := eval(`flowdDrawnHexagons()`)
	renders, total := eval(`flowdStats.renders`), eval(`flowdStats.total`)
	// The city's cameras report once a minute; a burst of counts now makes
	// sure the live feed has something to show within a tick or two.
	var burst []byte
	at := time.Now().UTC().Format(time.RFC3339)
	for _, sn := range s.Reg.Sensors()[:200] {
		burst = fmt.Appendf(burst, `{"time":%q,"sensor":%q,"class":"car","count":40,"interval":60}`+"\n", at, sn.ID)
	}
	s.post(t, "counts", burst)
	wait("a live update to change the map", `flowdStats.renders > `+ftoa(renders)+` && flowdStats.total !== `+ftoa(total))
	wait("the site panel", `document.querySelectorAll('#sites li .level').length >= 12`)
	levels, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#sites .level')).map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range levels {
		if !slices.Contains(levelNames[:], l) {
			t.Errorf("site panel shows level %q", l)
		}
	}
	wait("site outlines", `flowdStats.sitesShown >= 12`)
	t.Logf("hexagons drawn %v (of %v in the source), levels %v, render %v ms", drawn, eval(`flowdStats.hexagons`), levels, eval(`flowdStats.renderMs`))

	time.Sleep(500 * time.Millisecond) // let the last render reach the canvas
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			t.Errorf("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
		} else if m.Type == chromedp.ConsoleWarning {
			t.Logf("console warning: %s", strings.TrimSpace(m.Text))
		}
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
