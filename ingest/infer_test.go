package ingest_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// startInferring serves swipe ingest with trip matching and destination
// inference (UTC service days from 03:00) over stations.
func startInferring(t *testing.T, stations []geo.Station) *flowdtest.Server {
	t.Helper()
	dir := t.TempDir()
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if len(stations) > 0 {
			if err := reg.PutStations(stations); err != nil {
				t.Fatal(err)
			}
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		inf := &ingest.Inference{Registry: reg, Loc: time.UTC}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, inf)}
		return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
	})
	return fs.Serve()
}

// gridTap is one generated tap-in and what the test knows of it.
type gridTap struct {
	card     int
	at       time.Time
	station  geo.Station
	dest     h3.Cell // where the rider truly alighted
	hasNext  bool    // the card taps in again that day
	lastLeg  bool
	tripDest h3.Cell // for a trip's first leg: where the trip truly ends
}

// gridCity is four east-west lines H0..H3 and four north-south lines
// V0..V3, with stops about 550 m apart and a stop of both lines where
// they cross.
func gridCity() (stations []geo.Station, h, v [4][]geo.Station) {
	const lat0, lng0 = 30.25, 120.15
	for i := range 4 {
		for k := range 21 {
			st := geo.Station{ID: fmt.Sprintf("h%d-%d", i, k), Name: fmt.Sprintf("H%d stop %d", i, k), Line: fmt.Sprintf("H%d", i), Lat: lat0 + 0.02*float64(i), Lng: lng0 - 0.06 + 0.006*float64(k)}
			h[i] = append(h[i], st)
		}
	}
	for j := range 4 {
		for m := range 17 {
			st := geo.Station{ID: fmt.Sprintf("v%d-%d", j, m), Name: fmt.Sprintf("V%d stop %d", j, m), Line: fmt.Sprintf("V%d", j), Lat: lat0 - 0.01 + 0.005*float64(m), Lng: lng0 - 0.06 + 0.006*float64(3+5*j)}
			v[j] = append(v[j], st)
		}
	}
	for i := range 4 {
		stations = append(stations, h[i]...)
		stations = append(stations, v[i]...)
	}
	return stations, h, v
}

// gridDay generates a day of tap-ins on the grid city for n cards: most
// change lines once each way between home and work, some ride one line,
// some tap once, and some come home from somewhere the test does not see
// (a taxi to a far line). Every leg's boarding cell and minute is unique,
// so that a stored leg names its boarding.
func gridDay(rng *rand.Rand, day time.Time, n int, cell func(geo.Station) h3.Cell) []gridTap {
	_, h, v := gridCity()
	var taps []gridTap
	used := map[[2]int64]bool{}
	at := func(st geo.Station, t time.Time) time.Time {
		for used[[2]int64{int64(cell(st)), t.Unix() / 60}] {
			t = t.Add(time.Minute)
		}
		used[[2]int64{int64(cell(st)), t.Unix() / 60}] = true
		return t
	}
	minutes := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo)) * time.Minute }
	for c := range n {
		i, j := rng.IntN(4), rng.IntN(4)
		cross := h[i][3+5*j] // H_i meets V_j here
		crossV := v[j][2+4*i]
		home := h[i][pick(rng, 21, 3+5*j)]
		work := v[j][pick(rng, 17, 2+4*i)]
		morning := day.Add(6*time.Hour + 30*time.Minute + minutes(0, 150))
		evening := day.Add(16*time.Hour + 30*time.Minute + minutes(0, 180))
		switch r := rng.Float64(); {
		case r < 0.70: // home -H_i- cross -V_j- work, and back
			t1 := at(home, morning)
			t2 := at(crossV, t1.Add(minutes(15, 45)))
			t3 := at(work, evening)
			t4 := at(cross, t3.Add(minutes(15, 45)))
			taps = append(taps,
				gridTap{card: c, at: t1, station: home, dest: cell(cross), hasNext: true, tripDest: cell(work)},
				gridTap{card: c, at: t2, station: crossV, dest: cell(work), hasNext: true},
				gridTap{card: c, at: t3, station: work, dest: cell(crossV), hasNext: true, tripDest: cell(home)},
				gridTap{card: c, at: t4, station: cross, dest: cell(home), lastLeg: true})
		case r < 0.85: // home -H_i- work on the same line, and back
			work := h[i][pick(rng, 21, slices.Index(h[i], home))]
			t1 := at(home, morning)
			t2 := at(work, evening)
			taps = append(taps,
				gridTap{card: c, at: t1, station: home, dest: cell(work), hasNext: true, tripDest: cell(work)},
				gridTap{card: c, at: t2, station: work, dest: cell(home), lastLeg: true, tripDest: cell(home)})
		case r < 0.95: // one tap: nothing to infer from
			taps = append(taps, gridTap{card: c, at: at(home, morning), station: home, lastLeg: true})
		default: // to work as most do, home from a far line's stop by an unseen taxi first
			far := h[(i+2)%4][pick(rng, 21, -1)]
			t1 := at(home, morning)
			t2 := at(crossV, t1.Add(minutes(15, 45)))
			t3 := at(far, evening)
			taps = append(taps,
				gridTap{card: c, at: t1, station: home, dest: cell(cross), hasNext: true, tripDest: cell(work)},
				gridTap{card: c, at: t2, station: crossV, dest: cell(work), hasNext: true},
				gridTap{card: c, at: t3, station: far, dest: 0, lastLeg: true})
		}
	}
	slices.SortStableFunc(taps, func(a, b gridTap) int { return a.at.Compare(b.at) })
	return taps
}

// pick draws an index below n other than not.
func pick(rng *rand.Rand, n, not int) int {
	for {
		if k := rng.IntN(n); k != not {
			return k
		}
	}
}

// postSwipeLines posts NDJSON swipe lines in requests of at most 500.
func postSwipeLines(t *testing.T, fs *flowdtest.Server, lines []string) {
	t.Helper()
	for len(lines) > 0 {
		n := min(500, len(lines))
		var body bytes.Buffer
		for _, l := range lines[:n] {
			body.WriteString(l)
			body.WriteByte('\n')
		}
		resp, err := http.Post(fs.URL+"/api/v1/ingest/swipes", "application/x-ndjson", &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ingest: status %d", resp.StatusCode)
		}
		lines = lines[n:]
	}
}

// scanLinked returns the rows of a metric whose sub-key is a cell, keyed
// by (cell, minute), each with its sub-key and value.
func scanLinked(t *testing.T, st *storage.Store, metric string, from, to int64) map[[2]int64]map[uint64]int64 {
	t.Helper()
	rows := map[[2]int64]map[uint64]int64{}
	err := st.ScanSub(storage.TierMinute, metric, vocab.Everywhere, from, to, func(cell, sub uint64, minute, v int64) {
		k := [2]int64{int64(cell), minute}
		if rows[k] == nil {
			rows[k] = map[uint64]int64{}
		}
		rows[k][sub] += v
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// A generated day of tap-ins only, whose true destinations are known: a
// leg's destination is inferred for at least 90 % of the boardings the
// card follows with another tap-in that day, and at least 90 % of those
// are right; the day's last legs go home, and legs within the transfer
// window chain into trips from home to work and back.
func TestInferredDestinationsOfTapInOnlyDays(t *testing.T) {
	stations, _, _ := gridCity()
	fs := startInferring(t, stations)
	cell := func(st geo.Station) h3.Cell {
		c, _ := fs.Registry.StationCell(st.ID)
		return c
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	taps := gridDay(rand.New(rand.NewPCG(17, 1)), day, 600, cell)
	var lines []string
	for _, tp := range taps {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"card":"card-%d","dir":"in","station":%q,"line":%q}`, tp.at.Format(time.RFC3339), tp.card, tp.station.ID, tp.station.Line))
	}
	// A tap the next service day ends this one: its last legs.
	lines = append(lines, fmt.Sprintf(`{"time":%q,"card":"late","dir":"in","station":"h0-0","line":"H0"}`, day.Add(28*time.Hour).Format(time.RFC3339)))
	postSwipeLines(t, fs, lines)

	from, to := day.Unix()/60, day.Add(48*time.Hour).Unix()/60
	legs := scanLinked(t, fs.Store, vocab.LegsInferred, from, to)
	var withNext, inferred, right, last, lastRight int
	for _, tp := range taps {
		got := legs[[2]int64{int64(cell(tp.station)), tp.at.Unix() / 60}]
		switch {
		case tp.hasNext:
			withNext++
			if len(got) > 0 {
				inferred++
				if got[uint64(tp.dest)] == 1 && len(got) == 1 {
					right++
				}
			}
		case tp.lastLeg && tp.dest != 0:
			last++
			if got[uint64(tp.dest)] == 1 {
				lastRight++
			}
		}
	}
	t.Logf("%d boardings with a next tap: %d inferred, %d right; %d last legs home, %d right", withNext, inferred, right, last, lastRight)
	if withNext < 1000 || float64(inferred) < 0.9*float64(withNext) || float64(right) < 0.9*float64(inferred) {
		t.Errorf("%d boardings with a next tap: %d inferred (want ≥ 90 %%), %d of them right (want ≥ 90 %%)", withNext, inferred, right)
	}
	if float64(lastRight) < 0.9*float64(last) {
		t.Errorf("%d last legs of a day that ends at home: %d inferred home; want ≥ 90 %%", last, lastRight)
	}
	trips := scanLinked(t, fs.Store, vocab.TripsInferred, from, to)
	var tripsWant, tripsRight int
	for _, tp := range taps {
		if tp.tripDest == 0 {
			continue
		}
		tripsWant++
		if trips[[2]int64{int64(cell(tp.station)), tp.at.Unix() / 60}][uint64(tp.tripDest)] == 1 {
			tripsRight++
		}
	}
	if float64(tripsRight) < 0.9*float64(tripsWant) {
		t.Errorf("inferred trips: %d of %d chained from their first boarding to their true destination; want ≥ 90 %%", tripsRight, tripsWant)
	}
	var legsStored, tripsStored int64
	for _, ds := range legs {
		for _, v := range ds {
			legsStored += v
		}
	}
	for _, ds := range trips {
		for _, v := range ds {
			tripsStored += v
		}
	}
	resp, err := http.Get(fs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var exposition bytes.Buffer
	exposition.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf("\nflowd_trip_legs_inferred_total %d\n", legsStored), fmt.Sprintf("\nflowd_trips_inferred_total %d\n", tripsStored)} {
		if !strings.Contains(exposition.String(), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	var matched int64
	fs.Store.ScanSub(storage.TierMinute, vocab.Trips, vocab.Everywhere, from, to, func(_, _ uint64, _, v int64) { matched += v })
	if matched != 0 {
		t.Errorf("%d matched trips from tap-ins only; inferred trips are kept apart", matched)
	}
}

// The open legs are in the WAL under the card's keyed hash: restarts and
// a key rotation in the middle of the day lose no inference.
func TestInferenceSurvivesRestartsAndKeyRotation(t *testing.T) {
	stations, h, v := gridCity()
	dir := t.TempDir()
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	keyFile := filepath.Join(dir, "secret.key")
	var cards *ingest.Pseudonymizer
	start := func() *flowdtest.Server {
		fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
			if err := reg.PutStations(stations); err != nil {
				t.Fatal(err)
			}
			var err error
			if cards, err = ingest.LoadOrCreateKey(keyFile); err != nil {
				t.Fatal(err)
			}
			inf := &ingest.Inference{Registry: reg, Loc: time.UTC}
			b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, inf)}
			return api.Parts{Ingest: ingest.NewHandler(b, 8)}, nil
		})
		return fs.Serve()
	}
	tapIn := func(st geo.Station, at time.Duration) string {
		return fmt.Sprintf(`{"time":%q,"card":"C0453c92","dir":"in","station":%q,"line":%q}`, day.Add(at).Format(time.RFC3339), st.ID, st.Line)
	}
	fs := start()
	home, cross, crossV, work := h[1][0], h[1][8], v[1][6], v[1][12]
	postSwipeLines(t, fs, []string{tapIn(home, 8*time.Hour), tapIn(crossV, 8*time.Hour+20*time.Minute)})
	fs.Close()
	fs = start()
	if err := cards.Rotate(keyFile); err != nil {
		t.Fatal(err)
	}
	postSwipeLines(t, fs, []string{tapIn(work, 17*time.Hour), tapIn(cross, 17*time.Hour+30*time.Minute)})
	fs.Close()
	fs = start()
	defer fs.Close()
	postSwipeLines(t, fs, []string{fmt.Sprintf(`{"time":%q,"card":"other","dir":"in","station":"h0-0","line":"H0"}`, day.Add(28*time.Hour).Format(time.RFC3339))})
	cellOf := func(st geo.Station) uint64 { c, _ := fs.Registry.StationCell(st.ID); return uint64(c) }
	from, to := day.Unix()/60, day.Add(48*time.Hour).Unix()/60
	trips := scanLinked(t, fs.Store, vocab.TripsInferred, from, to)
	morning := trips[[2]int64{int64(cellOf(home)), day.Add(8*time.Hour).Unix() / 60}]
	evening := trips[[2]int64{int64(cellOf(work)), day.Add(17*time.Hour).Unix() / 60}]
	if morning[cellOf(work)] != 1 || evening[cellOf(home)] != 1 {
		t.Errorf("trips across two restarts and a key rotation: %v; want home→work in the morning %v, work→home in the evening %v", trips, morning, evening)
	}
}

// The real Buenos Aires sample (buses and the subway record tap-ins only)
// yields inferred trips, with stops learnt from where each line's riders
// board.
func TestBuenosAiresSampleInfersTrips(t *testing.T) {
	dir := os.Getenv("FLOWD_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data")
	}
	f, err := os.Open(filepath.Join(dir, "buenos-aires-afc-taps-sample.csv"))
	if err != nil {
		t.Skipf("no real data (%v): set FLOWD_SHARED_DATA or put the shared data folder at ../shared/data beside the checkout", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	// The sample is of 2019, hours only; it is replayed on a recent day,
	// each card's taps of one hour ten minutes apart in the file's order.
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	seen := map[string]int{}
	var lines []string
	type row struct {
		at   time.Time
		line string
	}
	var all []row
	for _, r := range rows[1:] {
		hour, err := strconv.Atoi(r[col["hora"]])
		if err != nil {
			t.Fatalf("hora %q: %v", r[col["hora"]], err)
		}
		key := r[col["id_tarjeta"]] + "/" + r[col["hora"]]
		at := day.Add(time.Duration(hour)*time.Hour + time.Duration(10*seen[key])*time.Minute)
		seen[key]++
		dir := "in"
		if r[col["tipo_trx_tren"]] == "CHECK OUT" {
			dir = "out"
		}
		all = append(all, row{at, fmt.Sprintf(`{"time":%q,"card":%q,"dir":%q,"lat":%s,"lng":%s,"line":%q,"mode":%q}`,
			at.Format(time.RFC3339), r[col["id_tarjeta"]], dir, r[col["lat"]], r[col["lon"]], r[col["id_linea"]], r[col["modo"]])})
	}
	slices.SortStableFunc(all, func(a, b row) int { return a.at.Compare(b.at) })
	for _, r := range all {
		lines = append(lines, r.line)
	}
	lines = append(lines, fmt.Sprintf(`{"time":%q,"card":"late","dir":"in","lat":-34.6,"lng":-58.4,"line":"1"}`, day.Add(28*time.Hour).Format(time.RFC3339)))
	fs := startInferring(t, nil)
	postSwipeLines(t, fs, lines)
	from, to := day.Unix()/60, day.Add(48*time.Hour).Unix()/60
	var legs, trips, unmatched int64
	fs.Store.ScanSub(storage.TierMinute, vocab.LegsInferred, vocab.Everywhere, from, to, func(_, _ uint64, _, v int64) { legs += v })
	fs.Store.ScanSub(storage.TierMinute, vocab.TripsInferred, vocab.Everywhere, from, to, func(_, _ uint64, _, v int64) { trips += v })
	fs.Store.ScanSub(storage.TierMinute, vocab.UnmatchedIn, vocab.Everywhere, from, to, func(_, _ uint64, _, v int64) { unmatched += v })
	t.Logf("Buenos Aires sample: %d legs and %d trips inferred, %d tap-ins unmatched", legs, trips, unmatched)
	if trips == 0 || legs < trips {
		t.Errorf("Buenos Aires sample: %d legs and %d trips inferred; want some trips, each of one leg or more", legs, trips)
	}
}
