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
	// replaces it. An error fails the flush, which is retried. rows is
	// reused once Flushed returns.
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
	// The metric of the last row: rows come in metric order.
	metric uint32
	name   string
	spread bool
}

// newFlushRows returns the collector of a flush of tier t from mem, over
// the rows slice of tier t's last flush (flushes take turns under
// flushMu).
func (s *Store) newFlushRows(t Tier, mem *memtable) *flushRows {
	if s.opts.Watch == nil || t == TierDay { // the day tier is derived, kept here only
		return nil
	}
	rows := s.watchRows[t][:0]
	if n := mem.rowCount(t); cap(rows) < n {
		rows = make([]Row, 0, n)
	}
	return &flushRows{t: t, rows: rows}
}

// note records row k of value v.
func (f *flushRows) note(s *Store, k Key, v int64) {
	if f == nil {
		return
	}
	if f.name == "" || k.Metric != f.metric {
		f.metric, f.name, f.spread = k.Metric, s.names.Name(k.Metric), s.names.IsSpread(k.Metric)
	}
	r := Row{Metric: f.name, Cell: k.Cell, Sub: k.Sub, Minute: k.Minute, Span: f.t.Width(), Value: v}
	if f.t == TierMinute && f.spread && k.Sub != 0 {
		r.Sub, r.Span = 0, int64(k.Sub) // a run of Sub minutes
	}
	if f.t != TierMinute && f.spread {
		r.Sub = 0 // the hour's or the day's share, whatever the runs' lengths
	}
	f.rows = append(f.rows, r)
}

// noteRun records the rows of key k at minutes, of values.
func (f *flushRows) noteRun(s *Store, k SeriesKey, minutes, values []int64) {
	if f == nil {
		return
	}
	for i, m := range minutes {
		f.note(s, Key{Metric: k.Metric, Cell: k.Cell, Sub: k.Sub, Minute: m}, values[i])
	}
}

// report hands the rows to the watch, with the WAL segments they cover.
func (f *flushRows) report(s *Store, seq uint64) error {
	if f == nil || len(f.rows) == 0 {
		return nil
	}
	s.watchRows[f.t] = f.rows[:0]
	return s.opts.Watch.Flushed(f.t, s.flushedSeq(f.t), seq, f.rows)
}

// flushedSeq is the last WAL segment whose deltas tier t's flushes wrote.
func (s *Store) flushedSeq(t Tier) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.flushed[t]
}
