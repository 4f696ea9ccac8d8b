package forecast

import (
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/privacy"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// Place is what a series is about.
type Place uint8

// The places a series can be about.
const (
	PlaceStation Place = iota + 1
	PlaceSite
	PlaceCell
)

func (p Place) String() string {
	switch p {
	case PlaceStation:
		return "station"
	case PlaceSite:
		return "site"
	case PlaceCell:
		return "cell"
	}
	return "place"
}

// openSlots is how many minutes a series gathers deltas for at once: the
// minutes not fed yet, from the last one fed to a minute ahead.
const openSlots = 8

// series is one watched series: its model and the minutes it is gathering.
type series struct {
	place  Place
	metric string
	id     string // the station's or site's id; the cell's hex id
	name   string
	cell   uint64
	model  *Model
	open   [openSlots]float64
	openAt [openSlots]int64
	twin   *twin // the model of released figures, for card-derived series
	since  int64 // minute first flagged as an anomaly, 0 when not flagged
}

// add gathers v into minute's sum.
func (s *series) add(minute int64, v float64) {
	i := minute % openSlots
	if s.openAt[i] != minute {
		s.openAt[i], s.open[i] = minute, 0
	}
	s.open[i] += v
}

// take returns minute's sum and forgets it.
func (s *series) take(minute int64) float64 {
	i := minute % openSlots
	if s.openAt[i] != minute {
		return 0
	}
	v := s.open[i]
	s.openAt[i], s.open[i] = 0, 0
	return v
}

// seriesKey names a series fed by ingest: a metric at a base cell.
type seriesKey struct {
	metric string
	cell   uint64
}

// book is the tracker's series and what decides which are watched.
type book struct {
	opts                 *Options
	flow, level, perCell *Params
	twinParams           *Params

	byKey  map[seriesKey]*series
	bySite map[string]*series // occupancy
	names  map[uint32]string  // watched metric ids
	cellM  map[string]bool    // the anomaly metrics
	since  int64              // first minute watched, unix minutes

	policy      *privacy.Policy
	layer       *privacy.Layer
	warmSeconds float64
}

func newBook(o *Options) *book {
	b := &book{opts: o,
		flow:    NewParams(Params{Bin: 10}),
		level:   NewParams(Params{Bin: 10, Level: true}),
		perCell: NewParams(Params{Bin: 30}),
		byKey:   map[seriesKey]*series{}, bySite: map[string]*series{},
		names: map[uint32]string{}, cellM: map[string]bool{},
		since: o.Now().Unix() / 60,
	}
	for _, m := range o.CellMetrics {
		b.cellM[m] = true
	}
	if o.Privacy != nil {
		p := o.Privacy.Policy()
		b.policy, b.layer = &p, o.Privacy
		b.twinParams = NewParams(Params{Bin: int(p.PeopleStep)})
	}
	return b
}

// refresh follows the registry and the store's metric names: every
// registered station and site has its series, and the series of places no
// longer registered go.
func (b *book) refresh(reg *geo.Registry, st *storage.Store) {
	b.refreshNames(st)
	keep := map[seriesKey]bool{}
	for _, s := range reg.Stations() {
		for _, m := range []string{vocab.SwipesIn, vocab.SwipesOut} {
			keep[b.ensure(PlaceStation, m, s.ID, s.Name, s.Cell).key()] = true
		}
	}
	sites := map[string]bool{}
	for _, s := range reg.Sites() {
		for _, m := range []string{vocab.FootfallIn, vocab.FootfallOut} {
			keep[b.ensure(PlaceSite, m, s.ID, s.Name, s.Cell).key()] = true
		}
		sites[s.ID] = true
		if b.bySite[s.ID] == nil {
			b.bySite[s.ID] = &series{place: PlaceSite, metric: Occupancy, id: s.ID, name: s.Name, cell: uint64(s.Cell), model: New(b.level)}
		}
	}
	for k, s := range b.byKey {
		if s.place != PlaceCell && !keep[k] {
			delete(b.byKey, k)
		}
	}
	for id := range b.bySite {
		if !sites[id] {
			delete(b.bySite, id)
		}
	}
}

// refreshNames learns the ids of the watched metrics stored so far.
func (b *book) refreshNames(st *storage.Store) {
	for _, name := range b.watchedNames() {
		if id, ok := st.LookupMetric(name); ok {
			b.names[id] = name
		}
	}
}

func (s *series) key() seriesKey { return seriesKey{s.metric, s.cell} }

// watchedNames are the metrics ingest's deltas are read for.
func (b *book) watchedNames() []string {
	return append([]string{vocab.SwipesIn, vocab.SwipesOut, vocab.FootfallIn, vocab.FootfallOut}, b.opts.CellMetrics...)
}

// ensure returns the series of metric at a station's or site's cell,
// creating it. Two stations in one cell share the first one's series.
func (b *book) ensure(place Place, metric, id, name string, cell h3.Cell) *series {
	k := seriesKey{metric, uint64(cell)}
	if s := b.byKey[k]; s != nil && s.place != PlaceCell {
		return s
	}
	s := &series{place: place, metric: metric, id: id, name: name, cell: uint64(cell), model: New(b.flow)}
	if b.layer != nil && vocab.PrivacyOf(metric) != vocab.Public {
		s.twin = newTwin(b.twinParams, b.policy.Delay)
	}
	b.byKey[k] = s
	return s
}

// add gathers a delta into its series, creating the series of a cell of
// an anomaly metric the first time the cell counts anything.
func (b *book) add(d storage.Delta) {
	name, ok := b.names[d.Metric]
	if !ok {
		return
	}
	k := seriesKey{name, d.Cell}
	s := b.byKey[k]
	if s == nil {
		if !b.cellM[name] {
			return
		}
		s = b.newCell(name, d.Cell, d.Minute)
	}
	s.add(d.Minute, float64(d.Value))
}

// newCell starts the series of a cell first seen at minute: the minutes
// watched before were zeros in it, which is what makes a new crowd where
// none is usual stand out.
func (b *book) newCell(metric string, cell uint64, minute int64) *series {
	s := &series{place: PlaceCell, metric: metric, id: h3.Cell(cell).String(), cell: cell, model: New(b.perCell)}
	bin := int64(b.perCell.Bin)
	s.model.AssumeZero(b.since/bin, minute/bin)
	b.byKey[seriesKey{metric, cell}] = s
	return s
}

// feed gives every series its sum of minute m, and the level series their
// readings when m is the minute they were read at.
func (b *book) feed(m int64, levels []Reading, withLevels bool, now time.Time) {
	for _, s := range b.byKey {
		v := s.take(m)
		s.model.Observe(m, v)
		if s.twin != nil {
			s.twin.add(b, s, m, v, now)
		}
	}
	if !withLevels {
		return
	}
	for _, r := range levels {
		if s := b.bySite[r.Site]; s != nil {
			s.model.Observe(m, r.Value)
		}
	}
}

// size is the number of series and their models' bytes.
func (b *book) size() (n, bytes int) {
	for _, s := range b.byKey {
		n++
		bytes += s.model.Bytes()
		if s.twin != nil {
			bytes += s.twin.bytes()
		}
	}
	for _, s := range b.bySite {
		n++
		bytes += s.model.Bytes()
	}
	return n, bytes
}
