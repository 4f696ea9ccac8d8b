package ingest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
)

// TestNewClassesPastTheMetricCapAreLineErrors counts four detector
// classes into a store that keeps at most six metrics: three classes (two
// metrics each) are kept, the fourth class's line is refused naming the
// flag, and the batch commits.
func TestNewClassesPastTheMetricCapAreLineErrors(t *testing.T) {
	st, err := storage.Open(filepath.Join(t.TempDir(), "store"), storage.Options{MaxMetrics: 6, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := geo.New(9)
	if err := reg.PutSensors([]geo.Sensor{{ID: "C1", Lat: 30.25, Lng: 120.16}}); err != nil {
		t.Fatal(err)
	}
	b := &Bucketer{Registry: reg, Store: st, Res: 9}
	bt := b.NewBatch()
	defer bt.Release()
	now := time.Now().UnixMilli()
	for i, class := range []string{"car", "bus", "bike", "tram"} {
		if err := bt.AddCount(i+1, &Count{Time: now, Sensor: "C1", Class: class, Count: 1, Interval: 60}); err != nil {
			t.Fatalf("%s: %v", class, err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	rej := bt.Rejected()
	if bt.Accepted() != 3 || len(rej) != 1 || rej[0].Line != 4 || rej[0].Field != "class" || !strings.Contains(rej[0].Reason, "-max-metrics") {
		t.Fatalf("%d accepted, rejected %+v; want 3, and line 4's class refused naming -max-metrics", bt.Accepted(), rej)
	}
}
