package privacy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// now is the tests' clock: 2024-03-05 12:07 UTC.
var now = time.Date(2024, 3, 5, 12, 7, 0, 0, time.UTC)

func testLayer(t testing.TB, edit func(*Policy)) *Layer {
	t.Helper()
	p := DefaultPolicy(9, 3*time.Hour)
	if edit != nil {
		edit(&p)
	}
	return New(p, bytes.Repeat([]byte{7}, 32))
}

var (
	cellA = h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.10}, 9)
	cellB = h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.15}, 9)
)

func rangesOf(t testing.TB, cells ...h3.Cell) []vocab.CellRange {
	t.Helper()
	rs, err := geo.Ranges(cells, 9)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// hour is the unix minute of an hour of the tests' day, settled long ago.
func hour(h int64) int64 { return now.Add(-24*time.Hour).Truncate(24*time.Hour).Unix()/60 + h*60 }

// TestNoiseIsTwoSidedGeometric draws the noise of 200,000 figures and
// checks its law, P(x) = (1-α)/(1+α) α^|x| with α = e^-ε: the mass at 0,
// the tails, the mean and the variance.
func TestNoiseIsTwoSidedGeometric(t *testing.T) {
	l := testLayer(t, nil)
	r := l.For("t", now)
	const n = 200000
	eps := l.p.Epsilon
	alpha := math.Exp(-eps)
	counts := map[int64]int{}
	var sum, sq float64
	area := r.CellArea(cellA)
	for i := range int64(n) {
		d := r.digest(Figure{Metric: vocab.SwipesIn, Area: identified(area, l), From: i, To: i + 1})
		x := geometric(d[8:24], eps, 1)
		counts[x]++
		sum += float64(x)
		sq += float64(x * x)
	}
	p0 := (1 - alpha) / (1 + alpha)
	for _, k := range []int64{0, 1, -1, 3, -3, 6} {
		want := p0 * math.Pow(alpha, math.Abs(float64(k)))
		got := float64(counts[k]) / n
		if math.Abs(got-want) > 4*math.Sqrt(want/n)+1e-4 {
			t.Errorf("P(noise = %d) = %.4f, want %.4f", k, got, want)
		}
	}
	if mean := sum / n; math.Abs(mean) > 0.03 {
		t.Errorf("mean noise %.3f, want 0", mean)
	}
	wantVar := 2 * alpha / ((1 - alpha) * (1 - alpha))
	if v := sq / n; math.Abs(v-wantVar)/wantVar > 0.05 {
		t.Errorf("noise variance %.2f, want %.2f", v, wantVar)
	}
}

func identified(a *Area, l *Layer) *Area {
	a.identify(&l.p)
	return a
}

// TestSameFigureSameNoise: a figure asked again, or the same cells named
// another way, comes back the same; another figure, another secret, or
// another metric gets other noise.
func TestSameFigureSameNoise(t *testing.T) {
	l := testLayer(t, func(p *Policy) { p.K = 1 })
	r := l.For("t", now)
	parent := cellA.Parent(8)
	children := parent.Children(9)
	count := func(r *Release, metric string, rs []vocab.CellRange, from int64) int64 {
		v, ok := r.Count(Figure{Metric: metric, Area: r.Area(rs), From: from, To: from + 60}, 1000)
		if !ok {
			t.Fatal("1000 withheld with k = 1")
		}
		return v
	}
	base := count(r, vocab.SwipesIn, rangesOf(t, parent), hour(3))
	if again := count(l.For("u", now.Add(time.Hour)), vocab.SwipesIn, rangesOf(t, parent), hour(3)); again != base {
		t.Errorf("asked again by another caller later: %d, then %d", base, again)
	}
	if kids := count(r, vocab.SwipesIn, rangesOf(t, children...), hour(3)); kids != base {
		t.Errorf("a res-8 cell gives %d, its seven children %d", base, kids)
	}
	differ := 0
	for i := range int64(20) {
		other := New(l.p, bytes.Repeat([]byte{byte(i + 8)}, 32))
		if count(r, vocab.SwipesIn, rangesOf(t, parent), hour(4+i)) != base {
			differ++
		}
		if count(other.For("t", now), vocab.SwipesIn, rangesOf(t, parent), hour(3)) != base {
			differ++
		}
		if count(r, vocab.SwipesOut, rangesOf(t, parent), hour(4+i)) != base {
			differ++
		}
	}
	// The noise is 0 a quarter of the time; the rest must vary.
	if differ < 30 {
		t.Errorf("only %d of 60 other figures or secrets drew other noise", differ)
	}
}

// TestSpanCoarsens is the minimum granularity: time floors by class and
// the release line after bins settle.
func TestSpanCoarsens(t *testing.T) {
	l := testLayer(t, nil)
	m := now.Unix() / 60 // 12:07
	for _, tc := range []struct {
		name           string
		exact          bool
		metric         string
		from, to, step int64
		want           [3]int64
	}{
		{"public as asked", false, "count_car", m - 7, m, 1, [3]int64{m - 7, m, 1}},
		{"admin as asked", true, vocab.SwipesIn, m - 7, m, 1, [3]int64{m - 7, m, 1}},
		// 11:10..11:50 by 1m → 11:00..12:00 by 15m; the line is 11:45
		// (12:07 - 15m delay, floored to 15m).
		{"people: 15m floor, cut at the line", false, vocab.SwipesIn, m - 57, m - 17, 1, [3]int64{m - 67, m - 22, 15}},
		{"people: wholly after the line moves back", false, vocab.SwipesIn, m - 2, m + 3, 0, [3]int64{m - 37, m - 22, 0}},
		// Trips wait the trip window (3 h) more: the line is 08:00 on the
		// hour floor (12:07 - 3h15m = 08:52).
		{"trips: 1h floor, trip window", false, vocab.Trips, m - 420, m - 60, 0, [3]int64{m - 427, m - 247, 0}},
		{"distinct cards: 1h floor, no trip window", false, vocab.DistinctCards, m - 127, m - 7, 30, [3]int64{m - 127, m - 67, 60}},
	} {
		r := l.For("t", now)
		if tc.exact {
			r = l.Exact()
		}
		from, to, step := r.Span(tc.metric, tc.from, tc.to, tc.step)
		if got := [3]int64{from, to, step}; got != tc.want {
			t.Errorf("%s: from %+d to %+d step %d, want from %+d to %+d step %d (minutes from now)",
				tc.name, from-m, to-m, step, tc.want[0]-m, tc.want[1]-m, tc.want[2])
		}
	}
	r := l.For("t", now)
	if ok, finest := r.ResAllowed(vocab.SwipesIn, 10); ok || finest != 9 {
		t.Errorf("res 10 allowed (%v) or finest %d; want refused at finest 9", ok, finest)
	}
	if ok, _ := r.ResAllowed("count_car", 12); !ok {
		t.Error("a public metric refused at res 12")
	}
}

// TestKAfterNoise: a figure whose noisy value is under k is withheld; the
// rest come out with noise, and admins and public metrics exactly.
func TestKAfterNoise(t *testing.T) {
	l := testLayer(t, nil)
	r := l.For("t", now)
	withheld, shown := 0, 0
	for i := range int64(200) {
		f := Figure{Metric: vocab.SwipesIn, Area: r.CellArea(cellA), From: hour(0) + 15*i, To: hour(0) + 15*i + 15}
		if v, ok := r.Count(f, 2); ok {
			shown++
			if v < l.p.K {
				t.Fatalf("released %d under k = %d", v, l.p.K)
			}
		} else {
			withheld++
		}
		f.Metric = vocab.TripSeconds
		if v, ok := r.Count(f, 300); ok {
			t.Errorf("one 300 s trip released as %d trip seconds", v)
		}
	}
	// P(noise ≥ 8) = α^8/(1+α) ≈ 1.1 %.
	if shown > 10 {
		t.Errorf("%d of 200 figures of 2 released at k = 10", shown)
	}
	if v, ok := l.Exact().Count(Figure{Metric: vocab.SwipesIn, From: 0, To: 1}, 2); v != 2 || !ok {
		t.Errorf("admin: %d %v, want 2", v, ok)
	}
	if v, ok := r.Count(Figure{Metric: "count_car", From: 0, To: 1}, 2); v != 2 || !ok {
		t.Errorf("public: %d %v, want 2", v, ok)
	}
}

// TestChargeByOverlap: an answer costs ε times the most of its figures
// outside the pyramid one event is in; pyramid figures cost nothing.
func TestChargeByOverlap(t *testing.T) {
	l := testLayer(t, func(p *Policy) { p.Budget = 0 })
	two := rangesOf(t, cellA, cellB)
	for _, tc := range []struct {
		name string
		figs func(r *Release) []Figure
		want float64
	}{
		{"one cell, aligned hours: the pyramid", func(r *Release) []Figure {
			return []Figure{{vocab.SwipesIn, r.CellArea(cellA), nil, hour(1), hour(2)}, {vocab.SwipesIn, r.CellArea(cellA), nil, hour(0), hour(0) + 15}}
		}, 0},
		{"one cell, unaligned", func(r *Release) []Figure {
			return []Figure{{vocab.SwipesIn, r.CellArea(cellA), nil, hour(1) + 15, hour(2) + 15}}
		}, 0.5},
		{"one cell, two hours", func(r *Release) []Figure {
			return []Figure{{vocab.SwipesIn, r.CellArea(cellA), nil, hour(1), hour(3)}}
		}, 0.5},
		{"a series over two cells: disjoint points", func(r *Release) []Figure {
			a := r.Area(two)
			return []Figure{{vocab.SwipesIn, a, nil, hour(1), hour(2)}, {vocab.SwipesIn, a, nil, hour(2), hour(3)}, {vocab.SwipesIn, a, nil, hour(3), hour(4)}}
		}, 0.5},
		{"points and their total", func(r *Release) []Figure {
			a := r.Area(two)
			return []Figure{{vocab.SwipesIn, a, nil, hour(1), hour(2)}, {vocab.SwipesIn, a, nil, hour(2), hour(3)}, {vocab.SwipesIn, a, nil, hour(1), hour(3)}}
		}, 1},
		{"two metrics", func(r *Release) []Figure {
			a := r.Area(two)
			return []Figure{{vocab.SwipesIn, a, nil, hour(1), hour(2)}, {vocab.SwipesOut, a, nil, hour(1), hour(2)}}
		}, 1},
		{"overlapping areas", func(r *Release) []Figure {
			return []Figure{{vocab.SwipesIn, r.Area(two), nil, hour(1), hour(3)}, {vocab.SwipesIn, r.Area(rangesOf(t, cellB)), nil, hour(2), hour(4)}}
		}, 1},
		{"OD pairs from one origin, and unmatched taps there", func(r *Release) []Figure {
			o := r.Area(two)
			return []Figure{
				{vocab.Trips, o, r.CellArea(cellA), hour(0), hour(5)}, {vocab.Trips, o, r.CellArea(cellB), hour(0), hour(5)},
				{vocab.TripSeconds, o, r.CellArea(cellA), hour(0), hour(5)}, {vocab.TripSeconds, o, r.CellArea(cellB), hour(0), hour(5)},
				{vocab.UnmatchedIn, o, nil, hour(0), hour(5)},
			}
		}, 1.5},
		{"OD pairs into one destination from overlapping origins", func(r *Release) []Figure {
			return []Figure{{vocab.Trips, r.Area(two), r.CellArea(cellA), hour(0), hour(5)}, {vocab.Trips, r.CellArea(cellB), r.CellArea(cellA), hour(0), hour(5)}}
		}, 1},
	} {
		r := l.For(tc.name, now)
		for _, f := range tc.figs(r) {
			r.Count(f, 100)
		}
		if err := r.Charge(); err != nil {
			t.Fatal(err)
		}
		if got := r.Note().Cost; got != tc.want {
			t.Errorf("%s: cost %g, want %g", tc.name, got, tc.want)
		}
	}
}

// TestBudget: each new answer outside the pyramid is charged; the same
// answer again, through any route, is free; past the budget the answer is
// refused with when it renews; the next day renews it.
func TestBudget(t *testing.T) {
	l := testLayer(t, func(p *Policy) { p.Budget = 1 })
	two := rangesOf(t, cellA, cellB)
	ask := func(caller string, at time.Time, h int64) error {
		r := l.For(caller, at)
		r.Count(Figure{vocab.SwipesIn, r.Area(two), nil, hour(h), hour(h + 1)}, 50)
		return r.Charge()
	}
	for _, h := range []int64{0, 1, 0, 1, 0} {
		if err := ask("planner", now, h); err != nil {
			t.Fatalf("within the budget: %v", err)
		}
	}
	err := ask("planner", now, 2)
	var be *BudgetError
	if !errors.As(err, &be) || be.Spent != 1 || be.Cost != 0.5 || !be.Renews.Equal(time.Date(2024, 3, 6, 0, 0, 0, 0, time.UTC)) ||
		!strings.Contains(err.Error(), `token "planner" has spent ε 1 of its daily privacy budget of 1`) {
		t.Fatalf("past the budget: %v", err)
	}
	if err := ask("planner", now, 1); err != nil {
		t.Errorf("an answer already paid for, past the budget: %v", err)
	}
	if err := ask("other", now, 2); err != nil {
		t.Errorf("another token: %v", err)
	}
	if err := ask("planner", now.Add(12*time.Hour), 2); err != nil {
		t.Errorf("the next day: %v", err)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "privacy.key")
	a, err := LoadOrCreateSecret(path)
	if err != nil || len(a) != 32 {
		t.Fatalf("create: %d bytes, %v", len(a), err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if b, err := LoadOrCreateSecret(path); err != nil || !bytes.Equal(a, b) {
		t.Errorf("read again: %v; a different secret", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateSecret(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a secret open to others: %v", err)
	}
}

// TestTerms: the terms state the policy, name the key by an id that is
// the same for the same key and differs for another, and tell when
// figures are released.
func TestTerms(t *testing.T) {
	l := testLayer(t, nil)
	terms := l.Terms("planner", now, false)
	if terms.Epsilon != DefaultEpsilon || terms.K != DefaultK || terms.PeopleStep != "15m0s" || terms.LinkedStep != "1h0m0s" ||
		!slices.Equal(terms.PyramidRes, []int{9, 8, 7}) || terms.Exact || terms.Noise != Mechanism {
		t.Errorf("terms %+v", terms)
	}
	// now is 12:07: people's bins settle 15 minutes after they end, trips
	// a trip window (3 h) later, in hours.
	if want := time.Date(2024, 3, 5, 11, 45, 0, 0, time.UTC); !terms.PeopleUntil.Equal(want) {
		t.Errorf("people released until %v, want %v", terms.PeopleUntil, want)
	}
	if want := time.Date(2024, 3, 5, 8, 0, 0, 0, time.UTC); !terms.LinkedUntil.Equal(want) {
		t.Errorf("trips released until %v, want %v", terms.LinkedUntil, want)
	}
	other := New(l.Policy(), bytes.Repeat([]byte{8}, 32))
	if id := l.KeyID(); len(id) != 16 || id != testLayer(t, nil).KeyID() || id == other.KeyID() || strings.Contains(hex.EncodeToString(l.secret), id) {
		t.Errorf("key id %q: want 16 hex digits, the same for the same key, another for another, no part of the key", id)
	}
}
