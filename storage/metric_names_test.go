package storage

import (
	"errors"
	"testing"

	"github.com/flowd/flowd/vocab"
)

// TestMetricNamesCapped fills a store's metric names to MaxMetrics with
// names that arrive from outside (detector classes): a further one is
// refused with ErrTooManyMetrics, a pair is created whole or not at all,
// and the metrics every flowd keeps are never refused.
func TestMetricNamesCapped(t *testing.T) {
	dir := t.TempDir()
	opts := quietOptions()
	opts.MaxMetrics = 4
	s := openTestStore(t, dir, opts)
	if _, err := s.MetricIDs("count_car", "speed_car"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MetricID("count_bus"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MetricIDs("count_bike", "speed_bike"); !errors.Is(err, ErrTooManyMetrics) {
		t.Fatalf("a pair past the cap: %v, want ErrTooManyMetrics", err)
	}
	if _, ok := s.LookupMetric("count_bike"); ok {
		t.Fatal("half of a refused pair was created")
	}
	if _, err := s.MetricID("speed_bus"); err != nil {
		t.Fatalf("the fourth metric: %v", err)
	}
	if _, err := s.MetricID("count_tram"); !errors.Is(err, ErrTooManyMetrics) {
		t.Fatalf("the fifth metric: %v, want ErrTooManyMetrics", err)
	}
	if _, err := s.MetricID(vocab.SwipesIn); err != nil {
		t.Fatalf("a metric every flowd keeps, past the cap: %v", err)
	}
	if id, err := s.MetricID("count_car"); err != nil || id != 0 {
		t.Fatalf("an existing metric: %d, %v", id, err)
	}
	s.Close()
	s = openTestStore(t, dir, opts)
	defer s.Close()
	if n := len(s.Metrics()); n != 5 {
		t.Fatalf("%d metrics after reopening, want 5", n)
	}
	if _, err := s.MetricID("count_tram"); !errors.Is(err, ErrTooManyMetrics) {
		t.Fatalf("after reopening: %v, want ErrTooManyMetrics", err)
	}
}
