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

// rowTable is a hash map of rows per metric.
type rowTable map[uint32]map[rowKey]int64

// add combines v into the row (metric, k); it reports whether the row is new.
func (rt rowTable) add(metric uint32, k rowKey, v int64, isMax bool) bool {
	rows := rt[metric]
	if rows == nil {
		rows = map[rowKey]int64{}
		rt[metric] = rows
	}
	old, ok := rows[k]
	if !ok {
		rows[k] = v
		return true
	}
	rows[k] = combine(isMax, old, v)
	return false
}

// memtable is the in-memory table of buckets not yet in a part: minute rows,
// a hash map per metric, from which both tiers are written at a flush (the
// hour tier by summing each series' minutes into hours). Rows that only one
// tier still needs — after a crash between the two tiers' parts of a flush,
// replay gives the WAL's records to one tier only — are kept apart.
type memtable struct {
	rows rowTable
	n    int // rows in rows
	// only holds rows for one tier; hour rows are stored hour-truncated.
	only  [numTiers]rowTable
	nOnly [numTiers]int
}

func newMemtable() *memtable {
	return &memtable{rows: rowTable{}, only: [numTiers]rowTable{{}, {}}}
}

// add adds d to both tiers, keeping the maximum instead of the sum for max
// metrics.
func (m *memtable) add(d Delta, isMax bool) {
	if m.rows.add(d.Metric, rowKey{d.Cell, d.Sub, d.Minute}, d.Value, isMax) {
		m.n++
	}
}

// addOnly adds d to tier t alone.
func (m *memtable) addOnly(t Tier, d Delta, isMax bool) {
	if m.only[t].add(d.Metric, rowKey{d.Cell, d.Sub, t.Truncate(d.Minute)}, d.Value, isMax) {
		m.nOnly[t]++
	}
}

// rowCount is the number of rows tier t would get at most.
func (m *memtable) rowCount(t Tier) int { return m.n + m.nOnly[t] }

func (m *memtable) empty() bool {
	return m.n == 0 && m.nOnly[TierMinute] == 0 && m.nOnly[TierHour] == 0
}

// scan calls fn for the rows of tier t matching metric, ranges and [from,
// to). In the hour tier a minute row is reported at its hour; callers
// combine rows with the same key.
func (m *memtable) scan(t Tier, metric uint32, ranges []CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
	visit := func(k rowKey, minute, v int64) {
		if minute < from || minute >= to {
			return
		}
		i := sort.Search(len(ranges), func(i int) bool { return ranges[i].Hi >= k.cell })
		if i == len(ranges) || ranges[i].Lo > k.cell {
			return
		}
		fn(k.cell, k.sub, minute, v)
	}
	for k, v := range m.rows[metric] {
		visit(k, t.Truncate(k.minute), v)
	}
	for k, v := range m.only[t][metric] {
		visit(k, k.minute, v)
	}
}

type memRow struct {
	k rowKey
	v int64
}

// sortedRows returns the rows of one metric of rt, sorted, reusing buf.
func sortedRows(buf []memRow, rows map[rowKey]int64) []memRow {
	buf = slices.Grow(buf[:0], len(rows))
	for k, v := range rows {
		buf = append(buf, memRow{k, v})
	}
	slices.SortFunc(buf, func(a, b memRow) int { return a.k.compare(b.k) })
	return buf
}

// each calls fn for the rows of tier t in key order. Hour rows are the
// sums (or maxima) of each series' minutes within the hour, combined from
// the sorted minute rows without a second table.
func (m *memtable) each(t Tier, isMax func(uint32) bool, fn func(k Key, v int64) error) error {
	metrics := map[uint32]bool{}
	for id := range m.rows {
		metrics[id] = true
	}
	for id := range m.only[t] {
		metrics[id] = true
	}
	ids := make([]uint32, 0, len(metrics))
	for id := range metrics {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var buf []memRow
	for _, id := range ids {
		keep := isMax(id)
		if len(m.only[t][id]) > 0 {
			// Rare (after a replay): combine through a map.
			combined := make(map[rowKey]int64, len(m.rows[id])+len(m.only[t][id]))
			for _, src := range []map[rowKey]int64{m.rows[id], m.only[t][id]} {
				for k, v := range src {
					k.minute = t.Truncate(k.minute)
					if old, ok := combined[k]; ok {
						v = combine(keep, old, v)
					}
					combined[k] = v
				}
			}
			buf = sortedRows(buf, combined)
		} else {
			buf = sortedRows(buf, m.rows[id])
		}
		// Rows are sorted by series and time, so a series' rows of one
		// bucket of tier t are consecutive: combine them as they come.
		for i := 0; i < len(buf); {
			k := buf[i].k
			k.minute = t.Truncate(k.minute)
			v := buf[i].v
			j := i + 1
			for ; j < len(buf) && buf[j].k.cell == k.cell && buf[j].k.sub == k.sub && t.Truncate(buf[j].k.minute) == k.minute; j++ {
				v = combine(keep, v, buf[j].v)
			}
			if err := fn(Key{Metric: id, Cell: k.cell, Sub: k.sub, Minute: k.minute}, v); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}
