package storage

import (
	"fmt"
	"math"
)

// deriveDayTier writes the day tier from the hour tier's parts when the
// store has hour parts and no day part: a store of a flowd from before
// the day tier. The part covers the WAL segments the hour parts cover, so
// that replay then gives the day tier the records it gives the hour tier,
// and the two tiers hold the same sums. An interrupted derivation leaves
// a tmp- directory, removed at the next start, which derives again.
func (s *Store) deriveDayTier() error {
	if len(s.parts[TierDay]) > 0 || len(s.parts[TierHour]) == 0 {
		return nil
	}
	srcs := s.parts[TierHour]
	its := make([]*partIterator, len(srcs))
	var walSeq uint64
	for i, p := range srcs {
		its[i] = &partIterator{p: p}
		walSeq = max(walSeq, p.meta.WALSeq)
	}
	w, err := s.startPart(TierDay, walSeq, nil, zstdMerge)
	if err != nil {
		return fmt.Errorf("deriving the day tier: %w", err)
	}
	cutoff := s.RetentionCutoff(TierDay)
	var pending Key
	var sum int64
	have := false
	// The hour rows come in key order, so the hours of one day of one
	// series are consecutive: each day's row is their sum (or maximum).
	add := func(k Key, v int64) error {
		k.Minute = TierDay.Truncate(k.Minute)
		if k.Minute < cutoff {
			return nil
		}
		if have && k == pending {
			sum = combine(s.names.IsMax(k.Metric), sum, v)
			return nil
		}
		if have {
			if err := w.add(pending, sum); err != nil {
				return err
			}
		}
		pending, sum, have = k, v, true
		return nil
	}
	if _, err := mergeRows(its, math.MinInt64, s.names.IsMax, add, nil); err != nil {
		w.abort()
		return fmt.Errorf("deriving the day tier: %w", err)
	}
	if have {
		if err := w.add(pending, sum); err != nil {
			w.abort()
			return fmt.Errorf("deriving the day tier: %w", err)
		}
	}
	p, err := s.finishPart(w)
	if err != nil {
		return fmt.Errorf("deriving the day tier: %w", err)
	}
	if p != nil {
		s.parts[TierDay] = append(s.parts[TierDay], p)
		s.noteManifest()
		s.opts.Logf("storage: derived the day tier from %d hour parts: %d rows", len(srcs), p.meta.Rows)
	}
	s.flushed[TierDay] = walSeq
	return nil
}
