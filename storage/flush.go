package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// frozenTable is a memtable whose WAL segments are closed and which is being
// written into parts. Each tier is dropped from it once its part is in place.
type frozenTable struct {
	mem    *memtable
	walSeq uint64
	done   [numTiers]bool
}

func (s *Store) requestFlush() {
	select {
	case s.flushNow <- struct{}{}:
	default:
	}
}

func (s *Store) backgroundLoop() {
	defer s.wg.Done()
	ticker := time.NewTicker(s.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-s.flushNow:
			// Batches applied to a full memtable before its rotation each
			// ask for a flush, and the request outlives the flush it asked
			// for: flushing then would write the next memtable while it
			// is still filling, a small part to merge again.
			if !s.flushDue() {
				continue
			}
			// The interval counts from this flush: the data it leaves in
			// memory is younger.
			ticker.Reset(s.opts.FlushInterval)
		case <-s.stop:
			return
		}
		s.maintain()
	}
}

// flushDue reports whether the memtable is full or an earlier flush is
// still to be written.
func (s *Store) flushDue() bool {
	s.mu.RLock()
	m, frozen := s.mem, len(s.frozen)
	s.mu.RUnlock()
	return frozen > 0 || m.bytes() >= s.opts.MemtableBytes
}

// maintain flushes, cuts the WAL, merges and applies retention.
func (s *Store) maintain() {
	if err := s.Flush(); err != nil {
		s.opts.Logf("storage: flush failed, will retry: %v", err)
		return
	}
	// A memtable that fills while merges run is flushed between them, so
	// that it stays near its budget however long the merges take.
	failed := false
	flushIfDue := func() {
		if !failed && s.flushDue() {
			if err := s.Flush(); err != nil {
				s.opts.Logf("storage: flush failed, will retry: %v", err)
				failed = true // not again before the next maintenance
			}
		}
	}
	for t := range numTiers {
		if err := s.mergeTierThen(t, flushIfDue); err != nil {
			s.opts.Logf("storage: merge of %s parts failed, will retry: %v", t, err)
		}
	}
	if s.idle() {
		for t := range numTiers {
			if err := s.compactTier(t); err != nil {
				s.opts.Logf("storage: compaction of %s parts failed, will retry: %v", t, err)
			}
		}
	}
	s.applyRetention()
}

// Flush writes the memtable (and any earlier flush that failed) into parts
// and removes the WAL segments they cover.
func (s *Store) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	reply := make(chan rotation, 1)
	select {
	case s.rotates <- reply:
	case <-s.stop:
		return ErrClosed
	}
	if r := <-reply; r.err != nil {
		return r.err
	}
	return s.flushFrozen()
}

func (s *Store) flushFrozen() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("flush", "all tiers")))
	defer pprof.SetGoroutineLabels(context.Background())
	s.mu.RLock()
	pending := slices.Clone(s.frozen)
	s.mu.RUnlock()
	for _, f := range pending {
		start := time.Now()
		// Both tiers' parts are written in one pass over the memtable, and
		// installed in tier order, each marked done as it is.
		var ws [numTiers]*partWriter
		var fns [numTiers]runFn
		var expired [numTiers]int
		var watched [numTiers]*flushRows
		abort := func(err error) error {
			for _, w := range ws {
				if w != nil {
					w.abort()
				}
			}
			msg := err.Error()
			s.lastErr.Store(&msg)
			s.metrics.flushed(start, err)
			return err
		}
		for t := range numTiers {
			if f.done[t] || f.mem.rowCount(t) == 0 {
				continue
			}
			w, err := s.startPart(t, f.walSeq, nil, nil)
			if err != nil {
				return abort(err)
			}
			ws[t] = w
			cutoff := s.RetentionCutoff(t)
			watched[t] = s.newFlushRows(t, f.mem)
			fns[t] = func(k SeriesKey, minutes, values []int64) error {
				old := 0 // the rows past retention: the first, in minute order
				for old < len(minutes) && minutes[old] < cutoff {
					old++
				}
				expired[t] += old
				minutes, values = minutes[old:], values[old:]
				watched[t].noteRun(s, k, minutes, values)
				return w.addRun(k, minutes, values)
			}
		}
		if err := f.mem.eachTiers(fns); err != nil {
			return abort(err)
		}
		for t := range numTiers {
			if err := watched[t].report(s, f.walSeq); err != nil { // before the part is in place
				return abort(err)
			}
		}
		for t := range numTiers {
			if f.done[t] {
				continue
			}
			var p *part
			if w := ws[t]; w != nil {
				var err error
				ws[t] = nil
				if p, err = s.finishPart(w); err != nil {
					return abort(err)
				}
				if expired[t] > 0 {
					s.logExpired(t, expired[t])
				}
			}
			s.mu.Lock()
			if p != nil {
				s.parts[t] = append(s.parts[t], p)
			}
			s.flushed[t] = max(s.flushed[t], f.walSeq)
			f.done[t] = true
			s.mu.Unlock()
			if p != nil {
				s.noteManifest()
				s.failpoint(FailpointFlushPartInstalled)
			}
		}
		s.mu.Lock()
		s.frozen = slices.DeleteFunc(s.frozen, func(x *frozenTable) bool { return x == f })
		s.mu.Unlock()
		f.mem.release() // no scan can reach it now
		s.mu.Lock()
		// Kept, emptied, for the next rotation: its index, series and
		// chunk lists are already grown to a memtable's size.
		if s.spare == nil {
			s.spare = f.mem
		}
		s.mu.Unlock()
		if err := retireWALUpTo(filepath.Join(s.dir, "wal"), f.walSeq); err != nil {
			return err
		}
		s.metrics.flushed(start, nil)
	}
	return nil
}

// logExpired says how many rows a flush left out of tier t for age: the
// minute tier's are in the hour tier (ingest counts them as hourly_only);
// the hour tier's are gone (ingest refuses them, so only a replay of an
// old WAL can bring some).
func (s *Store) logExpired(t Tier, n int) {
	if t == TierMinute {
		s.opts.Logf("storage: flush: %d minute rows older than the minute retention of %v kept in the hour tier only", n, s.opts.Retention[t])
		return
	}
	s.opts.Logf("storage: flush: %d hour rows older than the hour retention of %v dropped", n, s.opts.Retention[t])
}

// startPart starts a new part of tier t, written in a temporary directory
// of the tier until finishPart.
func (s *Store) startPart(t Tier, walSeq uint64, replaces []string, enc *zstd.Encoder) (*partWriter, error) {
	id := s.nextPartID.Add(1)
	w, err := newPartWriter(filepath.Join(s.tierDir(t), fmt.Sprintf("tmp-%016x", id)), t, enc)
	if err != nil {
		return nil, err
	}
	w.meta.WALSeq = walSeq
	w.meta.Replaces = replaces
	w.final = filepath.Join(s.tierDir(t), fmt.Sprintf("%016x", id))
	return w, nil
}

// finishPart makes the part w wrote durable and opens it; a part without
// rows (every row was past retention) is dropped, and nil returned.
func (s *Store) finishPart(w *partWriter) (*part, error) {
	if !w.hasLast {
		w.abort()
		return nil, nil
	}
	return w.finish(w.final)
}
