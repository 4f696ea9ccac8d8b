package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/gzip"
)

// cell9 is a res-9 cell in Hangzhou; its res-7 parent is cell7.
const (
	cell9 = 0x8930e1d8a2bffff
	cell7 = 0x8730e1d8affffff
	dest9 = 0x8930e1d8a37ffff
)

// fakeStore answers ScanSub from fixed rows, as the store would the new
// total of a late bucket.
type fakeStore struct{ rows []storage.Row }

func (f *fakeStore) ScanSub(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) error {
	for _, r := range f.rows {
		if r.Metric == metric && r.Span == t.Width() && ranges[0].Contains(r.Cell) && r.Minute >= from && r.Minute < to {
			fn(r.Cell, r.Sub, r.Minute, r.Value)
		}
	}
	return nil
}

// testTier is an outbox and its cutter at a clock the test moves.
type testTier struct {
	t     *testing.T
	dir   string
	o     *Outbox
	c     *cutter
	clock time.Time
}

func newTestTier(t *testing.T, dir string, store Scanner, clock time.Time) *testTier {
	t.Helper()
	tt := &testTier{t: t, dir: dir, clock: clock}
	o, err := OpenOutbox(dir, clock.Unix()/60-10)
	if err != nil {
		t.Fatal(err)
	}
	tt.o = o
	tt.c = &cutter{
		o: o, store: store, lab: &labeler{node: "n1", parents: []int{7}},
		lateness: 10, now: func() time.Time { return tt.clock }, logf: t.Logf,
		journals: map[string]*journal{}, cuts: func(int) {}, failpoint: func(string) {},
	}
	return tt
}

// shipped reads every segment waiting, in order, as series → minute →
// value (a later segment's value of a bucket replacing an earlier one's if
// larger, as VictoriaMetrics' deduplication does), and removes them.
func (tt *testTier) shipped(into map[string]map[int64]int64) {
	tt.t.Helper()
	for _, s := range tt.o.segments() {
		readSegment(tt.t, s.path, into)
		os.Remove(s.path)
	}
}

func readSegment(t *testing.T, path string, into map[string]map[int64]int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []int64           `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v: %s", path, err, sc.Bytes())
		}
		var labels []string
		for k, v := range line.Metric {
			if k != "__name__" {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		key := line.Metric["__name__"] + "{" + strings.Join(labels, ",") + "}"
		if into[key] == nil {
			into[key] = map[int64]int64{}
		}
		for i, ts := range line.Timestamps {
			if ts%60000 != 0 {
				t.Fatalf("%s: timestamp %d is not a minute's start", key, ts)
			}
			m := ts / 60000
			if old, ok := into[key][m]; !ok || line.Values[i] > old {
				into[key][m] = line.Values[i]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func series(metric string, extra ...string) string {
	labels := append([]string{fmt.Sprintf("cell=%x", cell9), "node=n1", fmt.Sprintf("r7=%x", cell7)}, extra...)
	sort.Strings(labels)
	return metric + "{" + strings.Join(labels, ",") + "}"
}

// TestCutShipsFinalValuesOfFinishedBuckets: rows told by two flushes
// (one bucket in both) become, once their minutes are older than the
// lateness horizon, one final value a bucket — a spread run as its
// minutes' shares, a trip with its destination, a sketch register with
// its index, the hour rollup under metric:1h once the hour is cut — and
// nothing of a minute not finished yet.
func TestCutShipsFinalValuesOfFinishedBuckets(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60 // an hour start
	tt := newTestTier(t, t.TempDir(), &fakeStore{}, time.Unix((h+5)*60, 0))
	must(t, tt.o.Flushed(storage.TierMinute, 0, 1, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 3},
		{Metric: "count_car", Cell: cell9, Minute: h + 1, Span: 4, Value: 10},
		{Metric: "trips", Cell: cell9, Sub: dest9, Minute: h + 2, Span: 1, Value: 1},
		{Metric: "hll_cards", Cell: cell9, Sub: 42, Minute: h + 2, Span: 1, Value: 5},
	}))
	must(t, tt.o.Flushed(storage.TierHour, 0, 1, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 60, Value: 3},
		{Metric: "count_car", Cell: cell9, Minute: h, Span: 60, Value: 10},
	}))
	must(t, tt.o.Flushed(storage.TierMinute, 1, 2, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 4},
		{Metric: "swipes_in", Cell: cell9, Minute: h + 30, Span: 1, Value: 1},
		{Metric: "hll_cards", Cell: cell9, Sub: 42, Minute: h + 2, Span: 1, Value: 3},
	}))
	must(t, tt.o.Flushed(storage.TierHour, 1, 2, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 60, Value: 5},
	}))
	got := map[string]map[int64]int64{}
	tt.clock = time.Unix((h+25)*60, 0) // minutes up to h+14 finished
	must(t, tt.c.step())
	tt.shipped(got)
	want := map[string]map[int64]int64{
		series("swipes_in"): {h: 7},
		series("count_car"): {h + 1: 3, h + 2: 3, h + 3: 2, h + 4: 2},
		series("trips", "dest=8930e1d8a37ffff", "dest_r7=8730e1d8affffff"): {h + 2: 1},
		series("hll_cards", "reg=42"):                                      {h + 2: 5},
	}
	if !equalShipped(got, want) {
		t.Fatalf("after the cut to %d shipped\n%v\nwant\n%v", h+15, got, want)
	}
	if tt.o.Cut() != h+15 {
		t.Errorf("cut %d, want %d", tt.o.Cut(), h+15)
	}
	tt.clock = time.Unix((h+75)*60, 0) // the hour is finished
	must(t, tt.c.step())
	tt.shipped(got)
	want[series("swipes_in")][h+30] = 1
	want[series("swipes_in:1h")] = map[int64]int64{h: 8}
	want[series("count_car:1h")] = map[int64]int64{h: 10}
	if !equalShipped(got, want) {
		t.Fatalf("after the hour shipped\n%v\nwant\n%v", got, want)
	}
	if ents, _ := os.ReadDir(tt.dir + "/journal"); len(ents) != 0 {
		t.Errorf("journals left after every row was cut: %v", ents)
	}
}

// TestLateRowsShipTheStoresNewTotal: a row flushed after its minute and
// hour were cut ships the store's new totals of both, under the same
// timestamps, so that VictoriaMetrics keeps the larger; two late runs
// sharing a minute ship its total once; a run that began before the cut
// ships its cut minutes from the store and the others when they are cut.
func TestLateRowsShipTheStoresNewTotal(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	store := &fakeStore{}
	tt := newTestTier(t, t.TempDir(), store, time.Unix((h+10)*60, 0))
	must(t, tt.o.Flushed(storage.TierMinute, 0, 1, []storage.Row{{Metric: "swipes_in", Cell: cell9, Minute: h + 1, Span: 1, Value: 2}}))
	tt.clock = time.Unix((h+75)*60, 0)
	must(t, tt.c.step())
	got := map[string]map[int64]int64{}
	tt.shipped(got)
	// A late tap of minute h+1, and a run of minutes h+60 to h+69 of which
	// h+60 to h+64 are cut.
	store.rows = []storage.Row{
		{Metric: "count_car", Cell: cell9, Minute: h + 1, Span: 1, Value: 1},
		{Metric: "count_car", Cell: cell9, Minute: h + 2, Span: 1, Value: 2},
		{Metric: "count_car", Cell: cell9, Minute: h + 3, Span: 1, Value: 1},
		{Metric: "swipes_in", Cell: cell9, Minute: h + 1, Span: 1, Value: 5},
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 60, Value: 5},
		{Metric: "count_car", Cell: cell9, Minute: h + 60, Span: 1, Value: 1},
		{Metric: "count_car", Cell: cell9, Minute: h + 61, Span: 1, Value: 1},
	}
	must(t, tt.o.Flushed(storage.TierMinute, 1, 2, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h + 1, Span: 1, Value: 3},
		{Metric: "count_car", Cell: cell9, Minute: h + 60, Span: 10, Value: 10},
		{Metric: "count_car", Cell: cell9, Minute: h + 1, Span: 2, Value: 2},
		{Metric: "count_car", Cell: cell9, Minute: h + 2, Span: 2, Value: 2},
	}))
	must(t, tt.o.Flushed(storage.TierHour, 1, 2, []storage.Row{{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 60, Value: 3}}))
	tt.clock = time.Unix((h+90)*60, 0)
	must(t, tt.c.step())
	tt.shipped(got)
	want := map[string]map[int64]int64{
		series("swipes_in"):    {h + 1: 5},
		series("swipes_in:1h"): {h: 5},
		series("count_car"):    {h + 1: 1, h + 2: 2, h + 3: 1, h + 60: 1, h + 61: 1, h + 65: 1, h + 66: 1, h + 67: 1, h + 68: 1, h + 69: 1},
	}
	if !equalShipped(got, want) {
		t.Fatalf("shipped\n%v\nwant\n%v", got, want)
	}
	if ents, _ := os.ReadDir(tt.dir + "/late"); len(ents) != 0 {
		t.Errorf("late files left after they were shipped: %v", ents)
	}
}

// TestFlushAgainAfterACrashReplacesItsJournal: a flush told twice over
// the same WAL segments (its part never got in place before a crash; the
// replay flushes them again, with more) counts its rows once; a reopened
// outbox keeps its cut and what it has not cut.
func TestFlushAgainAfterACrashReplacesItsJournal(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	dir := t.TempDir()
	tt := newTestTier(t, dir, &fakeStore{}, time.Unix((h+5)*60, 0))
	must(t, tt.o.Flushed(storage.TierMinute, 3, 5, []storage.Row{{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 2}}))
	must(t, tt.c.step())
	cut := tt.o.Cut()
	tt = newTestTier(t, dir, &fakeStore{}, time.Unix((h+5)*60, 0)) // the crash
	if tt.o.Cut() != cut {
		t.Fatalf("reopened at cut %d, want %d", tt.o.Cut(), cut)
	}
	must(t, tt.o.Flushed(storage.TierMinute, 3, 8, []storage.Row{
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 2},
		{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 1},
	}))
	tt.clock = time.Unix((h+20)*60, 0)
	must(t, tt.c.step())
	got := map[string]map[int64]int64{}
	tt.shipped(got)
	want := map[string]map[int64]int64{series("swipes_in"): {h: 3}}
	if !equalShipped(got, want) {
		t.Fatalf("shipped\n%v\nwant\n%v", got, want)
	}
}

// TestSenderRetriesUntilTaken: segments are POSTed in order, gzip JSON
// lines, each until VictoriaMetrics takes it (the second after two 503s),
// with backoff; after the outage the segment taken before it is shipped
// again, in case VictoriaMetrics lost it, and then the rest.
func TestSenderRetriesUntilTaken(t *testing.T) {
	var mu sync.Mutex
	var taken []int64
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/api/v1/import" || r.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Encoding"))
		}
		if requests++; requests == 2 || requests == 3 {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		var line struct{ Timestamps []int64 }
		if err := json.NewDecoder(zr).Decode(&line); err != nil {
			t.Error(err)
		}
		taken = append(taken, line.Timestamps[0]/60000)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	tt := newTestTier(t, t.TempDir(), &fakeStore{}, time.Unix(h*60, 0))
	for i := range int64(3) {
		must(t, tt.o.Flushed(storage.TierMinute, uint64(i), uint64(i+1), []storage.Row{{Metric: "swipes_in", Cell: cell9, Minute: h + i, Span: 1, Value: 1}}))
		tt.clock = time.Unix((h+i+11)*60, 0)
		must(t, tt.c.step())
	}
	imp, _ := ImportURL(srv.URL)
	var errs int
	s := &sender{ctx: context.Background(), o: tt.o, url: imp, health: srv.URL + "/api/v1/import", client: srv.Client(), logf: t.Logf, minBackoff: time.Millisecond, maxBackoff: 4 * time.Millisecond,
		shipped: func(int) {}, failed: func(error) { errs++ }, failpoint: func(string) {}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.run(stop); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(tt.o.segments()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := []int64{h, h + 1, h, h + 2}; !slices.Equal(taken, want) || errs != 2 {
		t.Fatalf("VictoriaMetrics took minutes %v after %d failures, want %v after 2", taken, errs, want)
	}
}

func equalShipped(a, b map[string]map[int64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, m := range a {
		n, ok := b[k]
		if !ok || len(m) != len(n) {
			return false
		}
		for ts, v := range m {
			if w, ok := n[ts]; !ok || w != v {
				return false
			}
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFoldedJournalsCountOnce: the hour rows of many flushes wait in one
// folded journal (a row a bucket) once no flush can replace them, and the
// hour ships their sum; after a crash that left the folded journals'
// sources beside it, they are not counted again.
func TestFoldedJournalsCountOnce(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	dir := t.TempDir()
	tt := newTestTier(t, dir, &fakeStore{}, time.Unix((h+5)*60, 0))
	var kept [][]byte // the journals as a crash before their removal would leave them
	for i := range uint64(6) {
		must(t, tt.o.Flushed(storage.TierHour, i, i+1, []storage.Row{{Metric: "count_car", Cell: cell9, Minute: h, Span: 60, Value: 2}}))
		if i < 4 {
			data, err := os.ReadFile(filepath.Join(dir, journalDir, journalName(storage.TierHour, i, i+1)))
			must(t, err)
			kept = append(kept, data)
		}
		must(t, tt.c.step())
	}
	ents, _ := os.ReadDir(filepath.Join(dir, journalDir))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// Flush 6 may still be replaced (its part is not known to be in place):
	// it stays apart; the five before are folded.
	if want := []string{foldedName(storage.TierHour, 5), journalName(storage.TierHour, 5, 6)}; !slices.Equal(names, want) {
		t.Fatalf("journals %v, want %v", names, want)
	}
	for i, data := range kept {
		must(t, os.WriteFile(filepath.Join(dir, journalDir, journalName(storage.TierHour, uint64(i), uint64(i+1))), data, 0o644))
	}
	tt = newTestTier(t, dir, &fakeStore{}, time.Unix((h+75)*60, 0)) // the restart
	must(t, tt.c.step())
	got := map[string]map[int64]int64{}
	tt.shipped(got)
	if want := map[string]map[int64]int64{series("count_car:1h"): {h: 12}}; !equalShipped(got, want) {
		t.Fatalf("shipped %v, want %v", got, want)
	}
}

// TestShipSketchesByTier: -remote-sketches hour ships a sketch's hourly
// registers only, off none, minute both; counts ship either way.
func TestShipSketchesByTier(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	for _, c := range []struct {
		flag          string
		minute, hours bool
	}{{"minute", true, true}, {"hour", false, true}, {"off", false, false}} {
		sk, err := ParseSketches(c.flag)
		must(t, err)
		tt := newTestTier(t, t.TempDir(), &fakeStore{}, time.Unix((h+5)*60, 0))
		tt.o.ShipSketches(sk)
		must(t, tt.o.Flushed(storage.TierMinute, 0, 1, []storage.Row{
			{Metric: "hll_cards", Cell: cell9, Sub: 3, Minute: h + 1, Span: 1, Value: 2},
			{Metric: "swipes_in", Cell: cell9, Minute: h + 1, Span: 1, Value: 1},
		}))
		must(t, tt.o.Flushed(storage.TierHour, 0, 1, []storage.Row{{Metric: "hll_cards", Cell: cell9, Sub: 3, Minute: h, Span: 60, Value: 2}}))
		tt.clock = time.Unix((h+75)*60, 0)
		must(t, tt.c.step())
		got := map[string]map[int64]int64{}
		tt.shipped(got)
		_, minute := got[series("hll_cards", "reg=3")]
		_, hours := got[series("hll_cards:1h", "reg=3")]
		if minute != c.minute || hours != c.hours || got[series("swipes_in")][h+1] != 1 {
			t.Errorf("-remote-sketches %s: shipped %v", c.flag, got)
		}
	}
	if _, err := ParseSketches("daily"); err == nil {
		t.Error("-remote-sketches daily accepted")
	}
}

// TestCrashBetweenSegmentAndStateKeepsTheCut: a crash after a cut's
// segment is written and before state.json says the new cut (the
// failpoint remote-cut) reopens at the cut the segment's name holds, so
// the minutes are not cut again.
func TestCrashBetweenSegmentAndStateKeepsTheCut(t *testing.T) {
	h := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Unix() / 60
	dir := t.TempDir()
	tt := newTestTier(t, dir, &fakeStore{}, time.Unix((h+5)*60, 0))
	state, err := os.ReadFile(filepath.Join(dir, stateFile))
	must(t, err)
	must(t, tt.o.Flushed(storage.TierMinute, 0, 1, []storage.Row{{Metric: "swipes_in", Cell: cell9, Minute: h, Span: 1, Value: 2}}))
	tt.clock = time.Unix((h+12)*60, 0)
	must(t, tt.c.step())
	must(t, os.WriteFile(filepath.Join(dir, stateFile), state, 0o644)) // state.json as before the cut
	tt = newTestTier(t, dir, &fakeStore{}, time.Unix((h+12)*60, 0))
	if tt.o.Cut() != h+2 {
		t.Fatalf("reopened at cut %d, want %d from the segment's name", tt.o.Cut(), h+2)
	}
	must(t, tt.c.step())
	if segs := tt.o.segments(); len(segs) != 1 {
		t.Fatalf("%d segments after the restart, want the one written before it", len(segs))
	}
}
