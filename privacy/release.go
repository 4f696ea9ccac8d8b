package privacy

import (
	"fmt"
	"hash"
	"time"

	"github.com/flowd/flowd/vocab"
)

// Release is the layer's view of one answer being made: the query
// function coarsens its request through it (Span, ResAllowed), passes
// every figure through it (Count), and the API's adapter charges it
// (Charge) before the answer goes out. It is used by one goroutine.
type Release struct {
	l      *Layer
	exact  bool
	caller string
	now    int64 // unix minutes
	mac    hash.Hash

	// figs are the figures released outside the pyramid, for Charge.
	figs []figure
	// within holds, per metric, the most figures of the answer one event
	// can be in that their areas do not show (see Within).
	within map[string]int
	// cards says that the answer asked for card-derived figures; step
	// and until are the coarsest floor and the earliest release line it
	// met, for the note.
	cards       bool
	step, until int64
	cost        float64
	spent       float64
}

// Within says that one event of metric can be in n figures of this
// answer whose areas look disjoint: a trip adds to the load of every link
// of its path, each a figure of its own link's stations. Charge counts at
// least n figures of metric for one event.
func (r *Release) Within(metric string, n int) {
	if r.within == nil {
		r.within = map[string]int{}
	}
	r.within[metric] = max(r.within[metric], n)
}

// Noised reports whether figures of metric pass the layer's noise for this
// release's caller: card-derived figures for a caller below admin.
func (r *Release) Noised(metric string) bool {
	return !r.exact && vocab.PrivacyOf(metric) != vocab.Public
}

// Span coarsens a request for metric over the minutes [from, to), in
// steps of step minutes (0 when the request has no steps), to what may be
// released: from down and to up to the metric's time floor, step up to a
// multiple of it, and to back to the release line, the last bin that has
// settled; a span wholly past the line moves back to end at it. Exact
// releases and public metrics keep the request as it is.
func (r *Release) Span(metric string, from, to, step int64) (int64, int64, int64) {
	t := r.l.p.treat(metric)
	if t.class == vocab.Public {
		return from, to, step
	}
	r.cards = true
	if r.exact {
		return from, to, step
	}
	s := t.step
	if step > 0 {
		step = ceilTo(step, s)
	}
	length := ceilTo(to, s) - floorTo(from, s)
	from, to = floorTo(from, s), ceilTo(to, s)
	until := floorTo(r.now-t.settle, s)
	if to > until {
		to = until
		if from >= to {
			from = to - length
		}
	}
	r.noteSpan(s, until)
	return from, to, step
}

// Step returns step minutes rounded up to a multiple of metric's time
// floor, for lengths that are not a span from one time to another (a
// window ending now).
func (r *Release) Step(metric string, step int64) int64 {
	t := r.l.p.treat(metric)
	if r.exact || t.class == vocab.Public {
		return step
	}
	return ceilTo(step, t.step)
}

// ResAllowed reports whether figures of metric may be released at the H3
// resolution res, and the finest one that may.
func (r *Release) ResAllowed(metric string, res int) (bool, int) {
	if r.exact || vocab.PrivacyOf(metric) == vocab.Public {
		return true, 15
	}
	return res <= r.l.p.FinestRes, r.l.p.FinestRes
}

func (r *Release) noteSpan(step, until int64) {
	if r.step == 0 || step > r.step {
		r.step = step
	}
	if r.until == 0 || until < r.until {
		r.until = until
	}
}

// Count releases one figure whose exact value is exact: as it is for an
// exact release or a public metric; otherwise with the figure's noise
// added, and withheld (0, false) when the noisy value is under K units or
// the exact value is 0.
func (r *Release) Count(f Figure, exact int64) (int64, bool) {
	t := r.l.p.treat(f.Metric)
	if t.class == vocab.Public {
		return exact, true
	}
	r.cards = true
	if r.exact {
		return exact, true
	}
	f.Area.identify(&r.l.p)
	if f.Dest != nil {
		f.Dest.identify(&r.l.p)
	}
	d := r.digest(f)
	if !r.inPyramid(f, t) {
		r.figs = append(r.figs, figure{metric: f.Metric, area: f.Area, dest: f.Dest, from: f.From, to: f.To, id: leUint64(d[:8])})
	}
	if exact == 0 {
		// Nothing is withheld whatever its noise, as lists (density, top,
		// OD pairs) leave out what held nothing: otherwise a series could
		// release the noise of an empty cell that a density leaves out,
		// and the two routes together would tell an empty figure from one
		// of a few taps.
		return 0, false
	}
	v := exact + geometric(d[8:24], r.l.p.Epsilon, t.unit)
	if v < r.l.p.K*t.unit {
		return 0, false
	}
	return v, true
}

// inPyramid reports whether f is a figure of the published pyramid: one
// cell at one of the pyramid's resolutions (for a trip, both ends at the
// same one) over one bin of the metric's floor, an hour or a day, aligned
// to its length. Each event is in a fixed number of them, whoever asks.
func (r *Release) inPyramid(f Figure, t treatment) bool {
	if f.Area.level < 0 || (f.Dest != nil && f.Dest.level != f.Area.level) {
		return false
	}
	n := f.To - f.From
	return (n == t.step || n == 60 && t.step <= 60 || n == 1440) && f.From%n == 0
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := range 8 {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

// Note says how an answer's card-derived figures were released; it is
// null in answers that hold none.
type Note struct {
	// Exact is set for a caller who sees exact figures.
	Exact bool `json:"exact,omitempty"`
	// Noise names the mechanism, Epsilon its loss per figure and K the
	// threshold under which a figure is withheld (shown as 0 or left out).
	Noise   string  `json:"noise,omitempty"`
	Epsilon float64 `json:"epsilon,omitempty"`
	K       int64   `json:"k,omitempty"`
	// Step is the coarsest time floor the answer met, ReleasedUntil the
	// end of the last bin released.
	Step          string     `json:"step,omitempty"`
	ReleasedUntil *time.Time `json:"released_until,omitempty"`
	// Cost is the ε this answer took from the token's budget today, Spent
	// all the token has taken today, of Budget (0: no limit).
	Cost   float64 `json:"cost"`
	Spent  float64 `json:"spent"`
	Budget float64 `json:"budget"`
}

// Note returns the note of the answer, nil when it held no card-derived
// figure. Call it after Charge.
func (r *Release) Note() *Note {
	if !r.cards {
		return nil
	}
	if r.exact {
		return &Note{Exact: true}
	}
	p := r.l.p
	n := &Note{Noise: Mechanism, Epsilon: p.Epsilon, K: p.K,
		Cost: round3(r.cost), Spent: round3(r.spent), Budget: p.Budget}
	if r.step > 0 {
		n.Step = (time.Duration(r.step) * time.Minute).String()
		until := time.Unix(r.until*60, 0).UTC()
		n.ReleasedUntil = &until
	}
	return n
}

// Header returns the note as the value of a Flowd-Privacy header, for
// answers whose form has no room for it:
// "epsilon=0.5; k=10; step=15m0s; released-until=…; cost=0.5; spent=3; budget=10",
// or "exact".
func (n *Note) Header() string {
	if n.Exact {
		return "exact"
	}
	h := fmt.Sprintf("epsilon=%g; k=%d", n.Epsilon, n.K)
	if n.ReleasedUntil != nil {
		h += fmt.Sprintf("; step=%s; released-until=%s", n.Step, n.ReleasedUntil.Format(time.RFC3339))
	}
	return h + fmt.Sprintf("; cost=%g; spent=%g; budget=%g", n.Cost, n.Spent, n.Budget)
}

func floorTo(v, s int64) int64 {
	q := v / s
	if v%s < 0 {
		q--
	}
	return q * s
}

func ceilTo(v, s int64) int64 { return -floorTo(-v, s) }
