// Package privacy is the layer every figure derived from card data passes
// before anyone but an admin sees it, in every route and format. A figure
// is one number an answer releases: a metric summed over an area and a
// span of minutes (and for a trip, a destination). The layer
//
//   - coarsens the request to the metric's minimum granularity (a time
//     floor, a finest H3 resolution) and releases only bins that have
//     settled, so that a released figure does not change under the same
//     noise afterwards;
//   - adds noise to each figure that is the same every time the figure is
//     asked (it is drawn from a keyed hash of the figure's identity), so
//     asking again returns the same number and averaging gains nothing;
//   - withholds a figure whose noisy value is under K people;
//   - charges each answer's privacy loss to the caller's daily budget,
//     except for figures of the published pyramid (one cell, one aligned
//     bin), whose loss is paid once for everyone.
//
// Totals are the caller's to compute from released parts, which the query
// functions in package api do. How a metric is treated is declared here,
// once, from its privacy class in package vocab; the guarantee and its
// parameters are written in docs/privacy.md.
package privacy

import (
	"fmt"
	"time"

	"github.com/flowd/flowd/vocab"
)

// Policy holds the layer's parameters. docs/privacy.md says what each one
// buys and costs.
type Policy struct {
	// Epsilon is the privacy loss, for one event (a tap, a trip), of one
	// released figure that event is in: the figure's noise is two-sided
	// geometric with scale unit/Epsilon.
	Epsilon float64
	// K withholds a figure whose noisy value is under K units (K people,
	// or for trip_seconds, K trips of the longest length).
	K int64
	// PeopleStep and LinkedStep are the finest time bins, in minutes, that
	// figures of People and Linked metrics are released in.
	PeopleStep, LinkedStep int64
	// FinestRes is the finest H3 resolution card-derived figures are
	// released at.
	FinestRes int
	// Delay is how many minutes after a bin ends it is released, so that
	// the taps gates post late have arrived.
	Delay int64
	// TripWindow is the trip matcher's window in minutes: trips and
	// unmatched taps of a bin are known that much later, and one trip adds
	// at most that much time to trip_seconds.
	TripWindow int64
	// InferWindow is, when the matcher infers destinations, how many
	// minutes after a tap-in its leg's destination, its chained trip and
	// its being unmatched may be written: up to the end of the service
	// day. 0 when destinations are not inferred.
	InferWindow int64
	// Budget is the ε one token may spend a day (UTC) on figures outside
	// the pyramid; 0 lifts the limit.
	Budget float64
	// BaseRes is the store's base resolution.
	BaseRes int
}

// The defaults of flowd serve's -privacy-* flags.
const (
	DefaultEpsilon    = 0.5
	DefaultK          = 10
	DefaultPeopleStep = 15 * time.Minute
	DefaultLinkedStep = time.Hour
	DefaultFinestRes  = 9
	DefaultDelay      = 15 * time.Minute
	DefaultBudget     = 10
)

// PyramidLevels is how many resolutions, FinestRes and the coarser ones
// next to it, hold the published pyramid's cells.
const PyramidLevels = 3

// DefaultPolicy returns the default parameters for a store at baseRes
// whose trips are matched within tripWindow.
func DefaultPolicy(baseRes int, tripWindow time.Duration) Policy {
	return Policy{
		Epsilon: DefaultEpsilon, K: DefaultK,
		PeopleStep: minutes(DefaultPeopleStep), LinkedStep: minutes(DefaultLinkedStep),
		FinestRes: DefaultFinestRes, Delay: minutes(DefaultDelay),
		TripWindow: minutes(tripWindow), Budget: DefaultBudget, BaseRes: baseRes,
	}
}

func minutes(d time.Duration) int64 { return int64(d / time.Minute) }

// Check reports the first parameter out of its range.
func (p Policy) Check() error {
	switch {
	case !(p.Epsilon > 0):
		return fmt.Errorf("privacy: epsilon %g: want more than 0", p.Epsilon)
	case p.K < 1:
		return fmt.Errorf("privacy: k %d: want 1 or more", p.K)
	case p.PeopleStep < 1 || p.LinkedStep < 1:
		return fmt.Errorf("privacy: time floors %dm and %dm: want 1m or more", p.PeopleStep, p.LinkedStep)
	case 1440%p.PeopleStep != 0 || 1440%p.LinkedStep != 0:
		return fmt.Errorf("privacy: time floors %dm and %dm: want a divisor of a day, such as 15m or 1h", p.PeopleStep, p.LinkedStep)
	case p.FinestRes < 0 || p.FinestRes > 15:
		return fmt.Errorf("privacy: finest resolution %d: want 0 to 15", p.FinestRes)
	case p.Delay < 0 || p.TripWindow < 0 || p.InferWindow < 0 || p.Budget < 0:
		return fmt.Errorf("privacy: delay, trip window and budget must not be negative")
	}
	return nil
}

// treatment is how the layer handles the figures of one metric, by the
// metric's privacy class.
type treatment struct {
	class vocab.Privacy
	// unit is the most one event adds to one figure: the noise's
	// sensitivity, and K's unit.
	unit int64
	// step is the time floor in minutes; settle how many minutes after a
	// bin ends it may be released.
	step, settle int64
}

// treat returns how the figures of metric are released to a caller who is
// not an admin.
func (p *Policy) treat(metric string) treatment {
	t := treatment{class: vocab.PrivacyOf(metric), unit: 1, step: 1}
	switch t.class {
	case vocab.Public:
		return t
	case vocab.People:
		t.step = p.PeopleStep
	case vocab.Linked:
		t.step = p.LinkedStep
	}
	t.settle = p.Delay
	metric = vocab.BaseMetric(metric)
	switch metric {
	case vocab.Trips, vocab.TripSeconds, vocab.UnmatchedOut:
		// The matcher writes these when a trip closes or its window
		// expires, up to a window after the tap-in's minute.
		t.settle += p.TripWindow
	case vocab.UnmatchedIn, vocab.LegsInferred, vocab.TripsInferred:
		// Those of a leg of a line, when destinations are inferred,
		// wait for the card's next tap-in or the service day's end.
		t.settle += max(p.TripWindow, p.InferWindow)
	}
	if metric == vocab.TripSeconds {
		t.unit = max(1, p.TripWindow*60)
	}
	return t
}

// OffLive reports whether the live feed must not carry metric to a
// caller; exact says the caller may see exact figures about people (an
// admin). A Linked metric, whose frames could follow one journey from
// second to second, is never on it; a People metric (swipes, unmatched
// taps) only for exact callers: its frames are exact per cell and second,
// below the layer's floors, so other callers get it from the query
// routes, released through the layer.
func OffLive(metric string, exact bool) bool {
	switch vocab.PrivacyOf(metric) {
	case vocab.Linked:
		return true
	case vocab.People:
		return !exact
	}
	return false
}

// ExactKey names the request user value (a bool) by which the API tells
// the live feed that its caller may see exact figures about people; a
// request without it is treated as not entitled.
const ExactKey = "flowd.exact"
