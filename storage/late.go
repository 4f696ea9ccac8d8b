package storage

// LateWatch is told, at each flush, of the buckets the flush changes that a
// follower of finished buckets (the remote tier) has already taken: rows
// whose minute lies before its cut. It hears of them before the flush's
// part is in place, so a crash cannot lose the news: the WAL still holds
// the rows and the next flush tells again.
type LateWatch interface {
	// Cut returns the first minute not yet taken as finished; a flushed
	// minute row before it, or an hour row of an hour ending at or before
	// it, is late.
	Cut() int64
	// Late records the late buckets durably; an error fails the flush,
	// which is retried.
	Late(t Tier, buckets []LateBucket) error
}

// LateBucket names the buckets [From, To) of a metric in a cell (minutes;
// in the hour tier whole hours) that a flush changed after they were taken.
type LateBucket struct {
	Metric   string
	Cell     uint64
	From, To int64
}

// lateRows collects the late rows of one tier of one flush, one entry per
// metric, cell and span (a sketch's registers or a trip's destinations
// make many rows of one bucket).
type lateRows struct {
	t      Tier
	before int64
	seen   map[LateBucket]bool
	list   []LateBucket
}

func (s *Store) newLateRows(t Tier) *lateRows {
	if s.opts.Late == nil {
		return nil
	}
	before := s.opts.Late.Cut()
	if t == TierHour {
		before = TierHour.Truncate(before)
	}
	return &lateRows{t: t, before: before, seen: map[LateBucket]bool{}}
}

// note records row k if it is late.
func (l *lateRows) note(s *Store, k Key) {
	if l == nil || k.Minute >= l.before {
		return
	}
	b := LateBucket{Cell: k.Cell, From: k.Minute, To: k.Minute + l.t.Width()}
	if l.t == TierMinute && k.Sub > 1 && k.Sub <= maxSpread && s.names.IsSpread(k.Metric) {
		b.To = k.Minute + int64(k.Sub) // a run of Sub minutes
	}
	b.Metric = s.names.Name(k.Metric)
	if !l.seen[b] {
		l.seen[b] = true
		l.list = append(l.list, b)
	}
}

// report hands the late rows to the watch.
func (l *lateRows) report(s *Store) error {
	if l == nil || len(l.list) == 0 {
		return nil
	}
	return s.opts.Late.Late(l.t, l.list)
}
