package storage

import (
	"testing"
	"time"
)

// TestFlushKeepsOldRowsInTheHourTierOnly flushes rows of three ages with
// retentions of a day (minutes) and a week (hours): the recent row goes to
// both tiers, the three-day-old one to the hour tier only, the ten-day-old
// one to neither, and the flush says how many rows each tier left out.
func TestFlushKeepsOldRowsInTheHourTierOnly(t *testing.T) {
	now := time.Now()
	logs := &logRecorder{}
	opts := quietOptions()
	opts.Logf = logs.logf
	opts.Now = func() time.Time { return now }
	opts.Retention = [numTiers]time.Duration{24 * time.Hour, 7 * 24 * time.Hour}
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	id, _ := s.MetricID("count_car")
	minute := func(ago time.Duration) int64 { return now.Add(-ago).Unix() / 60 }
	if got := s.RetentionCutoff(TierMinute); got != minute(24*time.Hour) {
		t.Fatalf("minute cutoff %d, want %d", got, minute(24*time.Hour))
	}
	if err := s.Add([]Delta{
		{Key{Metric: id, Cell: 1, Minute: minute(0)}, 1},
		{Key{Metric: id, Cell: 1, Minute: minute(3 * 24 * time.Hour)}, 10},
		{Key{Metric: id, Cell: 1, Minute: minute(10 * 24 * time.Hour)}, 100},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if total, _ := sumAll(t, s, TierMinute, "count_car"); total != 1 {
		t.Errorf("minute tier: %d, want only the recent row, 1", total)
	}
	if total, _ := sumAll(t, s, TierHour, "count_car"); total != 11 {
		t.Errorf("hour tier: %d, want the recent and the three-day-old rows, 11", total)
	}
	if logs.find("2 minute rows", "retention") == "" || logs.find("1 hour rows", "retention") == "" {
		t.Errorf("the flush did not say how many rows each tier left out:\n%s", logs)
	}
}
