package city_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// An operator who replaces the stations of a server the demo feeds (here
// with two stations of their own) gets the demo's swipes rejected line by
// line, for stations the server no longer knows: the feed counts them and
// goes on, and its counts and footfall keep arriving. It used to stop for
// good at the first batch whose every line was rejected.
func TestFeedSurvivesARegistryChange(t *testing.T) {
	dir := t.TempDir()
	srv := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		return api.Parts{Ingest: ingest.NewHandler(&ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}, 8)}, nil
	}).Serve()
	// A weekday morning two days ago: the metro runs, cameras count.
	day := time.Now().In(city.Hangzhou).AddDate(0, 0, -2)
	for day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
		day = day.AddDate(0, 0, -1)
	}
	from := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, city.Hangzhou)
	c := city.New(city.Config{Seed: 1, Scale: 0.02, Start: from})
	f := &city.Feeder{URL: srv.URL, BatchSize: 500, Senders: 1}
	ctx := context.Background()
	if err := f.PutRegistries(ctx, c); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/stations", strings.NewReader("id,name,lat,lng\nS1,One,30.25,120.16\nS2,Two,30.28,120.17\n"))
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT stations: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := f.Run(ctx, c, from, from.Add(10*time.Minute), nil); err != nil {
		t.Fatalf("the feed stopped: %v", err)
	}
	if f.Rejected() == 0 || !strings.Contains(f.LastRejection(), `field "station"`) || !strings.Contains(f.LastRejection(), "unknown station") {
		t.Errorf("rejected %d, the last: %q; want the swipes rejected for unknown stations", f.Rejected(), f.LastRejection())
	}
	var n int64
	if err := srv.Store.Scan(storage.TierMinute, "count_car", vocab.Everywhere, from.Unix()/60, from.Unix()/60+10, func(_ uint64, _, v int64) { n += v }); err != nil || n == 0 {
		t.Errorf("cars counted over the 10 minutes: %d (%v); want the counts kept", n, err)
	}
}
