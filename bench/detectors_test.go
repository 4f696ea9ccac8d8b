package bench

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/valyala/fasthttp"
)

// TestDetectorFeedIsWhatFlowdStores sends a small detector feed through
// flowd's ingest handler into a real store and checks that the store holds
// exactly the feed's buckets, which the peer imports: flowd and the peer
// do the same job. It also checks the feed's promises: a cell per
// detector, and as many raw lines as values.
func TestDetectorFeedIsWhatFlowdStores(t *testing.T) {
	f := GenerateDetectors(7, 300, 4, city.DefaultStart, 9, 1000)
	if f.Events != 1200 || len(f.Samples) != 2400 {
		t.Fatalf("%d events, %d samples; want 1200 and 2400", f.Events, len(f.Samples))
	}
	cells := map[uint64]bool{}
	for _, k := range f.Series {
		cells[uint64(k.Cell)] = true
	}
	if len(cells) != 300 {
		t.Fatalf("%d cells for 300 detectors", len(cells))
	}
	rawLines, rawEvents := 0, 0
	for _, r := range f.Raw {
		for _, p := range r.Parts {
			rawLines += bytes.Count(p, []byte("\n"))
		}
		rawEvents += r.Events
	}
	if rawLines != 2400 || rawEvents != 1200 {
		t.Fatalf("raw requests hold %d lines of %d events; want 2400 of 1200", rawLines, rawEvents)
	}

	reg := geo.New(9)
	sensors, err := geo.ReadSensors("sensors.csv", bytes.NewReader(f.SensorsCSV))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutSensors(sensors); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := flowdtest.OpenStore(t, dir)
	bk := &ingest.Bucketer{Registry: reg, Store: st, Res: 9}
	if bk.Cards, err = ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key")); err != nil {
		t.Fatal(err)
	}
	h := ingest.NewHandler(bk, 64)
	for _, r := range f.FlowdRequests(1000) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetContentType("application/x-ndjson")
		ctx.Request.SetBody(bytes.Join(r.Parts, nil))
		h.Counts(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK || !strings.Contains(string(ctx.Response.Body()), fmt.Sprintf(`"accepted":%d,`, r.Events)) {
			t.Fatalf("status %d: %.300s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}

	want := map[storage.Key]int64{}
	base := f.Start.Unix() / 60
	for _, s := range f.Samples {
		k := f.Series[s.Series]
		id, ok := st.LookupMetric(k.Metric)
		if !ok {
			t.Fatalf("flowd has no metric %s", k.Metric)
		}
		want[storage.Key{Metric: id, Cell: uint64(k.Cell), Minute: base + int64(s.Minute)}] += s.Value
	}
	// In the memtable, where a count's speed sums are second values of
	// its points, and again from the part a flush writes.
	for _, when := range []string{"in memory", "flushed"} {
		if when == "flushed" {
			if err := st.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		got := 0
		for _, metric := range []string{"count_car", "speed_car"} {
			id, _ := st.LookupMetric(metric)
			err := st.Scan(storage.TierMinute, metric, vocab.Everywhere, base, base+int64(f.Minutes), func(cell uint64, minute, v int64) {
				got++
				k := storage.Key{Metric: id, Cell: cell, Minute: minute}
				if want[k] != v {
					t.Errorf("%s: %s %x at minute %d: flowd holds %d, the feed's bucket is %d", when, metric, cell, minute-base, v, want[k])
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if got != len(want) {
			t.Errorf("%s: flowd holds %d buckets, the feed has %d", when, got, len(want))
		}
	}
}
