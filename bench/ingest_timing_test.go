package bench

import (
	"cmp"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
	"github.com/valyala/fasthttp"
)

// The timing tests here drive flowd's ingest handler and store in-process,
// without HTTP, so that `go test -cpuprofile` shows flowd's own hot paths
// (the servers the end-to-end benchmark starts are separate processes).

var (
	hourOnce sync.Once
	hour     *Day
	hourErr  error
)

// benchHour is an hour of the benchmark city at its morning peak.
func benchHour(b *testing.B) *Day {
	hourOnce.Do(func() {
		c := city.New(city.Config{Seed: 1, Scale: 0.25, Cameras: 5000})
		hour, hourErr = GenerateDay(c, city.DefaultStart.Add(8*time.Hour), 60, 9)
	})
	if hourErr != nil {
		b.Fatal(hourErr)
	}
	return hour
}

func openBenchStore(b *testing.B) *storage.Store {
	return flowdtest.OpenStore(b, b.TempDir())
}

// benchHandler posts bodies of 10,000 events of blocks through flowd's
// ingest handler into a real store, from 4 goroutines like the senders of
// the end-to-end run, and reports the cost per event.
func benchHandler(b *testing.B, blocks []Block, serve func(*ingest.Handler, *fasthttp.RequestCtx)) {
	benchHandlerBodies(b, blocks, 10, serve)
}

// benchHandlerBodies is benchHandler with bodies of per blocks (of 1,000
// events each).
func benchHandlerBodies(b *testing.B, blocks []Block, per int, serve func(*ingest.Handler, *fasthttp.RequestCtx)) {
	d := benchHour(b)
	st := openBenchStore(b)
	bk := &ingest.Bucketer{Registry: d.Registry, Store: st, Res: d.Res}
	var err error
	if bk.Cards, err = ingest.LoadOrCreateKey(filepath.Join(b.TempDir(), "secret.key")); err != nil {
		b.Fatal(err)
	}
	h := ingest.NewHandler(bk, 64)
	var bodies [][]byte
	var events []int
	for i := 0; i+per <= len(blocks); i += per {
		var body []byte
		n := 0
		for _, bl := range blocks[i : i+per] {
			body = append(body, bl.Body...)
			n += bl.Events
		}
		bodies, events = append(bodies, body), append(events, n)
	}
	if len(bodies) == 0 {
		b.Fatal("not enough events for one body")
	}
	var total int64
	var mu sync.Mutex
	b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 senders
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		i, n := 0, int64(0)
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetContentType("application/x-ndjson")
			ctx.Request.SetBody(bodies[i%len(bodies)])
			serve(h, &ctx)
			if ctx.Response.StatusCode() != fasthttp.StatusOK {
				b.Errorf("status %d: %.300s", ctx.Response.StatusCode(), ctx.Response.Body())
				return
			}
			n += int64(events[i%len(bodies)])
			i++
		}
		mu.Lock()
		total += n
		mu.Unlock()
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/event")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkHandlerCounts(b *testing.B) {
	benchHandler(b, benchHour(b).Blocks[1], (*ingest.Handler).Counts)
}

// BenchmarkHandlerCounts1000 is BenchmarkHandlerCounts with requests of
// 1,000 events: what a request costs beyond its events.
func BenchmarkHandlerCounts1000(b *testing.B) {
	benchHandlerBodies(b, benchHour(b).Blocks[1], 1, (*ingest.Handler).Counts)
}

func BenchmarkHandlerSwipes(b *testing.B) {
	benchHandler(b, benchHour(b).Blocks[0], (*ingest.Handler).Swipes)
}

func BenchmarkHandlerRawSwipes(b *testing.B) {
	benchHandler(b, benchHour(b).RawSwipes, (*ingest.Handler).Swipes)
}

// BenchmarkStoreAdd adds the hour's buckets as deltas in batches of
// 10,000, one durable group commit each: the store's share of ingest.
func BenchmarkStoreAdd(b *testing.B) {
	d := benchHour(b)
	st := openBenchStore(b)
	ids := make([]uint32, len(d.Series))
	for i, k := range d.Series {
		id, err := st.MetricID(k.Metric)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	base := d.Start.Unix() / 60
	deltas := make([]storage.Delta, len(d.Samples))
	for i, s := range d.Samples {
		deltas[i] = storage.Delta{Key: storage.Key{Metric: ids[s.Series], Cell: uint64(d.Series[s.Series].Cell), Minute: base + int64(s.Minute)}, Value: s.Value}
	}
	var n int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lo := (i * 10000) % len(deltas)
		batch := deltas[lo:min(lo+10000, len(deltas))]
		if err := st.Add(batch); err != nil {
			b.Fatal(err)
		}
		n += int64(len(batch))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delta")
}

// BenchmarkStoreScan sums 2,000 cells × 1 day at one-minute step from
// parts, as GET /api/v1/series does: the store's share of that query.
func BenchmarkStoreScan(b *testing.B) {
	st := openBenchStore(b)
	id, err := st.MetricID("count_car")
	if err != nil {
		b.Fatal(err)
	}
	// 2,000 res-9 cells in one block of res-6 parents around the city.
	centre := h3.LatLngToCell(h3.LatLng{Lat: city.CityCenter.Lat, Lng: city.CityCenter.Lng}, 6)
	disk := centre.GridDisk(1)
	var cells []uint64
	for _, p := range disk {
		for _, c := range p.Children(9) {
			if len(cells) < 2000 {
				cells = append(cells, uint64(c))
			}
		}
	}
	const minutes = 1440
	base := city.DefaultStart.Unix() / 60
	batch := make([]storage.Delta, 0, 100000)
	for m := range int64(minutes) {
		for i, c := range cells {
			batch = append(batch, storage.Delta{Key: storage.Key{Metric: id, Cell: c, Minute: base + m}, Value: int64(1 + (i+int(m))%17)})
		}
		if len(batch) >= 90000 {
			if err := st.Add(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.Add(batch); err != nil {
		b.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	var ranges []vocab.CellRange
	for _, p := range disk {
		ch := p.Children(9)
		lo, hi := uint64(ch[0]), uint64(ch[0])
		for _, c := range ch {
			lo, hi = min(lo, uint64(c)), max(hi, uint64(c))
		}
		ranges = append(ranges, vocab.CellRange{Lo: lo, Hi: hi})
	}
	slices.SortFunc(ranges, func(a, b vocab.CellRange) int { return cmp.Compare(a.Lo, b.Lo) })
	sums := make([]int64, minutes)
	b.ResetTimer()
	for b.Loop() {
		clear(sums)
		if err := st.SumSteps(storage.TierMinute, "count_car", ranges, base, base+minutes, 1, sums); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(len(cells))*minutes), "ns/row")
}
