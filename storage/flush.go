package storage

import (
	"fmt"
	"os"
	"path/filepath"
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
		case <-s.stop:
			return
		}
		s.maintain()
	}
}

// maintain flushes, cuts the WAL, merges and applies retention.
func (s *Store) maintain() {
	if err := s.Flush(); err != nil {
		s.opts.Logf("storage: flush failed, will retry: %v", err)
		return
	}
	for t := range numTiers {
		if err := s.mergeTier(t); err != nil {
			s.opts.Logf("storage: merge of %s parts failed, will retry: %v", t, err)
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
	s.mu.RLock()
	pending := slices.Clone(s.frozen)
	s.mu.RUnlock()
	for _, f := range pending {
		for t := range numTiers {
			if f.done[t] {
				continue
			}
			var p *part
			if f.mem.rowCount(t) > 0 {
				var err error
				p, err = s.writePart(t, f.walSeq, nil, zstdFlush, func(add func(Key, int64) error) error {
					return f.mem.each(t, add)
				})
				if err != nil {
					msg := err.Error()
					s.lastErr.Store(&msg)
					return err
				}
			}
			s.mu.Lock()
			if p != nil {
				s.parts[t] = append(s.parts[t], p)
			}
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
		if err := removeWALUpTo(filepath.Join(s.dir, "wal"), f.walSeq); err != nil {
			return err
		}
	}
	return nil
}

// removeWALUpTo deletes the WAL segments numbered at most seq.
func removeWALUpTo(dir string, seq uint64) error {
	seqs, err := walSegments(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, n := range seqs {
		if n > seq {
			break
		}
		if err := os.Remove(filepath.Join(dir, segmentName(n))); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// writePart writes the rows that each yields, in key order, as a new part
// of tier t and opens it.
func (s *Store) writePart(t Tier, walSeq uint64, replaces []string, enc *zstd.Encoder, each func(add func(Key, int64) error) error) (*part, error) {
	id := s.nextPartID.Add(1)
	name := fmt.Sprintf("%016x", id)
	tmp := filepath.Join(s.tierDir(t), "tmp-"+name)
	w, err := newPartWriter(tmp, t, enc)
	if err != nil {
		return nil, err
	}
	w.meta.WALSeq = walSeq
	w.meta.Replaces = replaces
	if err := each(w.add); err != nil {
		w.abort()
		return nil, err
	}
	return w.finish(filepath.Join(s.tierDir(t), name))
}
