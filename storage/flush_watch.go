package storage

// FlushWatch follows the rows each flush writes, for a copy of the store
// kept elsewhere (the remote tier). It hears of a tier's rows before the
// flush's part is in place, so that a crash cannot lose them: until the
// part is in place the WAL holds the rows, and the flush after the replay
// tells them again, covering the same WAL segments and more.
type FlushWatch interface {
	// Flushed records durably the rows a flush writes into tier t: the
	// deltas of the WAL segments after afterSeq up to seq. A later call
	// for the same tier with the same afterSeq holds them all again and
	// replaces it. An error fails the flush, which is retried.
	Flushed(t Tier, afterSeq, seq uint64, rows []Row) error
}

// Row is one row a flush writes: Value added to the buckets of a metric
// in a cell from Minute for Span minutes (1, a spread reading's run of up
// to 60, or 60 for an hour row), under sub-key Sub (a trip's destination,
// a sketch's register; 0 otherwise). A run's Value is the sum of its
// minutes' even shares.
type Row struct {
	Metric string
	Cell   uint64
	Sub    uint64
	Minute int64
	Span   int64
	Value  int64
}

// flushRows collects the rows of one tier of one flush for the watch.
type flushRows struct {
	t    Tier
	rows []Row
}

func (s *Store) newFlushRows(t Tier) *flushRows {
	if s.opts.Watch == nil {
		return nil
	}
	return &flushRows{t: t}
}

// note records row k of value v.
func (f *flushRows) note(s *Store, k Key, v int64) {
	if f == nil {
		return
	}
	r := Row{Metric: s.names.Name(k.Metric), Cell: k.Cell, Sub: k.Sub, Minute: k.Minute, Span: f.t.Width(), Value: v}
	if f.t == TierMinute && s.names.IsSpread(k.Metric) && k.Sub != 0 {
		r.Sub, r.Span = 0, int64(k.Sub) // a run of Sub minutes
	}
	if f.t == TierHour && s.names.IsSpread(k.Metric) {
		r.Sub = 0 // the hour's share, whatever the run's length
	}
	f.rows = append(f.rows, r)
}

// report hands the rows to the watch, with the WAL segments they cover.
func (f *flushRows) report(s *Store, seq uint64) error {
	if f == nil || len(f.rows) == 0 {
		return nil
	}
	return s.opts.Watch.Flushed(f.t, s.flushedSeq(f.t), seq, f.rows)
}

// flushedSeq is the last WAL segment whose deltas tier t's flushes wrote.
func (s *Store) flushedSeq(t Tier) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.flushed[t]
}
