package storage

import (
	"slices"
	"sort"
)

// series holds the buckets of one (metric, cell) in a memtable, sorted by
// minute. Deltas mostly land at the end, so adding is usually an append.
type series struct {
	minutes []int64
	values  []int64
}

func (s *series) add(minute, v int64, isMax bool) {
	n := len(s.minutes)
	if n == 0 || s.minutes[n-1] < minute {
		s.minutes = append(s.minutes, minute)
		s.values = append(s.values, v)
		return
	}
	if s.minutes[n-1] == minute {
		s.values[n-1] = combine(isMax, s.values[n-1], v)
		return
	}
	i := sort.Search(n, func(i int) bool { return s.minutes[i] >= minute })
	if s.minutes[i] == minute {
		s.values[i] = combine(isMax, s.values[i], v)
		return
	}
	s.minutes = slices.Insert(s.minutes, i, minute)
	s.values = slices.Insert(s.values, i, v)
}

// cellSub is the part of a key that names one series of a metric.
type cellSub struct {
	cell, sub uint64
}

func (a cellSub) less(b cellSub) bool {
	return a.cell < b.cell || a.cell == b.cell && a.sub < b.sub
}

// memtable is the in-memory table of buckets not yet in a part, one per tier.
type memtable struct {
	tiers [numTiers]map[uint32]map[cellSub]*series
	rows  [numTiers]int
}

func newMemtable() *memtable {
	m := &memtable{}
	for t := range m.tiers {
		m.tiers[t] = map[uint32]map[cellSub]*series{}
	}
	return m
}

// add adds d to tier t, keeping the maximum instead of the sum for max
// metrics.
func (m *memtable) add(t Tier, d Delta, isMax bool) {
	cells := m.tiers[t][d.Metric]
	if cells == nil {
		cells = map[cellSub]*series{}
		m.tiers[t][d.Metric] = cells
	}
	cs := cellSub{d.Cell, d.Sub}
	s := cells[cs]
	if s == nil {
		s = &series{}
		cells[cs] = s
	}
	n := len(s.minutes)
	s.add(t.Truncate(d.Minute), d.Value, isMax)
	m.rows[t] += len(s.minutes) - n
}

func (m *memtable) empty() bool {
	for _, n := range m.rows {
		if n > 0 {
			return false
		}
	}
	return true
}

// scan calls fn for the rows of tier t matching metric, ranges and [from, to).
func (m *memtable) scan(t Tier, metric uint32, ranges []CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	cells := m.tiers[t][metric]
	if len(cells) == 0 {
		return
	}
	for cs, s := range cells {
		c := cs.cell
		i := sort.Search(len(ranges), func(i int) bool { return ranges[i].Hi >= c })
		if i == len(ranges) || ranges[i].Lo > c {
			continue
		}
		j := sort.Search(len(s.minutes), func(j int) bool { return s.minutes[j] >= from })
		for ; j < len(s.minutes) && s.minutes[j] < to; j++ {
			fn(c, cs.sub, s.minutes[j], s.values[j])
		}
	}
}

// each calls fn for the rows of tier t in key order.
func (m *memtable) each(t Tier, fn func(k Key, v int64) error) error {
	metrics := make([]uint32, 0, len(m.tiers[t]))
	for id := range m.tiers[t] {
		metrics = append(metrics, id)
	}
	slices.Sort(metrics)
	var cells []cellSub
	for _, id := range metrics {
		cells = cells[:0]
		for c := range m.tiers[t][id] {
			cells = append(cells, c)
		}
		slices.SortFunc(cells, func(a, b cellSub) int {
			if a.less(b) {
				return -1
			}
			if b.less(a) {
				return 1
			}
			return 0
		})
		for _, c := range cells {
			s := m.tiers[t][id][c]
			for i, minute := range s.minutes {
				if err := fn(Key{Metric: id, Cell: c.cell, Sub: c.sub, Minute: minute}, s.values[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
