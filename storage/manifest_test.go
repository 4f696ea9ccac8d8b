package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPartRemovedByHandIsReported removes a part's directory while the
// store is closed: the next start names it, with its rows and minutes, and
// counts it, rather than serving smaller totals without a word. Parts that
// went away on purpose (merged, past retention) are not reported.
func TestPartRemovedByHandIsReported(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := now
	opts := quietOptions()
	opts.MergeFanIn = 2
	opts.Now = func() time.Time { return clock }
	opts.Retention = [numTiers]time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	old := now.Add(-3*24*time.Hour).Unix() / 60
	addParts(t, s, id, 1, 10, old) // past the minute retention: removed whole
	s.applyRetention()
	addParts(t, s, id, 4, 100, now.Unix()/60-200) // merged into fewer parts
	s.maintain()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	logs := &logRecorder{}
	opts.Logf = logs.logf
	s = openTestStore(t, dir, opts)
	if st := s.Stats(); st.PartsMissing != 0 {
		t.Fatalf("merges and retention reported as %d missing parts:\n%s", st.PartsMissing, logs)
	}
	s.mu.RLock()
	victim := s.parts[TierMinute][0]
	s.mu.RUnlock()
	rows := victim.meta.Rows
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(victim.dir); err != nil {
		t.Fatal(err)
	}
	logs = &logRecorder{}
	opts.Logf = logs.logf
	s = openTestStore(t, dir, opts)
	st := s.Stats()
	if st.PartsMissing != 1 {
		t.Fatalf("a part removed by hand: %d reported missing, want 1:\n%s", st.PartsMissing, logs)
	}
	if line := logs.find(filepath.Base(victim.dir), "missing", "rows"); line == "" {
		t.Fatalf("no log line names the missing part %s:\n%s", victim.dir, logs)
	}
	if st.LastError == "" {
		t.Fatal("the missing part is not the last storage error")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("reported: %s (%d rows)", logs.find("missing"), rows)

	// Reported once: the manifest now lists what is there.
	s = openTestStore(t, dir, opts)
	defer s.Close()
	if st := s.Stats(); st.PartsMissing != 0 {
		t.Fatalf("the same loss reported again on the next start")
	}
}
