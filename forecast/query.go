package forecast

import (
	"errors"
	"fmt"
	"slices"

	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// ErrNotWatched is the error of a query about a series the tracker does
// not keep (or not for the caller).
var ErrNotWatched = errors.New("not watched")

// Query asks for the forecast of one series over the next Steps steps of
// Step minutes, from the minute after the last one fed.
type Query struct {
	Place Place
	ID    string // a site's id, for its occupancy
	// Cell is the base cell of the series: a station's or site's cell (or
	// 0 to find it by ID), or the cell asked about.
	Cell   uint64
	Metric string
	Step   int64 // minutes
	Steps  int
	// Released asks for what a caller below admin may see: a card-derived
	// series is forecast by its twin, from released figures only.
	Released bool
}

// Forecast is a series' forecast: one point a step, each the sum of the
// step's minutes for a counting series, the reading at the step's first
// minute for a level (occupancy).
type Forecast struct {
	Place    Place
	ID, Name string
	Cell     uint64
	Metric   string
	Level    bool
	// From is the first step's first minute; Known the last minute the
	// model learnt from (for a twin, the end of the last released bin).
	From, Known int64
	Coverage    float64
	Points      []Point
}

// Forecast answers q.
func (t *Tracker) Forecast(q Query) (Forecast, error) {
	if q.Step < 1 || q.Steps < 1 {
		panic(fmt.Sprintf("BUG: a forecast of %d steps of %d minutes", q.Steps, q.Step))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, err := t.book.find(q)
	if err != nil {
		return Forecast{}, err
	}
	m := s.model
	if q.Released && vocab.PrivacyOf(s.metric) != vocab.Public {
		if s.twin == nil {
			return Forecast{}, fmt.Errorf("%s: no forecast from released figures (flowd has no privacy layer for it): %w", s.metric, ErrNotWatched)
		}
		m = s.twin.model
	}
	f := Forecast{Place: s.place, ID: s.id, Name: s.name, Cell: s.cell, Metric: s.metric, Level: m.p.Level,
		From: t.done + 1, Coverage: m.p.Coverage, Points: make([]Point, q.Steps)}
	f.Known, _ = m.Last()
	var byMinute []Point
	if s.metric == Occupancy {
		byMinute, _ = t.book.occupancy(s, f.From, int(q.Step)*(q.Steps-1)+1)
	}
	for i := range f.Points {
		start := f.From + int64(i)*q.Step
		if byMinute != nil {
			f.Points[i] = byMinute[start-f.From]
			continue
		}
		if m.p.Level {
			f.Points[i] = m.At(start)
			continue
		}
		var sum Point
		for x := start; x < start+q.Step; x++ {
			p := m.At(x)
			sum.Expected, sum.Lo, sum.Hi = sum.Expected+p.Expected, sum.Lo+p.Lo, sum.Hi+p.Hi
		}
		f.Points[i] = sum
	}
	return f, nil
}

// find returns the series q names.
func (b *book) find(q Query) (*series, error) {
	if q.Place == PlaceSite && q.Metric == Occupancy {
		if s := b.bySite[q.ID]; s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("site %q: %w", q.ID, ErrNotWatched)
	}
	if s := b.byKey[seriesKey{q.Metric, q.Cell}]; s != nil && q.Cell != 0 {
		return s, nil
	}
	if q.Place == PlaceCell {
		return nil, fmt.Errorf("%s at cell %s: %w", q.Metric, h3.Cell(q.Cell), ErrNotWatched)
	}
	for _, s := range b.byKey {
		if q.Cell == 0 && s.place == q.Place && s.id == q.ID && s.metric == q.Metric {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s of %s %q: %w", q.Metric, q.Place, q.ID, ErrNotWatched)
}

// Anomalies returns the series flagged at the last minute fed, strongest
// first. A caller below admin (released) sees card-derived series as
// scored on released figures, the others as scored on exact minutes; an
// admin sees every series scored on exact minutes.
func (t *Tracker) Anomalies(released bool) (minute int64, list []Anomaly) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.anomalies {
		if a.Released == released || (released && vocab.PrivacyOf(a.Metric) == vocab.Public) {
			list = append(list, a)
		}
	}
	return t.done, slices.Clip(list)
}

// Margin returns the anomaly score threshold and least excess.
func (t *Tracker) Margin() (score, excess float64) { return t.opts.Margin, t.opts.MinExcess }
