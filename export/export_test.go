package export

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDefaultMetrics: the cell tables take counts, not sketches, speed
// sums or the trip metrics the OD table carries.
func TestDefaultMetrics(t *testing.T) {
	listed := []string{"trips", "swipes_out", "hll_cards", "count_car", "speed_car", "trip_seconds", "unmatched_in", "unmatched_out", "footfall_in", "swipes_in"}
	want := []string{"count_car", "footfall_in", "swipes_in", "swipes_out"}
	if got := defaultMetrics(listed); !slices.Equal(got, want) {
		t.Errorf("defaultMetrics = %v, want %v", got, want)
	}
}

// TestWriteFileReplacesWhole: a file written again is replaced whole, and
// no temporary file is left beside it.
func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{"a longer first version\n", "second\n"} {
		if err := writeFile(dir, "stations.csv", []byte(body)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "stations.csv"))
		if err != nil || string(got) != body {
			t.Errorf("read back %q (%v), want %q", got, err, body)
		}
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
		t.Errorf("files left: %v", names)
	}
	if err := writeFile(filepath.Join(dir, "missing"), "x.csv", nil); err == nil {
		t.Error("writing into a directory that does not exist: no error")
	}
}

// TestWalkPositions finds every position of nested GeoJSON coordinates.
func TestWalkPositions(t *testing.T) {
	poly := []any{[]any{[]any{120.1, 30.2}, []any{120.3, 30.4}, []any{120.1, 30.2}}}
	var n int
	var maxLng float64
	walkPositions(poly, func(lng, lat float64) { n++; maxLng = max(maxLng, lng) })
	if n != 3 || maxLng != 120.3 {
		t.Errorf("%d positions, largest lng %g; want 3 and 120.3", n, maxLng)
	}
}
