package storage

import (
	"testing"
	"time"
)

// crash stops a store's goroutines without flushing, as a kill would.
func crash(s *Store) {
	s.stopWork()
	s.wal.abandon()
	s.releaseParts()
	s.lock.Close()
}

func TestOpenTripsSurviveFlushesAndCrashes(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	id, _ := s.MetricID("swipes_in")
	now := time.Now().Unix()
	submit := func(ops ...TripOp) {
		t.Helper()
		b := NewBatch()
		defer b.Release()
		b.Add(id, false, 1, 0, now/60, 1)
		p, err := s.Submit(b, ops)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Cards 3 on are legs of a line, whose chaining fields must survive a
	// checkpoint (3) and a replayed record (4) as well as the trip's own;
	// 4 on carry a rider group too.
	open := func(card uint64) TripOp {
		o := OpenTrip{Card: card, Start: now + int64(card), Cell: 100 + card}
		if card >= 3 {
			o.Line, o.TripStart, o.TripCell, o.DayCell = "linea 148", now-600, 200+card, 300+card
		}
		if card >= 4 {
			o.Group = "student"
		}
		return TripOp{Open: true, Trip: o}
	}
	closed := func(card uint64) TripOp { return TripOp{Trip: OpenTrip{Card: card}} }
	submit(open(1), open(2), open(3))
	submit(closed(2))
	if err := s.Flush(); err != nil { // old segments go; the checkpoint keeps 1 and 3
		t.Fatal(err)
	}
	submit(open(4), closed(1))
	crash(s)

	s = openTestStore(t, dir, quietOptions())
	got := s.OpenTrips()
	want := []OpenTrip{open(3).Trip, open(4).Trip}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("open trips after a flush and a crash: %+v, want %+v", got, want)
	}
	submit(open(5))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, quietOptions())
	defer s.Close()
	if got := s.OpenTrips(); len(got) != 3 || got[2] != open(5).Trip {
		t.Fatalf("open trips after a clean close: %+v", got)
	}
}
