package ingest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/flowd/flowd/storage"
)

// recentWatcher watches minutes [lo, hi] and keeps what it is given.
type recentWatcher struct {
	lo, hi int64
	got    []storage.Delta
}

func (w *recentWatcher) ObservedMinutes() (int64, int64) { return w.lo, w.hi }
func (w *recentWatcher) ObserveDeltas(ds []storage.Delta) {
	w.got = append(w.got, ds...)
}

// allWatcher keeps every delta it is given.
type allWatcher struct{ got []storage.Delta }

func (w *allWatcher) ObserveDeltas(ds []storage.Delta) { w.got = append(w.got, ds...) }

// TestRecentObserverGetsItsMinutesOnly posts counts of two minutes far
// apart: an observer of recent minutes is told of its minute alone, an
// observer of everything of both, and both only after the batch is durable.
func TestRecentObserverGetsItsMinutesOnly(t *testing.T) {
	bk := pipelineBucketer(t)
	const old, recent = 1546843200, 1700000000 // unix seconds
	recentW := &recentWatcher{lo: recent / 60, hi: recent/60 + 5}
	allW := &allWatcher{}
	bk.Deltas = []DeltaObserver{recentW, allW}
	var body bytes.Buffer
	for _, ts := range []int{old, recent} {
		fmt.Fprintf(&body, `{"time":%d,"sensor":"cam-0001","class":"car","count":3}`+"\n", ts)
	}
	bt := bk.NewBatch()
	defer bt.Release()
	if _, err := decodeCounts(bt, &body, NDJSON); err != nil {
		t.Fatal(err)
	}
	if len(recentW.got)+len(allW.got) != 0 {
		t.Fatal("observers told before the batch is durable")
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	if len(recentW.got) != 1 || recentW.got[0].Minute != recent/60 || recentW.got[0].Value != 3 {
		t.Errorf("the recent observer got %+v, want the recent minute's count alone", recentW.got)
	}
	if len(allW.got) != 2 {
		t.Errorf("the observer of everything got %+v, want both minutes", allW.got)
	}
}
