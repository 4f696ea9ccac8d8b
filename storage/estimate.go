package storage

import (
	"slices"

	"github.com/flowd/flowd/vocab"
)

// RowsToRead returns how many rows a scan of metric in tier t over ranges
// and [from, to) would read: the rows of every part block it would decode,
// found in the parts' sparse indexes without reading a block, and the
// memtable's points of the metric's series in ranges. It is the work a
// query costs, so that a long range answered by the hour tier costs its
// hours, not its minutes, and a coarser resolution over the same cells
// costs what a finer one does.
func (s *Store) RowsToRead(t Tier, metric string, ranges []vocab.CellRange, from, to int64) int64 {
	id, ok := s.names.Lookup(metric)
	if !ok || len(ranges) == 0 {
		return 0
	}
	if t == TierMinute && s.names.IsSpread(id) {
		from = TierHour.Truncate(from) // a spread row of from's hour may cover it
	}
	var n int64
	s.mu.RLock()
	n += s.mem.pointsOf(t, id, ranges)
	for _, f := range s.frozen {
		if !f.done[t] {
			n += f.mem.pointsOf(t, id, ranges)
		}
	}
	parts := slices.Clone(s.parts[t])
	for _, p := range parts {
		p.incRef()
	}
	s.mu.RUnlock()
	for _, p := range parts {
		last := -1
		p.eachStep(id, ranges, from, to, func(st scanStep) {
			if st.block != last {
				n += int64(p.headers[st.block].Rows)
				last = st.block
			}
		})
		p.decRef()
	}
	return n
}

// pointsOf counts the points a scan of tier t reads of the metric's series
// whose cell lies in ranges: all their points, whatever their minutes.
func (m *memtable) pointsOf(t Tier, metric uint32, ranges []vocab.CellRange) int64 {
	var n int64
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.both.pointsOf(metric, ranges) + sh.only[t].pointsOf(metric, ranges)
		sh.mu.Unlock()
	}
	return n
}

func (t *seriesTable) pointsOf(metric uint32, ranges []vocab.CellRange) int64 {
	var n int64
	for _, s := range t.byMetric[metric] {
		if s < 0 {
			s = ^s // the second values of series ^s: as many at most
		}
		if se := &t.series[s]; inRanges(ranges, se.key.Cell) {
			n += int64(se.points)
		}
	}
	return n
}
