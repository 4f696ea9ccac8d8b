// Package storage is flowd's embedded columnar store of minute buckets.
//
// Every observation reaches it as a Delta: an addition to the bucket keyed by
// (metric, H3 cell at the base resolution, minute). Deltas are made durable in
// a write-ahead log, summed in an in-memory table that queries read at once,
// and flushed into immutable, compressed, column-per-file parts that
// background merges keep few. Each flush writes two tiers: minute buckets and
// hourly rollups, each with its own retention. The on-disk format is
// documented in docs/storage-format.md.
package storage

import (
	"fmt"
	"math"
)

// Key identifies one bucket: a metric, a base-resolution H3 cell, a
// sub-key and a time in unix minutes. In the hour tier Minute is the first
// minute of the hour. Sub is 0 for plain metrics; metrics with a second
// dimension use it: the destination cell of a trip, the register of a
// distinct-count sketch.
type Key struct {
	Metric uint32
	Cell   uint64
	Sub    uint64
	Minute int64
}

// Less orders keys the way parts store them: by metric, cell, sub, then time.
func (k Key) Less(o Key) bool {
	if k.Metric != o.Metric {
		return k.Metric < o.Metric
	}
	if k.Cell != o.Cell {
		return k.Cell < o.Cell
	}
	if k.Sub != o.Sub {
		return k.Sub < o.Sub
	}
	return k.Minute < o.Minute
}

func (k Key) String() string {
	return fmt.Sprintf("{metric %d cell %x sub %x minute %d}", k.Metric, k.Cell, k.Sub, k.Minute)
}

// combine merges two values of one bucket of a metric: the maximum for a
// sketch's registers (see vocab.Kind), the sum otherwise.
func combine(isMax bool, a, b int64) int64 {
	if isMax {
		return max(a, b)
	}
	return SatAdd(a, b)
}

// SatAdd returns a+b, or the largest (smallest) int64 where the sum would
// overflow: a count that outgrows int64 stays the largest count instead
// of turning negative. Ingest bounds every value, so only sums over
// absurd spans get here.
func SatAdd(a, b int64) int64 {
	s := a + b
	if (a^s)&(b^s) < 0 { // both operands' signs differ from the sum's
		if a < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return s
}

// Delta is an addition of Value to the bucket Key.
type Delta struct {
	Key
	Value int64
}
