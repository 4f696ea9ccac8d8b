package ingest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// spreadReading is a detector reading of several minutes.
type spreadReading struct {
	at       string // HH:MM on 2019-01-07, UTC
	sensor   int
	interval int64 // seconds
	count    int64
	speed    float64
}

// spreadReadings covers an aligned hour, hours starting mid-hour (two
// pieces), 5 minutes, 90 minutes, a whole day, a single minute, fewer
// cars than minutes, one sensor's hour sent twice (combined), and one
// sensor's hours sent in reverse order.
var spreadReadings = []spreadReading{
	{"08:00", 1, 3600, 125, 40.5},
	{"08:20", 2, 3600, 61, 0},
	{"08:07", 3, 300, 7, 12},
	{"07:45", 4, 5400, 1000, 33.3},
	{"00:00", 5, 86400, 100000, 50},
	{"08:00", 6, 60, 5, 20},
	{"08:00", 7, 3600, 13, 60},
	{"08:30", 8, 3600, 61, 10},
	{"08:30", 8, 3600, 61, 10},
	{"09:59", 9, 120, 3, 7},
	{"09:00", 10, 3600, 77, 15}, // an hour, then the hour before it: a
	{"08:00", 10, 3600, 50, 20}, // series whose runs come out of order
}

// spreadExpected spreads the readings the way flowd always has: a minute
// of a reading of n minutes gets count/n, the first count%n minutes one
// more, and count × speed rounded as its speed sum. It returns the sums by
// metric, cell and minute.
func spreadExpected(t *testing.T, reg *geo.Registry) map[storage.Key]int64 {
	want := map[storage.Key]int64{}
	for _, r := range spreadReadings {
		cell, ok := reg.SensorCell(fmt.Sprintf("cam-%04d", r.sensor))
		if !ok {
			t.Fatalf("sensor %d", r.sensor)
		}
		at, _ := time.Parse("2006-01-02 15:04", "2019-01-07 "+r.at)
		first := at.Unix() / 60
		n := (r.interval + 59) / 60
		for i := range n {
			v := r.count / n
			if i < r.count%n {
				v++
			}
			if v == 0 {
				continue
			}
			want[storage.Key{Metric: 0, Cell: uint64(cell), Minute: first + i}] += v
			if sv := vocab.SpeedSum(r.speed, v); sv != 0 { // a bucket of 0 is no answer
				want[storage.Key{Metric: 1, Cell: uint64(cell), Minute: first + i}] += sv
			}
		}
	}
	return want
}

// TestSpreadReadingsAnswerAsBefore posts readings of 1 minute to a day
// through the decoder into a real store, where each hour of a reading is
// one row, and checks every minute of count and speed against the spread
// flowd always answered, at every step, from the memtable, from parts and
// after a reopen; that each reading costs at most two rows per hour in the
// minute tier; and that the hour and day tiers hold a row a bucket.
func TestSpreadReadingsAnswerAsBefore(t *testing.T) {
	dir := t.TempDir()
	bk := pipelineBucketerIn(t, pipelineBucketer(t).Registry, dir)
	var body bytes.Buffer
	for _, r := range spreadReadings {
		fmt.Fprintf(&body, `{"time":"2019-01-07T%s:00Z","sensor":"cam-%04d","class":"car","count":%d,"interval":%d,"speed":%g}`+"\n", r.at, r.sensor, r.count, r.interval, r.speed)
	}
	bt := bk.NewBatch()
	errs, err := decodeCounts(bt, bytes.NewReader(body.Bytes()), NDJSON)
	if err == nil && len(errs) == 0 {
		err = bt.Commit()
	}
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	bt.Release()
	want := spreadExpected(t, bk.Registry)
	names := [2]string{vocab.CountPrefix + "car", vocab.SpeedPrefix + "car"}
	day := time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC).Unix() / 60
	all := vocab.Everywhere
	check := func(st *storage.Store, when string) {
		t.Helper()
		for id, name := range names {
			got := map[storage.Key]int64{}
			err := st.Scan(storage.TierMinute, name, all, day-60, day+2*1440, func(cell uint64, minute, v int64) {
				got[storage.Key{Metric: uint32(id), Cell: cell, Minute: minute}] += v
			})
			if err != nil {
				t.Fatal(err)
			}
			wantM := maps.Clone(want)
			maps.DeleteFunc(wantM, func(k storage.Key, _ int64) bool { return k.Metric != uint32(id) })
			if !maps.Equal(got, wantM) {
				for k, v := range got {
					if _, ok := wantM[k]; !ok {
						t.Errorf("%s: %s cell %x minute %d = %d, want none", when, name, k.Cell, k.Minute-day, v)
					}
				}
				for k, v := range wantM {
					if got[k] != v {
						t.Errorf("%s: %s cell %x minute %d = %d, want %d", when, name, k.Cell, k.Minute-day, got[k], v)
					}
				}
				t.Fatalf("%s: %s: %d minutes, want %d", when, name, len(got), len(wantM))
			}
			// Steps of 15 and 7 minutes from a minute inside an hour, and
			// hours from the hour tier.
			for _, q := range []struct {
				tier           storage.Tier
				from, to, step int64
			}{{storage.TierMinute, day + 8*60 + 10, day + 9*60 + 40, 15}, {storage.TierMinute, day + 7*60 + 53, day + 10*60, 7}, {storage.TierHour, day, day + 1440, 60}, {storage.TierDay, day - 1440, day + 2*1440, 1440}} {
				sums := make([]int64, (q.to-q.from+q.step-1)/q.step)
				if err := st.SumSteps(q.tier, name, all, q.from, q.to, q.step, sums); err != nil {
					t.Fatal(err)
				}
				wantS := make([]int64, len(sums))
				for k, v := range wantM {
					if k.Minute >= q.from && k.Minute < q.to {
						wantS[(k.Minute-q.from)/q.step] += v
					}
				}
				if !slices.Equal(sums, wantS) {
					t.Fatalf("%s: %s %s tier from minute %d at step %d: %v, want %v", when, name, q.tier, q.from-day, q.step, sums, wantS)
				}
			}
		}
	}
	check(bk.Store, "in the memtable")
	if err := bk.Store.Close(); err != nil {
		t.Fatal(err)
	}
	bk.Store = flowdtest.OpenStore(t, dir)
	check(bk.Store, "after a close and reopen")
	if err := bk.Store.Flush(); err != nil {
		t.Fatal(err)
	}
	check(bk.Store, "in parts")
	// Rows: a reading takes at most two a hour it touches (the minutes
	// with one more and the rest): 46 for the counts here, 43 for the
	// speeds, where each of their minutes took one before.
	if rows := bk.Store.Stats().PartRows[storage.TierMinute]; rows > 89 {
		t.Errorf("the readings took %d minute rows, want at most 89", rows)
	}
	// The hour and day tiers take a run whole, whatever its length: a
	// row a bucket for a cell's runs and one for its one-minute
	// readings, not one for each length of run in it.
	for _, tr := range []storage.Tier{storage.TierHour, storage.TierDay} {
		buckets := map[storage.Key]bool{}
		for k := range want {
			k.Minute = tr.Truncate(k.Minute)
			buckets[k] = true
		}
		if rows := bk.Store.Stats().PartRows[tr]; rows > uint64(2*len(buckets)) {
			t.Errorf("the readings took %d rows of the %s tier, want at most two a bucket: %d", rows, tr, 2*len(buckets))
		}
	}
	if err := bk.Store.Close(); err != nil {
		t.Fatal(err)
	}
	check(flowdtest.OpenStore(t, dir), "after a flush and reopen")
}
