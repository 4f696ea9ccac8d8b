package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// blockEvents is the granularity at which a day's events are cut: every
// batch size used is a multiple of it, so a batch is a run of blocks sent
// without copying.
const blockEvents = 1000

// Block is blockEvents NDJSON lines of one kind (fewer at the end).
type Block struct {
	Events int
	Body   []byte
}

// SeriesKey is one peer series: a flowd metric at one base cell.
type SeriesKey struct {
	Metric string
	Cell   h3.Cell
}

// Sample is one pre-bucketed value: what flowd stores for a (metric, cell,
// minute) bucket, and what the peer is sent.
type Sample struct {
	Series uint32 // index into Day.Series
	Minute int32  // minutes since Day.Start
	Value  int64
}

// Day is a stretch of the synthetic city generated once and kept in
// memory: the events as NDJSON blocks per kind (registry-located), the
// swipes again with raw lat/lng instead of a station id, and the buckets
// they make, which the peer ingests as samples.
type Day struct {
	City     *city.City
	Registry *geo.Registry // the city's registries as flowd resolves them
	Res      int
	Start    time.Time
	Minutes  int

	Blocks       [len(city.Kinds)][]Block // by kind, in city.Kinds order
	RawSwipes    []Block                  // swipes located by lat/lng
	Series       []SeriesKey
	Samples      []Sample // in minute order
	EventsByKind [len(city.Kinds)]int64
	GenTime      time.Duration
}

// Events is the number of events of all kinds.
func (d *Day) Events() int64 {
	var n int64
	for _, v := range d.EventsByKind {
		n += v
	}
	return n
}

// minuteOut is what one worker makes of one simulated minute.
type minuteOut struct {
	lines   [len(city.Kinds)][]byte
	ends    [len(city.Kinds)][]int32 // end offset of each line
	raw     []byte
	rawEnds []int32
	buckets map[SeriesKey]int64
}

// GenerateDay generates minutes simulated minutes of c from start, on all
// cores, locating events with the city's registries at base resolution res.
func GenerateDay(c *city.City, start time.Time, minutes, res int) (*Day, error) {
	t0 := time.Now()
	reg, err := cityRegistry(c, res)
	if err != nil {
		return nil, err
	}
	d := &Day{City: c, Registry: reg, Res: res, Start: start, Minutes: minutes}
	// Workers render minutes ahead of the assembler by at most inFlight,
	// so that a day is held once (as blocks), not twice.
	const inFlight = 32
	ready := make([]chan *minuteOut, minutes)
	for m := range ready {
		ready[m] = make(chan *minuteOut, 1)
	}
	tokens := make(chan struct{}, inFlight)
	next := make(chan int)
	var mu sync.Mutex
	var firstErr error
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for m := range next {
				o, err := d.minute(start.Add(time.Duration(m) * time.Minute))
				if err != nil {
					mu.Lock()
					firstErr = firstError(firstErr, err)
					mu.Unlock()
				}
				ready[m] <- o
			}
		}()
	}
	go func() {
		for m := range minutes {
			tokens <- struct{}{}
			next <- m
		}
		close(next)
	}()
	var cut [len(city.Kinds)]blockCutter
	var rawCut blockCutter
	ids := map[SeriesKey]uint32{}
	var keys []SeriesKey
	for m := range minutes {
		o := <-ready[m]
		<-tokens
		for k := range city.Kinds {
			cut[k].add(o.lines[k], o.ends[k])
			d.EventsByKind[k] += int64(len(o.ends[k]))
		}
		rawCut.add(o.raw, o.rawEnds)
		keys = keys[:0]
		for k := range o.buckets {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b SeriesKey) int {
			return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Cell, b.Cell))
		})
		for _, k := range keys {
			id, ok := ids[k]
			if !ok {
				id = uint32(len(d.Series))
				ids[k] = id
				d.Series = append(d.Series, k)
			}
			d.Samples = append(d.Samples, Sample{Series: id, Minute: int32(m), Value: o.buckets[k]})
		}
	}
	mu.Lock()
	err = firstErr
	mu.Unlock()
	if err != nil {
		return nil, err
	}
	for k := range city.Kinds {
		d.Blocks[k] = cut[k].finish()
	}
	d.RawSwipes = rawCut.finish()
	d.GenTime = time.Since(t0)
	return d, nil
}

// firstError keeps the first of a run of errors.
func firstError(kept, err error) error {
	if kept != nil {
		return kept
	}
	return err
}

// cityRegistry loads the city's registry files the way flowd does.
func cityRegistry(c *city.City, res int) (*geo.Registry, error) {
	reg := geo.New(res)
	st, err := geo.ReadStations("stations.csv", bytes.NewReader(c.StationsCSV()))
	if err != nil {
		return nil, err
	}
	if err := reg.PutStations(st); err != nil {
		return nil, err
	}
	se, err := geo.ReadSensors("sensors.csv", bytes.NewReader(c.SensorsCSV()))
	if err != nil {
		return nil, err
	}
	if err := reg.PutSensors(se); err != nil {
		return nil, err
	}
	si, err := geo.ReadSitesGeoJSON(bytes.NewReader(c.SitesGeoJSON()))
	if err != nil {
		return nil, err
	}
	if err := reg.PutSites(si); err != nil {
		return nil, err
	}
	return reg, nil
}

// minute renders one simulated minute and buckets it the way flowd's
// ingest does (see eventValues).
func (d *Day) minute(t time.Time) (*minuteOut, error) {
	o := &minuteOut{buckets: map[SeriesKey]int64{}}
	var err error
	d.City.Minute(t, func(e *city.Event) {
		k := e.Kind - city.KindSwipe
		o.lines[k] = city.AppendNDJSON(o.lines[k], e)
		o.ends[k] = append(o.ends[k], int32(len(o.lines[k])))
		err = firstError(err, d.eventValues(e, func(metric string, cell h3.Cell, v int64) {
			o.buckets[SeriesKey{metric, cell}] += v
		}))
		if st, ok := d.Registry.Station(e.ID); ok && e.Kind == city.KindSwipe {
			o.raw = appendRawSwipe(o.raw, e, st.Lat, st.Lng)
			o.rawEnds = append(o.rawEnds, int32(len(o.raw)))
		}
	})
	return o, err
}

// eventValues calls add with each value an event adds to a bucket, the
// way flowd's ingest does (see ingest.Bucketer): a swipe counts 1 at its
// station's cell, a count adds count_<class> and speed_<class> =
// round(km/h × count) at its sensor's cell, footfall adds entries and
// exits at its site's cell.
func (d *Day) eventValues(e *city.Event, add func(metric string, cell h3.Cell, v int64)) error {
	switch e.Kind {
	case city.KindSwipe:
		st, ok := d.Registry.Station(e.ID)
		if !ok {
			return fmt.Errorf("swipe at unknown station %q", e.ID)
		}
		name := "swipes_out"
		if e.Dir == city.DirIn {
			name = "swipes_in"
		}
		add(name, st.Cell, 1)
	case city.KindCount:
		sn, ok := d.Registry.Sensor(e.ID)
		if !ok {
			return fmt.Errorf("count of unknown sensor %q", e.ID)
		}
		if e.Interval != 60 {
			return fmt.Errorf("count over %d s; the bench buckets whole minutes only", e.Interval)
		}
		class := e.Class.String()
		add("count_"+class, sn.Cell, int64(e.Count))
		if e.Speed > 0 {
			// The NDJSON carries km/h with one decimal.
			kmh := float64(int(e.Speed*10+0.5)) / 10
			add("speed_"+class, sn.Cell, vocab.SpeedSum(kmh, int64(e.Count)))
		}
	case city.KindFootfall:
		si, ok := d.Registry.Site(e.ID)
		if !ok {
			return fmt.Errorf("footfall at unknown site %q", e.ID)
		}
		if e.In > 0 {
			add("footfall_in", si.Cell, int64(e.In))
		}
		if e.Out > 0 {
			add("footfall_out", si.Cell, int64(e.Out))
		}
	}
	return nil
}

// appendRawSwipe writes a swipe located by coordinates instead of station.
func appendRawSwipe(dst []byte, e *city.Event, lat, lng float64) []byte {
	dst = append(dst, `{"time":"`...)
	dst = time.Unix(e.Time, 0).In(city.Hangzhou).AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","card":"`...)
	dst, _ = e.Card.AppendText(dst)
	dst = append(dst, `","dir":"`...)
	dst = append(dst, e.Dir.String()...)
	dst = append(dst, `","lat":`...)
	dst = strconv.AppendFloat(dst, lat, 'f', -1, 64)
	dst = append(dst, `,"lng":`...)
	dst = strconv.AppendFloat(dst, lng, 'f', -1, 64)
	dst = append(dst, `,"line":"`...)
	dst = append(dst, e.Line...)
	return append(dst, "\"}\n"...)
}

// blockCutter cuts a stream of lines into Blocks of blockEvents lines.
type blockCutter struct {
	blocks []Block
	cur    Block
}

func (b *blockCutter) add(lines []byte, ends []int32) {
	from := int32(0)
	for _, end := range ends {
		if b.cur.Body == nil {
			b.cur.Body = make([]byte, 0, 150*blockEvents)
		}
		b.cur.Body = append(b.cur.Body, lines[from:end]...)
		b.cur.Events++
		from = end
		if b.cur.Events == blockEvents {
			b.blocks = append(b.blocks, b.cur)
			b.cur = Block{}
		}
	}
}

func (b *blockCutter) finish() []Block {
	if b.cur.Events > 0 {
		b.blocks = append(b.blocks, b.cur)
		b.cur = Block{}
	}
	return b.blocks
}
