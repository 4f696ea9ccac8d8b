package storage

import (
	"fmt"
	"time"
)

// Tier is a bucket width with its own parts and retention.
type Tier int

// The tiers: minute buckets, and hourly and daily (UTC days) rollups of
// the same deltas. The day tier lets a window of months or a year be read
// as a row per cell and day rather than per cell and hour; it keeps what
// the hour tier keeps (Options.Retention of the hour tier).
const (
	TierMinute Tier = iota
	TierHour
	TierDay
	numTiers
)

// NumTiers is the number of tiers.
const NumTiers = int(numTiers)

func (t Tier) String() string {
	switch t {
	case TierMinute:
		return "minute"
	case TierHour:
		return "hour"
	case TierDay:
		return "day"
	}
	panic(fmt.Sprintf("BUG: unknown tier %d", int(t)))
}

// The bucket widths of the hour and day tiers, in minutes.
const (
	hourWidth = 60
	dayWidth  = 24 * 60
)

// Width is the bucket width of the tier in minutes.
func (t Tier) Width() int64 {
	switch t {
	case TierHour:
		return hourWidth
	case TierDay:
		return dayWidth
	}
	return 1
}

// tierNamed returns the tier whose String is name.
func tierNamed(name string) (Tier, bool) {
	for t := range numTiers {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

// Truncate returns the first minute of the tier's bucket holding minute m.
// Each tier divides by its width as a constant, which the compiler turns
// into a multiplication (passed as an argument, even to a function
// inlined, it stays a division): a flush truncates every point's minute
// for each tier, and a 64-bit division takes tens of cycles.
func (t Tier) Truncate(m int64) int64 {
	var r int64
	switch t {
	case TierHour:
		if r = m % hourWidth; r < 0 {
			r += hourWidth
		}
	case TierDay:
		if r = m % dayWidth; r < 0 {
			r += dayWidth
		}
	}
	return m - r
}

// RetentionCutoff returns the first minute tier t keeps now: buckets (of
// the tier's width) that start earlier are past its retention and dropped
// by flushes and merges.
func (s *Store) RetentionCutoff(t Tier) int64 {
	return s.opts.Now().Add(-s.opts.Retention[t]).Unix() / 60
}

// Retention returns how long tier t keeps buckets.
func (s *Store) Retention(t Tier) time.Duration {
	return s.opts.Retention[t]
}

// TierFor picks the tier for a query from its range and step, in minutes:
// hourly buckets when the step and start are whole hours, or when the range
// reaches past the minute tier's retention.
func (s *Store) TierFor(from, step int64) Tier {
	if step%60 == 0 && from%60 == 0 {
		return TierHour
	}
	if from < s.RetentionCutoff(TierMinute) {
		return TierHour
	}
	return TierMinute
}
