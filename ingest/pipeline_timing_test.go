package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
)

// The pipeline benchmarks run one goroutine through decode → locate →
// bucket → WAL → memtable, the whole of ingest but HTTP, over bodies of
// 10,000 events of successive minutes, into a real store whose data
// directory is on tmpfs when the machine has one (so an fsync costs what a
// fast disk's would, not a shared disk's). They report wall and CPU
// nanoseconds an event (CPU of the whole process: flushes included) and
// allocations an event.

const pipelineSensors = 5000

// pipelineBucketer returns a Bucketer over pipelineSensors sensors in a grid
// over Hangzhou and a fresh store.
func pipelineBucketer(b testing.TB) *Bucketer {
	reg := geo.New(9)
	var sensors []geo.Sensor
	for i := range pipelineSensors {
		sensors = append(sensors, geo.Sensor{ID: fmt.Sprintf("cam-%04d", i), Lat: 30.1 + float64(i/100)*0.004, Lng: 120.0 + float64(i%100)*0.004})
	}
	if err := reg.PutSensors(sensors); err != nil {
		b.Fatal(err)
	}
	var stations []geo.Station
	for i := range 81 {
		stations = append(stations, geo.Station{ID: fmt.Sprintf("S%d", i), Lat: 30.2 + float64(i)*0.003, Lng: 120.1 + float64(i%9)*0.01})
	}
	if err := reg.PutStations(stations); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err = os.MkdirTemp("/dev/shm", "flowd-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	return pipelineBucketerIn(b, reg, dir)
}

// detectorBucketer returns a Bucketer over detectorSensors sensors
// scattered over about 90 × 95 km, as the bench's detector feed, and a
// fresh store.
func detectorBucketer(b testing.TB) *Bucketer {
	reg := geo.New(9)
	r := rand.New(rand.NewPCG(1, 2))
	sensors := make([]geo.Sensor, detectorSensors)
	for i := range sensors {
		sensors[i] = geo.Sensor{ID: fmt.Sprintf("det-%05d", i), Lat: 29.85 + 0.85*r.Float64(), Lng: 119.75 + 0.9*r.Float64()}
	}
	if err := reg.PutSensors(sensors); err != nil {
		b.Fatal(err)
	}
	return pipelineBucketerIn(b, reg, b.TempDir())
}

const detectorSensors = 20000

// detectorBodies renders minutes bodies of 10,000 counts, each of another
// of detectorSensors sensors than the line before it (in an order drawn
// once), a car count and speed a minute each: the bench's detector feed.
func detectorBodies(minutes int) *feed {
	start := time.Date(2019, 1, 7, 8, 0, 0, 0, time.UTC)
	f := &feed{start: start, step: 30 * time.Second} // two bodies a minute
	order := rand.New(rand.NewPCG(3, 4)).Perm(detectorSensors)
	for m := range minutes {
		for half := range 2 {
			var buf bytes.Buffer
			var stamps []int
			t := start.Add(time.Duration(m) * time.Minute).Format(time.RFC3339)
			for _, s := range order[half*10000 : (half+1)*10000] {
				stamps = append(stamps, buf.Len()+len(`{"time":"`))
				fmt.Fprintf(&buf, `{"time":"%s","sensor":"det-%05d","class":"car","count":%d,"interval":60,"speed":%d.5}`+"\n", t, s, 1+(s*7+m)%40, 20+(s+m)%50)
			}
			f.bodies = append(f.bodies, buf.Bytes())
			f.stamps = append(f.stamps, stamps)
		}
	}
	return f
}

// pipelineBucketerIn returns a Bucketer over reg and a store in dir.
func pipelineBucketerIn(b testing.TB, reg *geo.Registry, dir string) *Bucketer {
	st := flowdtest.OpenStore(b, dir)
	cards, err := LoadOrCreateKey(dir + "/secret.key")
	if err != nil {
		b.Fatal(err)
	}
	return &Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
}

// A feed is the bodies a benchmark sends, in turn. A feed of counts goes
// forward in time however long the benchmark runs, as a device's does:
// each time a body comes round again, its times (at the offsets stamps
// lists) are moved on to the request's own minute. Sent again as they
// were, they would add to minutes the store already holds — every series
// out of minute order in the memtable, every flush overlapping the last —
// which is not the work a live feed asks for.
type feed struct {
	bodies [][]byte
	stamps [][]int
	start  time.Time
	step   time.Duration // between requests; 0 for bodies sent as they are
	// minute is set when a stamp's seconds are its line's own: then only
	// its date, hour and minute ("2006-01-02T15:04") are moved on.
	minute bool
}

// body returns the body of request i.
func (f *feed) body(i int) []byte {
	j := i % len(f.bodies)
	if f.step != 0 && i >= len(f.bodies) {
		var buf [32]byte
		t := f.start.Add(time.Duration(i)*f.step).AppendFormat(buf[:0], time.RFC3339)
		body := f.bodies[j]
		if f.minute {
			t16 := [16]byte(t)
			for _, off := range f.stamps[j] {
				*(*[16]byte)(body[off:]) = t16
			}
		} else if len(t) == 20 { // a time of these years in UTC: an array's copy, not a call a line
			t20 := [20]byte(t)
			for _, off := range f.stamps[j] {
				*(*[20]byte)(body[off:]) = t20
			}
		} else {
			for _, off := range f.stamps[j] {
				copy(body[off:off+len(t)], t)
			}
		}
	}
	return f.bodies[j]
}

// countBodies renders minutes bodies of 10,000 counts: every sensor's cars
// and buses of one minute (one interval), with a speed.
func countBodies(minutes int, csv bool, interval int) *feed {
	start := time.Date(2019, 1, 7, 8, 0, 0, 0, time.UTC)
	f := &feed{start: start, step: time.Duration(interval) * time.Second}
	for m := range minutes {
		var buf bytes.Buffer
		var stamps []int
		if csv {
			buf.WriteString("time,sensor,class,count,interval,speed\n")
		}
		t := start.Add(time.Duration(m*interval) * time.Second).Format(time.RFC3339)
		for i := range 2 * pipelineSensors {
			class := [2]string{"car", "bus"}[i%2]
			sensor, count, speed := i/2, 1+(i*7+m)%40, 20+(i+m)%50
			if csv {
				stamps = append(stamps, buf.Len())
				fmt.Fprintf(&buf, "%s,cam-%04d,%s,%d,%d,%d.5\n", t, sensor, class, count, interval, speed)
			} else {
				stamps = append(stamps, buf.Len()+len(`{"time":"`))
				fmt.Fprintf(&buf, `{"time":"%s","sensor":"cam-%04d","class":"%s","count":%d,"interval":%d,"speed":%d.5}`+"\n", t, sensor, class, count, interval, speed)
			}
		}
		f.bodies = append(f.bodies, buf.Bytes())
		f.stamps = append(f.stamps, stamps)
	}
	return f
}

// swipeBodies renders bodies of 10,000 swipes at 81 stations, a minute of
// a busy city each, going forward in time as counts do: in each minute
// 5,000 cards tap in and the 5,000 that tapped in a quarter of an hour
// before (in the run's minutes, round and round) tap out, each at a
// second of the minute.
func swipeBodies(minutes int) *feed {
	start := time.Date(2019, 1, 7, 8, 0, 0, 0, time.UTC)
	f := &feed{start: start, step: time.Minute, minute: true}
	for m := range minutes {
		var buf bytes.Buffer
		var stamps []int
		for i := range 10000 {
			card, dir, station := m*5000+i/2, "in", 0
			if i%2 == 1 {
				card, dir = (m+minutes-15%minutes)%minutes*5000+i/2, "out"
				station = (card*13 + 5) % 81
			} else {
				station = (card * 7) % 81
			}
			stamps = append(stamps, buf.Len()+len(`{"time":"`))
			t := start.Add(time.Duration(m)*time.Minute + time.Duration(i*6)*time.Millisecond).Format(time.RFC3339)
			fmt.Fprintf(&buf, `{"time":"%s","card":"C%08d","dir":"%s","station":"S%d"}`+"\n", t, card, dir, station)
		}
		f.bodies = append(f.bodies, buf.Bytes())
		f.stamps = append(f.stamps, stamps)
	}
	return f
}

func benchmarkPipeline(b *testing.B, fd *feed, f Format, decode func(*Batch, io.Reader, Format) ([]LineError, error)) {
	benchmarkStages(b, pipelineBucketer(b), fd, f, decode, true)
}

// benchmarkStages runs fd's bodies through decode → locate → bucket and, when
// commit is set, on through the WAL into the memtable.
func benchmarkStages(b *testing.B, bk *Bucketer, fd *feed, f Format, decode func(*Batch, io.Reader, Format) ([]LineError, error), commit bool) {
	run := func(body []byte) {
		bt := bk.NewBatch()
		// As the handler takes an uncompressed body: checked, then read
		// in place.
		m, err := memoryBody(body, f, 1<<30, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		errs, err := decode(bt, m, f)
		if err == nil && commit {
			err = bt.Commit()
		}
		if err != nil || len(errs) > 0 || len(bt.Rejected()) > 0 {
			b.Fatal(err, errs, bt.Rejected())
		}
		bt.Release()
	}
	body := fd.body
	if !commit { // batches that are not kept: their minutes need not move on
		body = func(i int) []byte { return fd.bodies[i%len(fd.bodies)] }
	}
	run(body(0)) // metric names, pools
	events := int64(bytes.Count(fd.bodies[0], []byte{'\n'}))
	if f == CSV {
		events--
	}
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.ReadMemStats(&ms0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	n := int64(0)
	for i := 0; b.Loop(); i++ {
		run(body(i + 1))
		n += events
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "allocs/event")
}

func decodeCounts(bt *Batch, r io.Reader, f Format) ([]LineError, error) {
	var err error
	errs, derr := decodeCountsAhead(r, f, 4096, bt.warmCounts, func(line int, c *Count) {
		if err == nil {
			err = bt.AddCount(line, c)
		}
	})
	if derr != nil {
		return errs, derr
	}
	return errs, err
}

func decodeSwipes(bt *Batch, r io.Reader, f Format) ([]LineError, error) {
	var err error
	errs, derr := DecodeSwipes(r, f, 4096, func(line int, s *Swipe) {
		if err == nil {
			err = bt.AddSwipe(line, s)
		}
	})
	if derr != nil {
		return errs, derr
	}
	return errs, err
}

func BenchmarkPipelineCountsNDJSON(b *testing.B) {
	benchmarkPipeline(b, countBodies(30, false, 60), NDJSON, decodeCounts)
}

func BenchmarkPipelineCountsCSV(b *testing.B) {
	benchmarkPipeline(b, countBodies(30, true, 60), CSV, decodeCounts)
}

// BenchmarkPipelineCountsHourly is counts of one hour each (interval
// 3600), spread over the hour's 60 minutes.
func BenchmarkPipelineCountsHourly(b *testing.B) {
	benchmarkPipeline(b, countBodies(30, false, 3600), NDJSON, decodeCounts)
}

// BenchmarkPipelineCountsFiveMinute is counts of five minutes each
// (interval 300), each spread over its five minutes.
func BenchmarkPipelineCountsFiveMinute(b *testing.B) {
	benchmarkPipeline(b, countBodies(30, false, 300), NDJSON, decodeCounts)
}

// BenchmarkPipelineSwipesNDJSON runs swipes as flowd serve takes them:
// matched into trips (the open trips of the cards of the last quarter of
// an hour), destinations inferred.
func BenchmarkPipelineSwipesNDJSON(b *testing.B) {
	bk := pipelineBucketer(b)
	inf := &Inference{Registry: bk.Registry, MaxWalkKm: DefaultMaxWalkKm, Transfer: DefaultTransfer, DayStart: 3 * time.Hour, Loc: time.UTC}
	bk.Trips = NewTrips(bk.Store, 3*time.Hour, inf)
	benchmarkStages(b, bk, swipeBodies(30), NDJSON, decodeSwipes, true)
}

// The Bucket benchmarks stop before the commit: decode → locate → bucket
// into a request's batch, the share of ingest before the WAL. With
// storage's BenchmarkMemtableAdd (a batch's points into the memtable) they
// make the in-process cost of an event short of its durability.

func BenchmarkBucketCountsNDJSON(b *testing.B) {
	benchmarkStages(b, pipelineBucketer(b), countBodies(30, false, 60), NDJSON, decodeCounts, false)
}

func BenchmarkBucketCountsCSV(b *testing.B) {
	benchmarkStages(b, pipelineBucketer(b), countBodies(30, true, 60), CSV, decodeCounts, false)
}

func BenchmarkBucketCountsHourly(b *testing.B) {
	benchmarkStages(b, pipelineBucketer(b), countBodies(30, false, 3600), NDJSON, decodeCounts, false)
}

// BenchmarkPipelineDetectorsNDJSON is PipelineCountsNDJSON over the
// detector feed's lines: every line another of 20,000 sensors, so that a
// line's sensor is not the last one's and its lookup may miss the caches
// that the memtable's points fill. "plain" decodes it as DecodeCounts
// does, line by line; "ahead" as the handler does, with the sensors of 16
// lines looked up together first (see decode). Its figures are noisy; its
// CPU profile shows the lookups' share (geo's placeIndex.get and warm).
func BenchmarkPipelineDetectorsNDJSON(b *testing.B) {
	fd := detectorBodies(4)
	b.Run("plain", func(b *testing.B) {
		benchmarkStages(b, detectorBucketer(b), fd, NDJSON, func(bt *Batch, r io.Reader, f Format) ([]LineError, error) {
			var err error
			errs, derr := DecodeCounts(r, f, 4096, func(line int, c *Count) {
				if err == nil {
					err = bt.AddCount(line, c)
				}
			})
			return errs, errors.Join(derr, err)
		}, true)
	})
	b.Run("ahead", func(b *testing.B) {
		benchmarkStages(b, detectorBucketer(b), fd, NDJSON, decodeCounts, true)
	})
}
