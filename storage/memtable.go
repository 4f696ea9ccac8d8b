package storage

import (
	"cmp"
	"slices"
	"sort"
)

// rowKey is a Key without its metric: the memtable keeps one map per
// metric, so a query reads only its metric's rows.
type rowKey struct {
	cell, sub uint64
	minute    int64
}

func (a rowKey) compare(b rowKey) int {
	if c := cmp.Compare(a.cell, b.cell); c != 0 {
		return c
	}
	if c := cmp.Compare(a.sub, b.sub); c != 0 {
		return c
	}
	return cmp.Compare(a.minute, b.minute)
}

// memtable is the in-memory table of buckets not yet in a part, one per
// tier: a hash map per metric, sorted only when flushed.
type memtable struct {
	tiers [numTiers]map[uint32]map[rowKey]int64
	rows  [numTiers]int
}

func newMemtable() *memtable {
	m := &memtable{}
	for t := range m.tiers {
		m.tiers[t] = map[uint32]map[rowKey]int64{}
	}
	return m
}

// add adds d to tier t, keeping the maximum instead of the sum for max
// metrics.
func (m *memtable) add(t Tier, d Delta, isMax bool) {
	rows := m.tiers[t][d.Metric]
	if rows == nil {
		rows = map[rowKey]int64{}
		m.tiers[t][d.Metric] = rows
	}
	k := rowKey{d.Cell, d.Sub, t.Truncate(d.Minute)}
	v, ok := rows[k]
	if !ok {
		m.rows[t]++
		rows[k] = d.Value
		return
	}
	rows[k] = combine(isMax, v, d.Value)
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
	for k, v := range m.tiers[t][metric] {
		if k.minute < from || k.minute >= to {
			continue
		}
		i := sort.Search(len(ranges), func(i int) bool { return ranges[i].Hi >= k.cell })
		if i == len(ranges) || ranges[i].Lo > k.cell {
			continue
		}
		fn(k.cell, k.sub, k.minute, v)
	}
}

// each calls fn for the rows of tier t in key order.
func (m *memtable) each(t Tier, fn func(k Key, v int64) error) error {
	metrics := make([]uint32, 0, len(m.tiers[t]))
	for id := range m.tiers[t] {
		metrics = append(metrics, id)
	}
	slices.Sort(metrics)
	type row struct {
		k rowKey
		v int64
	}
	var rows []row
	for _, id := range metrics {
		rows = slices.Grow(rows[:0], len(m.tiers[t][id]))
		for k, v := range m.tiers[t][id] {
			rows = append(rows, row{k, v})
		}
		slices.SortFunc(rows, func(a, b row) int { return a.k.compare(b.k) })
		for _, r := range rows {
			if err := fn(Key{Metric: id, Cell: r.k.cell, Sub: r.k.sub, Minute: r.k.minute}, r.v); err != nil {
				return err
			}
		}
	}
	return nil
}
