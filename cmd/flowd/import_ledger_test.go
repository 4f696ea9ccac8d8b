package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ledger's rules, without a server: answers out of order move Done only
// over an unbroken run and keep the batches answered ahead; a reopened
// ledger skips what any run had answered; a batch left in flight is
// refused until -inflight says what became of it.
func TestImportLedger(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.csv")
	os.WriteFile(file, []byte("x\n"), 0o644)
	state := t.TempDir()
	job := &importJob{path: file}
	batch := func(seq, from, to, events int) importBatch {
		return importBatch{job: job, seq: seq, firstLine: from, lastLine: to, events: events}
	}
	open := func() *importLedger {
		l, err := openLedger(state, "http://x", "counts", []string{file}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	if err := l.settleInFlight(""); err != nil {
		t.Fatal(err)
	}
	for _, b := range []importBatch{batch(0, 2, 10, 9), batch(1, 11, 20, 10), batch(2, 21, 30, 10), batch(3, 31, 40, 10)} {
		l.sending(b)
	}
	l.acknowledged(batch(0, 2, 10, 9), 9, 0, func() {})
	l.acknowledged(batch(2, 21, 30, 10), 10, 0, func() {}) // ahead of 1
	if f := l.state.Files[0]; f.Done != 10 || len(f.Acked) != 1 || f.Acked[0].From != 21 {
		t.Fatalf("after answers 0 and 2: done %d, acked %+v; want 10 and 21-30", f.Done, f.Acked)
	}
	// The run is killed with batches 1 and 3 in flight.
	l = open()
	err := l.settleInFlight("")
	if err == nil || !strings.Contains(err.Error(), file+" lines 11-20") || !strings.Contains(err.Error(), file+" lines 31-40") {
		t.Fatalf("reopened with batches in flight: %v; want both named", err)
	}
	// The server had kept them (say): skip counts them as kept.
	if err := l.settleInFlight("skip"); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[int]bool{10: true, 11: true, 20: true, 25: true, 35: true, 41: false} {
		if l.skip(0, line) != want {
			t.Errorf("after -inflight skip, line %d skipped: %v, want %v", line, !want, want)
		}
	}
	if l.state.Accepted != 9+10+10+10 {
		t.Errorf("accepted %d after skip, want 39", l.state.Accepted)
	}
	// This run's first answer keeps the earlier runs' spans.
	l.acknowledged(batch(0, 41, 50, 10), 10, 0, func() {})
	if !l.skip(0, 35) || !l.skip(0, 45) || l.skip(0, 51) {
		t.Errorf("after this run's first answer: acked %+v, done %d", l.state.Files[0].Acked, l.state.Files[0].Done)
	}

	// resend: the lines are read again and nothing is counted.
	state = t.TempDir()
	l = open()
	l.settleInFlight("")
	l.sending(batch(0, 2, 10, 9))
	l = open()
	if err := l.settleInFlight("resend"); err != nil {
		t.Fatal(err)
	}
	if l.skip(0, 2) || l.state.Accepted != 0 || len(l.state.InFlight) != 0 {
		t.Errorf("after -inflight resend: skips line 2 %v, accepted %d, in flight %v", l.skip(0, 2), l.state.Accepted, l.state.InFlight)
	}

	// A file changed since is refused.
	os.WriteFile(file, []byte("x\ny\n"), 0o644)
	if _, err := openLedger(state, "http://x", "counts", []string{file}, nil, false); err == nil || !strings.Contains(err.Error(), "changed since the interrupted import") {
		t.Errorf("a changed file: %v", err)
	}
}
