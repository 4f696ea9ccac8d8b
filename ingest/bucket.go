package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/freelist"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// FootfallObserver is told of every accepted footfall event after it is
// durable; the live site tracker is one.
type FootfallObserver interface {
	ObserveFootfall(readings []vocab.SiteReading)
}

// DeltaObserver is told of every durable batch of deltas; the live map hub
// is one.
type DeltaObserver interface {
	ObserveDeltas(deltas []storage.Delta)
}

// RecentObserver is a DeltaObserver that watches only recent minutes: it
// is given the deltas of the minutes in [lo, hi] alone, so a history import
// costs it nothing.
type RecentObserver interface {
	DeltaObserver
	ObservedMinutes() (lo, hi int64)
}

// Bucketer turns decoded events into bucket deltas: it locates each event
// in an H3 cell at the base resolution, truncates its time to the minute,
// pseudonymises card ids, and sums a request's additions per bucket before
// they go to the store in one durable batch.
type Bucketer struct {
	Registry *geo.Registry
	Store    *storage.Store
	Cards    *Pseudonymizer
	// Trips matches tap-ins with tap-outs; nil leaves trips uncounted.
	Trips *Trips
	// Groups maps card categories to rider groups; nil counts no group.
	Groups *RiderGroups
	// EntitySeries keeps the own figures of a sensor, station or site
	// that shares its cell with another of its kind apart, in its
	// per-entity family, besides its cell's: each such reading then costs
	// two rows (flowd serve -entity-series).
	EntitySeries bool
	Res          int
	Deltas       []DeltaObserver
	Footfall     []FootfallObserver
	// MaxAhead is how far past the server's clock an event may be stamped,
	// for devices whose clocks run a little fast [DefaultMaxAhead]; a later
	// one is refused with a line error rather than counted in a minute
	// that has not happened.
	MaxAhead time.Duration

	ids     sync.Map // metric name -> uint32
	classes sync.Map // detector class -> classMetrics
	// perSensor holds the ids of the per-sensor families of a class,
	// made when a sensor sharing its cell first sends it.
	perSensor sync.Map // detector class -> classMetrics
}

// DefaultMaxAhead is Bucketer.MaxAhead's default: the clock skew tolerated.
const DefaultMaxAhead = 5 * time.Minute

func (b *Bucketer) maxAhead() time.Duration {
	if b.MaxAhead <= 0 {
		return DefaultMaxAhead
	}
	return b.MaxAhead
}

// classMetrics are the metric ids of one detector class.
type classMetrics struct{ count, speed uint32 }

// sameID reports whether ids a and b are equal. An id of 8 to 16 bytes
// (most sensors') is compared as its first and last eight bytes, a load
// each: warmCounts compares every line's sensor with the line before's,
// and for ids this short the runtime's compare, a call and a loop, costs
// several times that.
func sameID(a, b string) bool {
	n := len(a)
	if n != len(b) || n < 8 || n > 16 {
		return n == len(b) && a == b
	}
	x, y := unsafe.Slice(unsafe.StringData(a), n), unsafe.Slice(unsafe.StringData(b), n)
	return binary.LittleEndian.Uint64(x) == binary.LittleEndian.Uint64(y) &&
		binary.LittleEndian.Uint64(x[n-8:]) == binary.LittleEndian.Uint64(y[n-8:])
}

// classIDs returns the metric ids of a detector class without building its
// metric names on every event.
func (b *Bucketer) classIDs(class string) (classMetrics, error) {
	if v, ok := b.classes.Load(class); ok {
		return v.(classMetrics), nil
	}
	ids, err := b.Store.MetricIDs(vocab.CountPrefix+class, vocab.SpeedPrefix+class)
	if err != nil {
		return classMetrics{}, err
	}
	cm := classMetrics{ids[0], ids[1]}
	b.classes.Store(strings.Clone(class), cm)
	return cm, nil
}

// perSensorIDs returns the metric ids of a detector class's per-sensor
// families.
func (b *Bucketer) perSensorIDs(class string) (classMetrics, error) {
	if v, ok := b.perSensor.Load(class); ok {
		return v.(classMetrics), nil
	}
	ids, err := b.Store.MetricIDs(vocab.PerSensor(vocab.CountPrefix+class), vocab.PerSensor(vocab.SpeedPrefix+class))
	if err != nil {
		return classMetrics{}, err
	}
	cm := classMetrics{ids[0], ids[1]}
	b.perSensor.Store(strings.Clone(class), cm)
	return cm, nil
}

// Batch collects the deltas of one request.
type Batch struct {
	// The last sensor located and the classes met, so that a request's
	// lines of one sensor or class resolve it once.
	lastSensor []byte
	lastPlace  geo.Place
	// The places of the sensors of the counts decode holds back, looked
	// up together by warmCounts, in their order: sensorPlace takes them
	// from aheadAt on. Their ids alias the request's body.
	ahead           [aheadLines]aheadPlace
	aheadN, aheadAt int
	classes         []batchClass
	// metrics are the ids of the metrics the request added to by name.
	metrics []metricMemo

	b        *Bucketer
	sums     *storage.Batch
	deltas   []storage.Delta // for the observers
	errs     []LineError
	omitted  int // lines rejected past MaxLineErrors
	firstOm  int // the first of them
	accepted int
	// minuteCutoff and hourCutoff are the first minutes the store's tiers
	// keep, taken once a request; hourly counts the lines accepted that
	// only the hour tier keeps.
	minuteCutoff, hourCutoff int64
	hourly                   int
	// aheadLimit is the latest unix ms an event may be stamped.
	aheadLimit int64
	footfall   []vocab.SiteReading
	// sw holds the taps kept for trip matching and the matching's
	// scratch, taken at the first swipe (see freeSwipes).
	sw     *swipeScratch
	coords map[[2]float64]h3.Cell

	// refusals counts the lines rejected, by refusalOf their field.
	refusals [numRefusals]int
	// inferred counts the legs and trips whose destinations matching
	// inferred, for /metrics once the batch is durable.
	legsInferred, tripsInferred int
}

// swipeScratch is what a request of swipes grows and the next reuses: its
// taps and the trip matching's buffers, about 300 bytes a tap.
type swipeScratch struct {
	taps  []tap
	match matchScratch
}

// freeSwipes keeps the swipe scratch of up to four requests, as many as
// there were swipe requests at once (the list hands back the one put last,
// so a scratch is made only when all are in use). It is apart from
// freeBatches so that the batches of counts, most of them, do not each
// keep a swipe request's megabytes once they have served one.
var freeSwipes = freelist.New[swipeScratch](4)

// freeBatches keeps a few released batches, about as many as requests in
// flight, with their grown buffers (a swipe request's scratch goes back
// to freeSwipes).
var freeBatches = freelist.New[Batch](8)

// NewBatch returns an empty batch; call Commit, then Release.
func (b *Bucketer) NewBatch() *Batch {
	bt := freeBatches.Get()
	if bt == nil {
		bt = &Batch{coords: map[[2]float64]h3.Cell{}}
	}
	bt.b = b
	bt.sums = storage.NewBatch()
	bt.minuteCutoff = b.Store.RetentionCutoff(storage.TierMinute)
	bt.hourCutoff = b.Store.RetentionCutoff(storage.TierHour)
	bt.aheadLimit = time.Now().Add(b.maxAhead()).UnixMilli()
	return bt
}

// maxPooledDeltas bounds the delta buffer a pooled batch keeps.
const maxPooledDeltas = 1 << 16

// Release returns the batch to the pool.
func (bt *Batch) Release() {
	bt.sums.Release()
	bt.sums = nil
	bt.deltas = bt.deltas[:0]
	if cap(bt.deltas) > maxPooledDeltas {
		bt.deltas = nil
	}
	bt.errs = bt.errs[:0]
	bt.refusals = [numRefusals]int{}
	bt.omitted, bt.firstOm, bt.hourly = 0, 0, 0
	bt.legsInferred, bt.tripsInferred = 0, 0
	bt.lastSensor = bt.lastSensor[:0]
	bt.ahead, bt.aheadN, bt.aheadAt = [aheadLines]aheadPlace{}, 0, 0 // nothing of the body kept
	bt.classes = bt.classes[:0]
	// Another request may be another Bucketer's, whose store numbers its
	// metrics otherwise.
	clear(bt.metrics)
	bt.metrics = bt.metrics[:0]
	bt.footfall = bt.footfall[:0]
	if bt.sw != nil {
		bt.sw.taps = bt.sw.taps[:0]
		freeSwipes.Put(bt.sw)
		bt.sw = nil
	}
	bt.accepted = 0
	if len(bt.coords) > maxCachedCoords {
		bt.coords = map[[2]float64]h3.Cell{}
	} else {
		clear(bt.coords)
	}
	bt.b = nil
	freeBatches.Put(bt)
}

// Accepted is the number of events added to the batch.
func (bt *Batch) Accepted() int { return bt.accepted }

// HourlyOnly is the number of events accepted that only the hour tier
// keeps: older than the minute tier's retention.
func (bt *Batch) HourlyOnly() int { return bt.hourly }

// Rejected lists the lines refused by location, registry or retention
// checks: at most MaxLineErrors, then one LineError standing for the rest.
func (bt *Batch) Rejected() []LineError {
	if bt.omitted > 0 {
		return append(bt.errs, LineError{
			Line:   bt.firstOm,
			Reason: fmt.Sprintf("%d more rejected lines from here on are not listed", bt.omitted),
			More:   bt.omitted,
		})
	}
	return bt.errs
}

func (b *Bucketer) metricID(name string) (uint32, error) {
	if v, ok := b.ids.Load(name); ok {
		return v.(uint32), nil
	}
	id, err := b.Store.MetricID(name)
	if err != nil {
		return 0, err
	}
	b.ids.Store(name, id)
	return id, nil
}

func (bt *Batch) add(metric string, cell h3.Cell, ms int64, v int64) error {
	return bt.addSub(metric, uint64(cell), 0, vocab.MinuteOf(ms), v)
}

// addSub adds v to a bucket with a sub-key, keeping the maximum for max
// metrics.
func (bt *Batch) addSub(metric string, cell, sub uint64, minute, v int64) error {
	m, err := bt.metricOf(metric)
	if err != nil {
		return err
	}
	bt.addID(m.id, m.isMax, cell, sub, minute, v)
	return nil
}

// metricMemo is a metric's id and kind, looked up by name once a request.
type metricMemo struct {
	name  string
	id    uint32
	isMax bool
}

// maxMetricMemos bounds the metrics a batch remembers: a swipe adds to
// three to five (its direction, distinct cards, its group's, its
// station's, and at its trip's end the trip's), a footfall reading to two
// or four.
const maxMetricMemos = 16

// metricOf returns the id and kind of the metric named name. A request
// adds to a handful of metrics, each named by the same string every time,
// so a short list compared by name (its length first) answers most
// lookups; the first of each goes to the Bucketer's map, which every
// request shares.
func (bt *Batch) metricOf(name string) (metricMemo, error) {
	for i := range bt.metrics {
		if bt.metrics[i].name == name {
			return bt.metrics[i], nil
		}
	}
	id, err := bt.b.metricID(name)
	if err != nil {
		return metricMemo{}, err
	}
	m := metricMemo{name: name, id: id, isMax: vocab.KindOf(name) == vocab.Sketch}
	if len(bt.metrics) < maxMetricMemos {
		bt.metrics = append(bt.metrics, m)
	}
	return m, nil
}

// addID adds v to the bucket of metric id (the maximum for a max metric).
func (bt *Batch) addID(id uint32, isMax bool, cell, sub uint64, minute, v int64) {
	bt.sums.Add(id, isMax, cell, sub, minute, v)
}

// reject records a LineError; value is "" for a swipe, whose values are
// never echoed (see schema.silent).
func (bt *Batch) reject(line int, field, value, reason string) {
	bt.refusals[refusalOf(field)]++
	if len(bt.errs) >= MaxLineErrors {
		if bt.omitted == 0 {
			bt.firstOm = line
		}
		bt.omitted++
		return
	}
	bt.errs = append(bt.errs, LineError{Line: line, Field: field, Value: errorValue([]byte(value)), Reason: reason})
}

// kept checks an event's time against the clock and the store's
// retentions: an event stamped further ahead than MaxAhead is refused (a
// reading stamped tomorrow would count in today's figures), and so is one
// older than the hour tier keeps, naming the flag that sets it, rather
// than accepted and dropped at the next flush; hourly is true for one only
// the hour tier keeps. A count is judged by the start of its interval.
func (bt *Batch) kept(line int, ms int64) (ok, hourly bool) {
	if ms > bt.aheadLimit {
		bt.reject(line, "time", time.UnixMilli(ms).UTC().Format(time.RFC3339),
			fmt.Sprintf("in the future: more than %v past the server's clock (flag -max-clock-skew)", bt.b.maxAhead()))
		return false, false
	}
	m := vocab.MinuteOf(ms)
	if storage.TierHour.Truncate(m) < bt.hourCutoff {
		bt.reject(line, "time", time.UnixMilli(ms).UTC().Format(time.RFC3339),
			fmt.Sprintf("older than the hourly tier keeps (flag -retention-hour, now %v); it would be dropped", bt.b.Store.Retention(storage.TierHour)))
		return false, false
	}
	return true, m < bt.minuteCutoff
}

// accept counts an event added to the batch.
func (bt *Batch) accept(hourly bool) {
	bt.accepted++
	if hourly {
		bt.hourly++
	}
}

// maxCachedCoords bounds the coordinates a pooled batch keeps a map for.
const maxCachedCoords = 1 << 16

// cellOf locates a raw coordinate, remembering the coordinates of the
// batch: devices and bulk files repeat a few points (a stop, a gate) many
// times, and an H3 lookup costs about a microsecond.
func (bt *Batch) cellOf(lat, lng float64) (h3.Cell, error) {
	ll := [2]float64{lat, lng}
	if c, ok := bt.coords[ll]; ok {
		return c, nil
	}
	c, err := geo.CellOf(lat, lng, bt.b.Res)
	if err != nil {
		return 0, err
	}
	bt.coords[ll] = c
	return c, nil
}

// AddSwipe buckets one swipe. The card id is hashed here and never kept.
func (bt *Batch) AddSwipe(line int, s *Swipe) error {
	ok, hourly := bt.kept(line, s.Time)
	if !ok {
		return nil
	}
	var cell, key h3.Cell
	if s.Station != "" {
		p, ok := bt.b.Registry.StationPlace(s.Station)
		if !ok {
			bt.reject(line, "station", "", "unknown station; load it with PUT /api/v1/stations")
			return nil
		}
		cell, key = p.Cell, p.Key
	} else {
		c, err := bt.cellOf(s.Lat, s.Lng)
		if err != nil {
			bt.reject(line, "lat", "", err.Error())
			return nil
		}
		cell = c
	}
	card := bt.b.Cards.Card(s.Card)
	metric := vocab.SwipesOut
	if s.In {
		metric = vocab.SwipesIn
	}
	if err := bt.add(metric, cell, s.Time, 1); err != nil {
		return err
	}
	group := bt.b.Groups.of(s.Group)
	if group != nil {
		name := group.swipesOut
		if s.In {
			name = group.swipesIn
		}
		if err := bt.add(name, cell, s.Time, 1); err != nil {
			return err
		}
	}
	if key != 0 && bt.b.EntitySeries {
		// A station sharing its cell: its own taps too, under its key.
		own := vocab.SwipesOutStation
		if s.In {
			own = vocab.SwipesInStation
		}
		if err := bt.add(own, key, s.Time, 1); err != nil {
			return err
		}
	}
	idx, rank := vocab.HLLRegister(card)
	if err := bt.addSub(vocab.DistinctCards, uint64(cell), idx, vocab.MinuteOf(s.Time), rank); err != nil {
		return err
	}
	if bt.b.Trips != nil {
		if bt.sw == nil {
			if bt.sw = freeSwipes.Get(); bt.sw == nil {
				bt.sw = &swipeScratch{}
			}
		}
		tp := tap{card: card, ms: s.Time, in: s.In, cell: uint64(cell), seq: int32(len(bt.sw.taps))}
		if group != nil {
			tp.group = group.id
		}
		if s.In && s.Line != "" && bt.b.Trips.infer != nil {
			tp.line = bt.b.Trips.infer.lineID(s.Line)
		}
		if !s.In || tp.line != 0 {
			// After a key rotation a trip or leg may have opened under the
			// old key.
			tp.prevCard, _ = bt.b.Cards.Previous(s.Card)
		}
		bt.sw.taps = append(bt.sw.taps, tp)
	}
	bt.accept(hourly)
	return nil
}

// validClass reports whether a detector class can name a metric.
func validClass(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

// batchClass is a detector class met in a batch and its metric ids.
type batchClass struct {
	name []byte // as written in the request
	ids  classMetrics
}

// maxBatchClasses bounds the classes a batch remembers.
const maxBatchClasses = 16

// sensorPlace locates a sensor by id: from the places warmCounts looked
// up ahead when the next of them is id's, else by the registry,
// remembering the last one.
func (bt *Batch) sensorPlace(id string) (geo.Place, bool) {
	for bt.aheadAt < bt.aheadN {
		// A count that AddCount left before locating it leaves its
		// place untaken: passed over here.
		a := &bt.ahead[bt.aheadAt]
		if bt.aheadAt++; a.id == id {
			return a.place, a.found
		}
	}
	if len(bt.lastSensor) > 0 && string(bt.lastSensor) == id {
		return bt.lastPlace, true
	}
	p, ok := bt.b.Registry.SensorPlace(id)
	if !ok {
		return p, false
	}
	bt.lastSensor = append(bt.lastSensor[:0], id...)
	bt.lastPlace = p
	return p, true
}

// aheadPlace is the place of the sensor of a count held back for
// warmCounts.
type aheadPlace struct {
	id    string
	place geo.Place
	found bool
}

// warmCounts looks up together the sensors of counts about to be added,
// once for a run of lines naming one (see decode), for sensorPlace to
// take in their order.
func (bt *Batch) warmCounts(cs []Count) {
	cs = cs[:min(len(cs), aheadLines)]
	var ids [aheadLines]string
	var of [aheadLines]int // the id of each count in ids
	n := 0
	for i := range cs {
		if i == 0 || !sameID(cs[i].Sensor, cs[i-1].Sensor) {
			ids[n], n = cs[i].Sensor, n+1
		}
		of[i] = n - 1
	}
	var places [aheadLines]geo.Place
	var found [aheadLines]bool
	bt.b.Registry.SensorPlaces(ids[:n], places[:n], found[:n])
	for i := range cs {
		bt.ahead[i] = aheadPlace{id: cs[i].Sensor, place: places[of[i]], found: found[of[i]]}
	}
	bt.aheadN, bt.aheadAt = len(cs), 0
}

// classIDs returns the metric ids of a detector class as written in a
// request (any case); ok is false for a class that cannot name a metric.
func (bt *Batch) classIDs(class string) (classMetrics, bool, error) {
	for i := range bt.classes {
		if string(bt.classes[i].name) == class {
			return bt.classes[i].ids, true, nil
		}
	}
	lower := strings.ToLower(class)
	if !validClass(lower) {
		return classMetrics{}, false, nil
	}
	ids, err := bt.b.classIDs(lower)
	if err != nil {
		return classMetrics{}, false, err
	}
	if len(bt.classes) < maxBatchClasses {
		bt.classes = append(bt.classes, batchClass{name: []byte(class), ids: ids})
	}
	return ids, true, nil
}

// AddCount buckets one detector count, spread evenly over the minutes of
// its interval so that per-minute density stays comparable between devices
// that report every minute and every five.
func (bt *Batch) AddCount(line int, c *Count) error {
	ok, hourly := bt.kept(line, c.Time)
	if !ok {
		return nil
	}
	place, ok := bt.sensorPlace(c.Sensor)
	if !ok {
		bt.reject(line, "sensor", c.Sensor, "unknown sensor; load it with PUT /api/v1/sensors")
		return nil
	}
	ids, ok, err := bt.classIDs(c.Class)
	if errors.Is(err, storage.ErrTooManyMetrics) {
		bt.reject(line, "class", c.Class, fmt.Sprintf("a new class, and flowd keeps no more metrics (flag -max-metrics, now %d; each class takes two)", bt.b.Store.MaxMetrics()))
		return nil
	}
	if err != nil {
		return err
	}
	if !ok {
		bt.reject(line, "class", c.Class, "class must be 1-32 letters, digits or _")
		return nil
	}
	var own classMetrics
	if place.Key != 0 && bt.b.EntitySeries {
		// A sensor sharing its cell: its own counts too, under its key.
		own, err = bt.b.perSensorIDs(strings.ToLower(c.Class))
		if errors.Is(err, storage.ErrTooManyMetrics) {
			bt.reject(line, "class", c.Class, fmt.Sprintf("a sensor sharing its cell, whose own counts flowd keeps apart, and flowd keeps no more metrics (flag -max-metrics, now %d)", bt.b.Store.MaxMetrics()))
			return nil
		}
		if err != nil {
			return err
		}
	}
	// The decoder bounds the interval to a day.
	minutes := max((c.Interval+59)/60, 1)
	bt.addSpread(ids, place.Cell, vocab.MinuteOf(c.Time), minutes, c)
	if place.Key != 0 && bt.b.EntitySeries {
		bt.addSpread(own, place.Key, vocab.MinuteOf(c.Time), minutes, c)
	}
	bt.accept(hourly)
	return nil
}

// addSpread adds a count spread evenly over its minutes, from first: the
// quotient to each, one more to each of the first remainder minutes, and
// to each minute's speed sum its count times the speed, rounded. Each run
// of minutes within one hour that get the same count is one row of the
// batch (see storage.SpreadPiece and Batch.AddRunPairRecent), the run's
// count and speed sums: an hourly reading costs one or two rows rather
// than sixty, and since every run is even, readings that add up in one
// bucket still spread exactly.
func (bt *Batch) addSpread(ids classMetrics, cell h3.Cell, first, minutes int64, c *Count) {
	if minutes == 1 {
		// Most readings: one bucket each, as the loop below would add it,
		// in series found among the batch's recent ones or new: a
		// request's readings are mostly of keys it has not met.
		if c.Count > 0 {
			if sv := vocab.SpeedSum(c.Speed, c.Count); c.HasSpeed && sv > 0 {
				bt.sums.AddPairRecent(ids.count, ids.speed, uint64(cell), 0, first, c.Count, sv)
			} else {
				bt.sums.AddRecent(ids.count, uint64(cell), 0, first, c.Count)
			}
		}
		return
	}
	per, rest := c.Count/minutes, c.Count%minutes
	for i := int64(0); i < minutes; {
		n := storage.SpreadPiece(first+i, first+minutes)
		if i < rest {
			n = min(n, rest-i) // the minutes with one more
		}
		v := per
		if i < rest {
			v++
		}
		if v > 0 {
			// A piece is a row of the batch, as a 1-minute reading is:
			// its count and speed sums together.
			sv := vocab.SpeedSum(c.Speed, v)
			if !c.HasSpeed || sv < 0 {
				sv = 0
			}
			if n == 1 {
				bt.sums.AddPairRecent(ids.count, ids.speed, uint64(cell), 0, first+i, v, sv)
			} else {
				bt.sums.AddRunPairRecent(ids.count, ids.speed, uint64(cell), first+i, n, v*n, sv*n)
			}
		}
		i += n
	}
}

// AddFootfall buckets one scenic-site reading at the site's cell.
func (bt *Batch) AddFootfall(line int, ff *Footfall) error {
	ok, hourly := bt.kept(line, ff.Time)
	if !ok {
		return nil
	}
	site, ok := bt.b.Registry.Site(ff.Site)
	if !ok {
		bt.reject(line, "site", ff.Site, "unknown site; load it with PUT /api/v1/sites")
		return nil
	}
	if ff.In > 0 {
		if err := bt.add(vocab.FootfallIn, site.Cell, ff.Time, ff.In); err != nil {
			return err
		}
	}
	if ff.Out > 0 {
		if err := bt.add(vocab.FootfallOut, site.Cell, ff.Time, ff.Out); err != nil {
			return err
		}
	}
	if p, _ := bt.b.Registry.SitePlace(ff.Site); p.Key != 0 && bt.b.EntitySeries {
		// A site whose centroid shares its cell: its own footfall too.
		for _, m := range [...]struct {
			name string
			v    int64
		}{{vocab.FootfallInSite, ff.In}, {vocab.FootfallOutSite, ff.Out}} {
			if m.v > 0 {
				if err := bt.add(m.name, p.Key, ff.Time, m.v); err != nil {
					return err
				}
			}
		}
	}
	if len(bt.b.Footfall) > 0 {
		bt.footfall = append(bt.footfall, vocab.SiteReading{
			Time: ff.Time, Site: site.ID, In: ff.In, Out: ff.Out,
			Occupancy: ff.Occupancy, HasOccupancy: ff.HasOccupancy,
		})
	}
	bt.accept(hourly)
	return nil
}

// Commit makes the batch durable in one store write and then tells the
// observers. Nothing is observed unless it is durable. Trip matching runs
// under the matcher's lock up to the hand-over to the WAL writer, so trip
// operations reach the log in the order they were decided.
func (bt *Batch) Commit() error {
	tr := bt.b.Trips
	matching := tr != nil && bt.sw != nil && len(bt.sw.taps) > 0
	var ops []storage.TripOp
	var undos []undo
	var err error
	if matching {
		tr.mu.Lock()
		ops, undos = tr.match(bt.sw.taps, &bt.sw.match, bt.b.Groups, func(metric string, cell, sub uint64, minute, v int64) {
			switch metric {
			case vocab.LegsInferred:
				bt.legsInferred++
			case vocab.TripsInferred:
				bt.tripsInferred++
			}
			if err == nil {
				err = bt.addSub(metric, cell, sub, minute, v)
			}
		})
	}
	var p *storage.Pending
	if err == nil && (bt.sums.Len() > 0 || len(ops) > 0) {
		p, err = bt.b.Store.Submit(bt.sums, ops)
	}
	if matching {
		tr.mu.Unlock()
	}
	if err == nil && p != nil {
		err = p.Wait()
	}
	if err != nil {
		if matching {
			tr.revert(undos, ops)
		}
		return err
	}
	for _, o := range bt.b.Deltas {
		if r, ok := o.(RecentObserver); ok {
			lo, hi := r.ObservedMinutes()
			bt.deltas = bt.sums.AppendDeltasIn(bt.deltas[:0], lo, hi)
		} else {
			bt.deltas = bt.sums.AppendDeltas(bt.deltas[:0])
		}
		if len(bt.deltas) > 0 {
			o.ObserveDeltas(bt.deltas)
		}
	}
	for _, o := range bt.b.Footfall {
		o.ObserveFootfall(bt.footfall)
	}
	return nil
}
