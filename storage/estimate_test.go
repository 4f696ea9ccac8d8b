package storage

import (
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// A day of one row a minute in ten cells: the minute tier reads its
// 14,400 rows and, once in parts, the hour tier its 240 (the memtable
// keeps minutes, which either tier's scan reads), never fewer than a scan
// hands on.
func TestRowsToReadCountsTheTierThatAnswers(t *testing.T) {
	s := openTestStore(t, t.TempDir(), quietOptions())
	defer s.Close()
	id, err := s.MetricID("swipes_in")
	if err != nil {
		t.Fatal(err)
	}
	const cells, minutes = 10, 1440
	day := (time.Now().Unix()/60 - 2*minutes) / 1440 * 1440
	var ds []Delta
	for c := range cells {
		for m := range int64(minutes) {
			ds = append(ds, Delta{Key: Key{Metric: id, Cell: 0x89309a000000000 + uint64(c)<<12, Minute: day + m}, Value: 1})
		}
	}
	if err := s.Add(ds); err != nil {
		t.Fatal(err)
	}
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	scanned := func(tier Tier, from, to int64) int64 {
		var n int64
		if err := s.Scan(tier, "swipes_in", all, from, to, func(uint64, int64, int64) { n++ }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, where := range []string{"memtable", "parts"} {
		if where == "parts" {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		minute := s.RowsToRead(TierMinute, "swipes_in", all, day, day+minutes)
		hour := s.RowsToRead(TierHour, "swipes_in", all, day, day+minutes)
		wantHour := int64(cells * 24)
		if where == "memtable" {
			wantHour = cells * minutes
		}
		if minute != cells*minutes || hour != wantHour {
			t.Errorf("%s: rows to read %d in the minute tier, %d in the hour tier; want %d and %d", where, minute, hour, cells*minutes, wantHour)
		}
		if got := scanned(TierMinute, day, day+minutes); got > minute {
			t.Errorf("%s: a scan handed on %d rows, more than the %d estimated", where, got, minute)
		}
		one := []vocab.CellRange{{Lo: 0x89309a000000000, Hi: 0x89309a000000000}}
		if n := s.RowsToRead(TierHour, "swipes_in", one, day, day+minutes); n < hour/cells || n > hour {
			t.Errorf("%s: one cell's hours: %d rows; want %d to %d", where, n, hour/cells, hour)
		}
	}
	if n := s.RowsToRead(TierMinute, "footfall_in", all, day, day+minutes); n != 0 {
		t.Errorf("a metric with no data reads %d rows; want 0", n)
	}
}
