package storage

import (
	"errors"
	"fmt"
	"slices"

	"github.com/flowd/flowd/vocab"
)

// Scan calls fn for every stored bucket of the metric in tier t whose cell
// lies in ranges (sorted, disjoint, base resolution) and whose minute is in
// [from, to). A bucket may be reported more than once (from the memtable and
// from parts not merged yet): callers sum (or, for max metrics, take the
// maximum). An unknown metric yields nothing.
func (s *Store) Scan(t Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, minute, value int64)) error {
	return s.ScanSub(t, metric, ranges, from, to, func(cell, _ uint64, minute, value int64) {
		fn(cell, minute, value)
	})
}

// ScanSub is Scan for metrics with a sub-key, which it passes on.
func (s *Store) ScanSub(t Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) error {
	return s.scan(t, metric, ranges, from, to, rowSink{fn: fn})
}

// SumSteps adds the value of every bucket of the metric in tier t, ranges
// and [from, to) into sums[(minute-from)/step]: a series query without a
// call per row. The metric must add up (not a max metric).
func (s *Store) SumSteps(t Tier, metric string, ranges []vocab.CellRange, from, to, step int64, sums []int64) error {
	if int64(len(sums)) < (to-from+step-1)/step {
		panic(fmt.Sprintf("BUG: %d sums for %d steps", len(sums), (to-from+step-1)/step))
	}
	if vocab.KindOf(metric) == vocab.Sketch {
		panic("BUG: SumSteps of a max metric " + metric)
	}
	if len(ranges) < minSplitRanges || scanDecoders < 2 {
		return s.scan(t, metric, ranges, from, to, rowSink{sums: sums, step: step})
	}
	// Many ranges (a city's cells): the two halves are read at once, on
	// two cores, each into steps of its own, then added.
	half := len(ranges) / 2
	other := make([]int64, len(sums))
	done := make(chan error, 1)
	go func() { done <- s.scan(t, metric, ranges[half:], from, to, rowSink{sums: other, step: step}) }()
	err := s.scan(t, metric, ranges[:half], from, to, rowSink{sums: sums, step: step})
	if err2 := <-done; err == nil {
		err = err2
	}
	for i, v := range other {
		sums[i] = SatAdd(sums[i], v)
	}
	return err
}

// minSplitRanges is the fewest cell ranges SumSteps reads in two halves at
// once.
const minSplitRanges = 16

func (s *Store) scan(t Tier, metric string, ranges []vocab.CellRange, from, to int64, out rowSink) error {
	id, ok := s.names.Lookup(metric)
	if !ok || len(ranges) == 0 {
		return nil
	}
	out.spread = t == TierMinute && s.names.IsSpread(id)
	fn := out.fn
	if fn == nil {
		fn = func(_, _ uint64, minute, v int64) {
			i := (minute - from) / out.step
			out.sums[i] = SatAdd(out.sums[i], v)
		}
	}
	s.mu.RLock()
	s.mem.scan(t, id, ranges, from, to, fn)
	for _, f := range s.frozen {
		if !f.done[t] {
			f.mem.scan(t, id, ranges, from, to, fn)
		}
	}
	parts := slices.Clone(s.parts[t])
	for _, p := range parts {
		p.incRef()
	}
	s.mu.RUnlock()
	defer func() {
		for _, p := range parts {
			p.decRef()
		}
	}()
	for _, p := range parts {
		if err := p.scan(s.blocks, id, ranges, from, to, out); err != nil {
			var pe *PartError
			if errors.As(err, &pe) {
				s.setAside(t, p, err)
				continue
			}
			return err
		}
	}
	return nil
}

// setAside removes a part found damaged while serving and quarantines it.
func (s *Store) setAside(t Tier, p *part, cause error) {
	s.mu.Lock()
	i := slices.Index(s.parts[t], p)
	if i >= 0 {
		s.parts[t] = slices.Delete(s.parts[t], i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		s.noteManifest()
		s.quarantine(t, p.dir, cause)
		p.decRef()
	}
}
