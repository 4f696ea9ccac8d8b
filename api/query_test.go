package api

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// The query functions answer plain requests without HTTP; these tests
// call them on a store filled by hand.

// t0 is the minute the tests' buckets count from: three hours ago, off
// the hour, so that queries read the minute tier.
var t0 = func() int64 {
	m := time.Now().Unix()/60 - 180
	return m - m%60 + 7
}()

func newQueryServer(t *testing.T) *Server {
	t.Helper()
	st, err := storage.Open(filepath.Join(t.TempDir(), "store"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewServer(st, geo.New(9), "", Parts{})
}

// bucket is one stored addition: value into metric at a cell (and a sub
// key, the destination of a trip) and minute.
type bucket struct {
	metric string
	cell   h3.Cell
	sub    h3.Cell
	minute int64
	value  int64
}

func (s *Server) addBuckets(t *testing.T, bs ...bucket) {
	t.Helper()
	deltas := make([]storage.Delta, len(bs))
	for i, b := range bs {
		id, err := s.Store.MetricID(b.metric)
		if err != nil {
			t.Fatal(err)
		}
		deltas[i] = storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(b.cell), Sub: uint64(b.sub), Minute: b.minute}, Value: b.value}
	}
	if err := s.Store.Add(deltas); err != nil {
		t.Fatal(err)
	}
}

func cellAt(lat, lng float64) h3.Cell { return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, 9) }

func TestTopQuery(t *testing.T) {
	s := newQueryServer(t)
	a, b, c := cellAt(30.25, 120.10), cellAt(30.25, 120.15), cellAt(30.25, 120.20)
	s.addBuckets(t,
		bucket{metric: vocab.SwipesIn, cell: a, minute: t0, value: 5},
		bucket{metric: vocab.SwipesIn, cell: a, minute: t0 + 20, value: 4},
		bucket{metric: vocab.SwipesIn, cell: b, minute: t0 + 25, value: 9},
		bucket{metric: vocab.SwipesIn, cell: c, minute: t0 + 29, value: 7},
		bucket{metric: vocab.SwipesOut, cell: c, minute: t0 + 29, value: 100},
	)
	for _, tc := range []struct {
		name     string
		q        topQuery
		want     []string
		wantSeen int
	}{
		{"all, ties to the lower id", topQuery{metric: vocab.SwipesIn, k: 10, res: 9, ranges: vocab.Everywhere, from: t0, to: t0 + 30},
			[]string{fmt.Sprint(min(a, b), "=9"), fmt.Sprint(max(a, b), "=9"), fmt.Sprint(c, "=7")}, 3},
		{"k cuts, seen counts all", topQuery{metric: vocab.SwipesIn, k: 1, res: 9, ranges: vocab.Everywhere, from: t0, to: t0 + 30},
			[]string{fmt.Sprint(min(a, b), "=9")}, 3},
		{"window", topQuery{metric: vocab.SwipesIn, k: 10, res: 9, ranges: vocab.Everywhere, from: t0 + 21, to: t0 + 30},
			[]string{fmt.Sprint(b, "=9"), fmt.Sprint(c, "=7")}, 2},
		{"coarser res sums children", topQuery{metric: vocab.SwipesIn, k: 10, res: 3, ranges: vocab.Everywhere, from: t0, to: t0 + 30},
			[]string{fmt.Sprint(a.Parent(3), "=25")}, 1},
		{"area", topQuery{metric: vocab.SwipesIn, k: 10, res: 9, ranges: []vocab.CellRange{{Lo: uint64(c), Hi: uint64(c)}}, from: t0, to: t0 + 30},
			[]string{fmt.Sprint(c, "=7")}, 1},
		{"other metric", topQuery{metric: vocab.SwipesOut, k: 10, res: 9, ranges: vocab.Everywhere, from: t0, to: t0 + 30},
			[]string{fmt.Sprint(c, "=100")}, 1},
		{"nothing", topQuery{metric: "no_such_metric", k: 10, res: 9, ranges: vocab.Everywhere, from: t0, to: t0 + 30},
			[]string{}, 0},
	} {
		ans, err := s.top(tc.q, s.Privacy.Exact())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := []string{}
		for _, c := range ans.Cells {
			got = append(got, c.Cell+"="+fmt.Sprint(c.Value))
		}
		if !slices.Equal(got, tc.want) || ans.Seen != tc.wantSeen {
			t.Errorf("%s: %v (seen %d), want %v (seen %d)", tc.name, got, ans.Seen, tc.want, tc.wantSeen)
		}
	}
}

func TestODQuery(t *testing.T) {
	s := newQueryServer(t)
	x, y, z := cellAt(30.25, 120.10), cellAt(30.25, 120.15), cellAt(30.25, 120.20)
	trip := func(o, d h3.Cell, n, minutes int64) []bucket {
		return []bucket{
			{metric: vocab.Trips, cell: o, sub: d, minute: t0 + 1, value: n},
			{metric: vocab.TripSeconds, cell: o, sub: d, minute: t0 + 1, value: n * minutes * 60},
		}
	}
	s.addBuckets(t, slices.Concat(trip(x, y, 12, 10), trip(y, z, 7, 20), trip(z, x, 2, 5), trip(x, z, 3, 30),
		[]bucket{{metric: vocab.UnmatchedIn, cell: x, minute: t0 + 2, value: 4}})...)
	xz, err := geo.Ranges([]h3.Cell{x, z}, 9)
	if err != nil {
		t.Fatal(err)
	}
	pair := func(o, d h3.Cell, trips string) string { return fmt.Sprintf("%s>%s:%s", o, d, trips) }
	for _, tc := range []struct {
		name string
		q    odQuery
		want []string
	}{
		{"by trips", odQuery{res: 9, top: 10, from: t0, to: t0 + 60, origins: vocab.Everywhere, dests: vocab.Everywhere},
			[]string{pair(x, y, "12"), pair(y, z, "7"), pair(x, z, "3"), pair(z, x, "2")}},
		{"top", odQuery{res: 9, top: 2, from: t0, to: t0 + 60, origins: vocab.Everywhere, dests: vocab.Everywhere},
			[]string{pair(x, y, "12"), pair(y, z, "7")}},
		{"origins", odQuery{res: 9, top: 10, from: t0, to: t0 + 60, origins: xz, dests: vocab.Everywhere},
			[]string{pair(x, y, "12"), pair(x, z, "3"), pair(z, x, "2")}},
		{"destinations", odQuery{res: 9, top: 10, from: t0, to: t0 + 60, origins: vocab.Everywhere, dests: []vocab.CellRange{{Lo: uint64(z), Hi: uint64(z)}}},
			[]string{pair(y, z, "7"), pair(x, z, "3")}},
		{"outside the span", odQuery{res: 9, top: 10, from: t0 + 2, to: t0 + 60, origins: vocab.Everywhere, dests: vocab.Everywhere},
			[]string{}},
	} {
		ans, err := s.od(tc.q, s.Privacy.Exact())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := []string{}
		for _, p := range ans.Pairs {
			got = append(got, fmt.Sprintf("%s>%s:%d", p.Origin, p.Destination, p.Trips))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	ans, err := s.od(odQuery{res: 9, top: 10, from: t0, to: t0 + 60, origins: vocab.Everywhere, dests: vocab.Everywhere}, s.Privacy.Exact())
	if err != nil {
		t.Fatal(err)
	}
	if ans.Trips != 24 || ans.UnmatchedIn != 4 || ans.PairsTotal != 4 || *ans.Pairs[0].MeanMinutes != 10 {
		t.Errorf("totals: trips %d, unmatched in %d, pairs %d, mean %v; want 24, 4, 4, 10", ans.Trips, ans.UnmatchedIn, ans.PairsTotal, *ans.Pairs[0].MeanMinutes)
	}
}

// TestODPastTheMinuteRetentionReadsHours asks for trips older than the
// minute tier keeps, in a span that is not whole hours: the answer reads
// the hourly tier, over the whole hours the span touches, and says so.
func TestODPastTheMinuteRetentionReadsHours(t *testing.T) {
	s := newQueryServer(t)
	x, y := cellAt(30.25, 120.10), cellAt(30.25, 120.15)
	h := storage.TierHour.Truncate(time.Now().Add(-40*24*time.Hour).Unix() / 60)
	s.addBuckets(t,
		bucket{metric: vocab.Trips, cell: x, sub: y, minute: h + 8, value: 5},
		bucket{metric: vocab.Trips, cell: x, sub: y, minute: h + 70, value: 3},
		bucket{metric: vocab.Trips, cell: x, sub: y, minute: h + 130, value: 100}, // the hour after
	)
	if err := s.Store.Flush(); err != nil { // the minute tier keeps none of it
		t.Fatal(err)
	}
	ans, err := s.od(odQuery{res: 9, top: 10, from: h + 7, to: h + 67, origins: vocab.Everywhere, dests: vocab.Everywhere}, s.Privacy.Exact())
	if err != nil {
		t.Fatal(err)
	}
	if ans.Trips != 8 || ans.Tier != "hour" || ans.From.Unix() != h*60 || ans.To.Unix() != (h+120)*60 {
		t.Fatalf("trips %d from the %q tier over %v to %v; want 8 from the hour tier over the two whole hours", ans.Trips, ans.Tier, ans.From, ans.To)
	}
}
