package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		pct         int
		floor, live uint64
		want        int
	}{
		{30, 0, 10 * mb, 30},         // no floor
		{30, 32 * mb, 100 * mb, 30},  // live × 1.3 above the floor
		{30, 32 * mb, 16 * mb, 100},  // 16 → 32
		{30, 32 * mb, 30 * mb, 30},   // 30 × 1.3 = 39, above the floor
		{30, 48 * mb, 12 * mb, 300},  // 12 → 48
		{30, 48 * mb, 1, maxPercent}, // bounded
		{30, 48 * mb, 0, maxPercent}, // nothing live
		{-1, 48 * mb, 12 * mb, -1},   // collection off stays off
		{100, 48 * mb, 24 * mb, 100}, // 24 × 2 = 48
		{100, 48 * mb, 20 * mb, 140}, // 20 → 48
	} {
		if got := percentFor(c.pct, c.floor, c.live); got != c.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", c.pct, c.floor, c.live, got, c.want)
		}
	}
}

// churn allocates n bytes of garbage in 64-KiB pieces beside a small live
// heap and returns the collections it took.
func churn(n int) uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	var keep [][]byte
	for i := 0; i < n>>16; i++ {
		b := make([]byte, 64<<10)
		b[0] = byte(i)
		if i%64 == 0 {
			keep = append(keep, b) // a live heap that grows a little
		}
	}
	runtime.KeepAlive(keep)
	runtime.ReadMemStats(&ms)
	return ms.NumGC - before
}

// TestFloorSparesCollections: a small heap churning 256 MB collects far
// less often with a floor of 64 MB than at GOGC 30 alone, and a floor
// below the heap's own goal changes nothing.
func TestFloorSparesCollections(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	Keep(30, 0)
	runtime.GC()
	plain := churn(256 << 20)
	Keep(30, 64<<20)
	runtime.GC()
	floored := churn(256 << 20)
	Keep(30, 1<<20) // under the live heap's goal: GOGC 30 as before
	runtime.GC()
	low := churn(256 << 20)
	Keep(100, 0)
	t.Logf("collections churning 256 MB: GOGC 30 %d, with a 64-MB floor %d, with a 1-MB floor %d", plain, floored, low)
	if floored*4 > plain {
		t.Errorf("with a 64-MB floor %d collections, want under a quarter of GOGC 30's %d", floored, plain)
	}
	if low*2 < plain {
		t.Errorf("a 1-MB floor ran %d collections, want about GOGC 30's %d", low, plain)
	}
}
