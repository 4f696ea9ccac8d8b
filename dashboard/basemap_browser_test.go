package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flowd/flowd/demo/city"
)

// networkOff makes every host but this machine's loopback unreachable to
// the browser: names resolve to nothing and any other address goes to a
// proxy that is not there.
var networkOff = []chromedp.ExecAllocatorOption{
	chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	chromedp.ProxyServer("http://127.0.0.1:9"), // Chromium never proxies loopback
}

// feedCity puts the city's registries into s and ten minutes of its
// events, up to now.
func feedCity(t *testing.T, ctx context.Context, s *testServer) {
	t.Helper()
	c := city.New(city.Config{Seed: 1, Scale: 0.05, Start: time.Now()})
	feed := &city.Feeder{URL: s.URL, BatchSize: 5000, Senders: 2}
	if err := feed.PutRegistries(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Minute)
	if err := feed.Run(ctx, c, now.Add(-10*time.Minute), now, nil); err != nil {
		t.Fatal(err)
	}
}

// screenshot captures the page as an image.
func (pg *page) screenshot() *image.RGBA {
	pg.t.Helper()
	data, err := chromedp.Run(pg.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		pg.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		pg.t.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			rgba.Set(x, y, img.At(x, y))
		}
	}
	return rgba
}

// showLayers shows or hides map layers and waits until the map drew it.
func (pg *page) showLayers(visible bool, ids ...string) {
	pg.t.Helper()
	js := fmt.Sprintf(`flowdShowLayers(%q.split(','), %v)`, strings.Join(ids, ","), visible)
	if _, err := chromedp.Run(pg.ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise)); err != nil {
		pg.t.Fatalf("%s: %v", js, err)
	}
	time.Sleep(200 * time.Millisecond) // the drawn frame reaches the screenshot
}

// drawnBy counts the pixels of the map (left of the site panel) that
// change when the layers are hidden: what those layers draw.
func (pg *page) drawnBy(ids ...string) int {
	pg.t.Helper()
	with := pg.screenshot()
	pg.showLayers(false, ids...)
	without := pg.screenshot()
	pg.showLayers(true, ids...)
	n := 0
	b := with.Bounds()
	for y := b.Min.Y + 50; y < b.Max.Y-50; y++ { // below the bar, above the time slider
		for x := b.Min.X; x < b.Max.X-320; x++ {
			if with.RGBAAt(x, y) != without.RGBAAt(x, y) {
				n++
			}
		}
	}
	return n
}

// count counts the map's pixels of colour c.
func count(img *image.RGBA, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y + 50; y < b.Max.Y-50; y++ {
		for x := b.Min.X; x < b.Max.X-320; x++ {
			if img.RGBAAt(x, y) == c {
				n++
			}
		}
	}
	return n
}

// TestBaseMapOffline loads the page with the network off and no -basemap:
// the embedded land and water, the metro lines joined through the
// stations, the sensors and the hexagons each draw (the pixels they
// change when hidden), and the page asked nothing of any other host.
func TestBaseMapOffline(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found; install Debian's chromium package to run this test")
	}
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 500 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feedCity(t, ctx, s)
	pg := openPage(t, ctx, browser, s.URL+"/?metric=count_car", 1280, 800, networkOff...)
	defer pg.close()
	pg.wait("hexagons drawn", `window.flowdDrawnHexagons && flowdDrawnHexagons() > 20`)
	pg.wait("the metro lines and sensors", `flowdStats.context.lines > 0 && flowdStats.context.sensors >= 2000`)
	pg.showLayers(true, "hex-fill") // the map is idle: everything loaded is drawn
	full := pg.screenshot()
	land, water := count(full, color.RGBA{0xf1, 0xee, 0xe6, 0xff}), count(full, color.RGBA{0xa9, 0xcb, 0xe0, 0xff})
	base := pg.drawnBy("land")
	metro := pg.drawnBy("metro-lines")
	sensors := pg.drawnBy("sensors")
	hexes := pg.drawnBy("hex-fill")
	t.Logf("pixels: land %d, water %d; drawn by the base layer %d, metro lines %d, sensors %d, hexagons %d", land, water, base, metro, sensors, hexes)
	for what, n := range map[string]int{"land": land, "the base layer": base, "metro lines": metro, "sensors": sensors, "hexagons": hexes} {
		if n < 2000 {
			t.Errorf("%s: %d pixels; want it drawn (at least 2000)", what, n)
		}
	}
	if water < 500 {
		t.Errorf("water (Qiantang estuary, Hangzhou Bay): %d pixels; want it drawn", water)
	}
	foreign, err := chromedp.Run(pg.ctx, chromedp.Evaluate[[]string](`performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(location.origin))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(foreign) > 0 {
		t.Errorf("the page asked other hosts: %v", foreign)
	}
	pg.checkConsole()
}

// TestBaseMapFromLocalPMTiles serves a local PMTiles archive of magenta
// raster tiles with -basemap: flowd answers its tiles at /basemap/z/x/y
// (204 where the archive has none, 400 for a bad zoom), and the page,
// network off, draws them over the land, under the hexagons.
func TestBaseMapFromLocalPMTiles(t *testing.T) {
	dir := t.TempDir()
	magenta := color.RGBA{0xff, 0x00, 0xff, 0xff}
	tile := solidPNG(t, magenta)
	path := filepath.Join(dir, "base.pmtiles")
	everyTile(2, tile, true).write(t, path)
	bm, err := ParseBasemap(path)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, filepath.Join(dir, "data"), Options{Hub: HubOptions{Tick: 500 * time.Millisecond}, Basemap: bm})
	for _, tc := range []struct {
		path   string
		status int
		body   []byte
	}{{"/basemap/0/0/0", 200, tile}, {"/basemap/12/3423/1763", 200, tile}, {"/basemap/17/0/0", 204, nil}, {"/basemap/40/0/0", 400, nil}, {"/basemap/1/x/0", 400, nil}} {
		resp, err := http.Get(s.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.body != nil && (!bytes.Equal(data, tc.body) || resp.Header.Get("Content-Type") != "image/png")) {
			t.Errorf("GET %s: %s %s, %d bytes; want %d", tc.path, resp.Status, resp.Header.Get("Content-Type"), len(data), tc.status)
		}
	}
	browser := findBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome found; install Debian's chromium package to run the page's part of this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feedCity(t, ctx, s)
	pg := openPage(t, ctx, browser, s.URL+"/?metric=count_car", 1280, 800, networkOff...)
	defer pg.close()
	pg.wait("hexagons drawn", `window.flowdDrawnHexagons && flowdDrawnHexagons() > 20`)
	pg.showLayers(true, "base")
	tiles := pg.drawnBy("base")
	shown := count(pg.screenshot(), magenta)
	t.Logf("the archive's tiles change %d pixels, %d of them plain magenta", tiles, shown)
	if tiles < 100000 || shown < 50000 {
		t.Errorf("the archive's tiles change %d pixels, %d plain magenta; want them drawn over most of the map", tiles, shown)
	}
	pg.checkConsole()
}
