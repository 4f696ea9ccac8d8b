package ingest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
)

// TestDecodeAheadAgrees: counts decoded with lines held back for warm
// (decodeCountsAhead, as the handler decodes them) reach fn with the same
// lines, in the same order, with the same values, and give the same line
// errors as DecodeCounts, over bodies in memory that mix lines read by
// their form with lines that are not (escapes, other member orders,
// nested values), rejected lines, blank lines and runs longer than the
// lines held. warm sees every line it holds, as fn will get it, before fn
// gets the first of them, and never more than aheadLines.
func TestDecodeAheadAgrees(t *testing.T) {
	kinds := []func(r *rand.Rand, i int) string{
		func(r *rand.Rand, i int) string { // the common form
			return fmt.Sprintf(`{"time":"2019-01-07T08:%02d:00+08:00","sensor":"det-%05d","class":"car","count":%d,"interval":60,"speed":%d.5}`, i%60, r.IntN(50000), r.IntN(40), r.IntN(90))
		},
		func(r *rand.Rand, i int) string { // a second form, numeric times
			return fmt.Sprintf(`{"time":%d,"sensor":"cam-%d","class":"bus","count":%d}`, 1546819200000+int64(i)*1000, r.IntN(900), r.IntN(9))
		},
		func(r *rand.Rand, i int) string { // an escape: the full parser
			return fmt.Sprintf(`{"time":%d,"sensor":"esc\u002d%d","class":"car","count":1}`, 1546819200000+int64(i)*1000, r.IntN(9))
		},
		func(r *rand.Rand, i int) string { // the common form, a count it rejects
			return fmt.Sprintf(`{"time":"2019-01-07T08:%02d:00+08:00","sensor":"det-%05d","class":"car","count":-%d,"interval":60,"speed":1.5}`, i%60, r.IntN(50000), 1+r.IntN(9))
		},
		func(r *rand.Rand, i int) string { // the common form, a speed it rejects
			return fmt.Sprintf(`{"time":"2019-01-07T08:%02d:00+08:00","sensor":"det-%05d","class":"car","count":3,"interval":60,"speed":%d}`, i%60, r.IntN(50000), 600+r.IntN(9))
		},
		func(r *rand.Rand, i int) string { return "" },           // blank
		func(r *rand.Rand, i int) string { return `{"time":1,` }, // malformed
		func(r *rand.Rand, i int) string { // a nested value
			return `{"time":1546819200000,"sensor":{"id":"x"},"class":"car","count":1}`
		},
	}
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 7))
		var b strings.Builder
		lines := 1 + r.IntN(200)
		common := r.Float64() // how often the common form comes
		// A line of one of the two flat forms after the first of its form
		// is read by that form where it is, held, and must be warmed.
		held := map[int]bool{}
		var seen [2]bool
		for i := range lines {
			k := 0
			if r.Float64() > common {
				k = r.IntN(len(kinds))
			}
			if k <= 1 {
				held[i+1], seen[k] = seen[k], true
			}
			b.WriteString(kinds[k](r, i))
			if i < lines-1 || r.IntN(2) == 0 {
				b.WriteString([]string{"\n", "\r\n"}[r.IntN(4)/3])
			}
		}
		body := b.String()

		var want decoded[Count]
		wantErrs, err := DecodeCounts(NewMemory([]byte(body)), NDJSON, testMaxLine, func(line int, c *Count) {
			want.events, want.lines = append(want.events, cloneCount(*c)), append(want.lines, line)
		})
		if err != nil {
			t.Fatal(err)
		}
		var got decoded[Count]
		var warmed []Count // seen by warm, not yet by fn
		gotErrs, err := decodeCountsAhead(NewMemory([]byte(body)), NDJSON, testMaxLine, func(cs []Count) {
			if len(warmed) > 0 {
				t.Fatalf("seed %d: warm called again with %d counts it gave before not yet to fn", seed, len(warmed))
			}
			if len(cs) == 0 || len(cs) > aheadLines {
				t.Fatalf("seed %d: warm given %d counts", seed, len(cs))
			}
			for _, c := range cs {
				warmed = append(warmed, cloneCount(c))
			}
		}, func(line int, c *Count) {
			if held[line] && len(warmed) == 0 {
				t.Fatalf("seed %d line %d: fn got a line warm never saw", seed, line)
			}
			if len(warmed) > 0 {
				if !reflect.DeepEqual(warmed[0], *c) {
					t.Fatalf("seed %d line %d: fn got %+v, warm saw %+v", seed, line, *c, warmed[0])
				}
				warmed = warmed[1:]
			}
			got.events, got.lines = append(got.events, cloneCount(*c)), append(got.lines, line)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(warmed) > 0 {
			t.Fatalf("seed %d: %d counts warm saw never reached fn", seed, len(warmed))
		}
		if !reflect.DeepEqual(got.lines, want.lines) || !reflect.DeepEqual(got.events, want.events) {
			t.Fatalf("seed %d: lines %v\nwant %v\n(events differ: %v)", seed, got.lines, want.lines, !reflect.DeepEqual(got.events, want.events))
		}
		if !reflect.DeepEqual(gotErrs, wantErrs) {
			t.Fatalf("seed %d: errors %+v\nwant %+v", seed, gotErrs, wantErrs)
		}
		if len(want.lines) == 0 && len(wantErrs) == 0 && strings.TrimSpace(body) != "" {
			t.Fatalf("seed %d: nothing decoded and nothing rejected", seed)
		}
	}
}

// TestWarmedPlacesAgree: a batch that takes its counts' sensors from the
// places warmCounts looked up ahead (as the handler decodes) keeps and
// rejects the same lines and adds the same buckets as one that looks each
// up as it comes, over bodies of known sensors in runs and alone, unknown
// ones, ids too long for the index's slots, and lines rejected before
// their sensor is looked up (in the future) or after (a bad class).
func TestWarmedPlacesAgree(t *testing.T) {
	reg := geo.New(9)
	var sensors []geo.Sensor
	for i := range 40 {
		id := fmt.Sprintf("det-%05d", i)
		if i%10 == 0 {
			id = fmt.Sprintf("a-detector-id-longer-than-a-slot-%d", i)
		}
		sensors = append(sensors, geo.Sensor{ID: id, Lat: 30.1 + float64(i)*0.004, Lng: 120.0 + float64(i%7)*0.004})
	}
	if err := reg.PutSensors(sensors); err != nil {
		t.Fatal(err)
	}
	accepted, rejected := 0, 0
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 9))
		var b strings.Builder
		id := sensors[0].ID
		for i := range 1 + r.IntN(300) {
			switch x := r.IntN(10); {
			case x < 6 && i > 0: // the sensor of the line before
			case x < 8:
				id = sensors[r.IntN(len(sensors))].ID
			default:
				id = fmt.Sprintf("unknown-%d", r.IntN(5))
			}
			ts, class := "2019-01-07T08:00:00+08:00", "car"
			switch r.IntN(12) {
			case 0:
				ts = "2099-01-07T08:00:00+08:00" // in the future: rejected before its sensor is
			case 1:
				class = "no such class!" // rejected after its sensor is
			}
			fmt.Fprintf(&b, `{"time":"%s","sensor":"%s","class":"%s","count":%d,"interval":60,"speed":%d.5}`+"\n", ts, id, class, 1+r.IntN(9), r.IntN(90))
		}
		body := b.String()
		decodeAs := func(ahead bool) (int, []LineError, []storage.Delta) {
			bk := pipelineBucketerIn(t, reg, t.TempDir())
			w := &allWatcher{}
			bk.Deltas = []DeltaObserver{w}
			bt := bk.NewBatch()
			defer bt.Release()
			var errs []LineError
			var err error
			if ahead {
				errs, err = decodeCounts(bt, NewMemory([]byte(body)), NDJSON)
			} else {
				var addErr error
				errs, err = DecodeCounts(NewMemory([]byte(body)), NDJSON, 4096, func(line int, c *Count) {
					if addErr == nil {
						addErr = bt.AddCount(line, c)
					}
				})
				err = errors.Join(err, addErr)
			}
			if err == nil {
				err = bt.Commit()
			}
			if err != nil {
				t.Fatal(err)
			}
			return bt.Accepted(), append(errs, bt.Rejected()...), w.got
		}
		n0, errs0, d0 := decodeAs(false)
		n1, errs1, d1 := decodeAs(true)
		if n0 != n1 || !reflect.DeepEqual(errs0, errs1) || !reflect.DeepEqual(d0, d1) {
			t.Fatalf("seed %d: accepted %d, %d; rejected %+v\nand %+v\n(deltas the same: %v)", seed, n0, n1, errs0, errs1, reflect.DeepEqual(d0, d1))
		}
		accepted, rejected = accepted+n0, rejected+len(errs0)
	}
	if accepted < 500 || rejected < 100 {
		t.Fatalf("accepted %d, rejected %d: the bodies try too little", accepted, rejected)
	}
}
