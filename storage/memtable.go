package storage

import (
	"cmp"
	"slices"
	"sort"
	"sync"

	"github.com/flowd/flowd/vocab"
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

// memShards is the number of independently locked shards of a memtable:
// batches are applied by the goroutines that submitted them, in parallel.
const memShards = 16

// memtable is the in-memory table of buckets not yet in a part: minute rows,
// a hash map per metric, from which both tiers are written at a flush (the
// hour tier by summing each series' minutes into hours). Rows that only one
// tier still needs — after a crash between the two tiers' parts of a flush,
// replay gives the WAL's records to one tier only — are kept apart. Rows
// are spread over shards by cell, each with its own lock.
type memtable struct {
	shards [memShards]memShard
}

type memShard struct {
	mu   sync.Mutex
	rows rowTable
	n    int // rows in rows
	// only holds rows for one tier; hour rows are stored hour-truncated.
	only  [numTiers]rowTable
	nOnly [numTiers]int
}

func newMemtable() *memtable {
	m := &memtable{}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.rows, sh.only = rowTable{}, [numTiers]rowTable{{}, {}}
	}
	return m
}

func (m *memtable) shard(cell uint64) *memShard {
	return &m.shards[(cell^cell>>23^cell>>41)%memShards]
}

// add adds d to both tiers, keeping the maximum instead of the sum for max
// metrics.
func (m *memtable) add(d Delta, isMax bool) {
	sh := m.shard(d.Cell)
	sh.mu.Lock()
	if sh.rows.add(d.Metric, rowKey{d.Cell, d.Sub, d.Minute}, d.Value, isMax) {
		sh.n++
	}
	sh.mu.Unlock()
}

// addOnly adds d to tier t alone.
func (m *memtable) addOnly(t Tier, d Delta, isMax bool) {
	sh := m.shard(d.Cell)
	sh.mu.Lock()
	if sh.only[t].add(d.Metric, rowKey{d.Cell, d.Sub, t.Truncate(d.Minute)}, d.Value, isMax) {
		sh.nOnly[t]++
	}
	sh.mu.Unlock()
}

// rowCount is the number of rows tier t would get at most.
func (m *memtable) rowCount(t Tier) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.n + sh.nOnly[t]
		sh.mu.Unlock()
	}
	return n
}

func (m *memtable) empty() bool {
	return m.rowCount(TierMinute) == 0 && m.rowCount(TierHour) == 0
}

// scan calls fn for the rows of tier t matching metric, ranges and [from,
// to). In the hour tier a minute row is reported at its hour; callers
// combine rows with the same key.
func (m *memtable) scan(t Tier, metric uint32, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) {
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
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, v := range sh.rows[metric] {
			visit(k, t.Truncate(k.minute), v)
		}
		for k, v := range sh.only[t][metric] {
			visit(k, k.minute, v)
		}
		sh.mu.Unlock()
	}
}

type memRow struct {
	k rowKey
	v int64
}

// each calls fn for the rows of tier t in key order. Hour rows are the
// sums (or maxima) of each series' minutes within the hour, combined from
// the sorted minute rows without a second table. The memtable must no
// longer change (it is frozen).
func (m *memtable) each(t Tier, isMax func(uint32) bool, fn func(k Key, v int64) error) error {
	metrics := map[uint32]bool{}
	for i := range m.shards {
		for id := range m.shards[i].rows {
			metrics[id] = true
		}
		for id := range m.shards[i].only[t] {
			metrics[id] = true
		}
	}
	ids := make([]uint32, 0, len(metrics))
	for id := range metrics {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var buf []memRow
	for _, id := range ids {
		keep := isMax(id)
		buf = buf[:0]
		var only map[rowKey]int64
		for i := range m.shards {
			sh := &m.shards[i]
			for k, v := range sh.rows[id] {
				buf = append(buf, memRow{k, v})
			}
			for k, v := range sh.only[t][id] {
				if only == nil {
					only = map[rowKey]int64{}
				}
				only[k] = v
			}
		}
		if only != nil {
			// Rare (after a replay): combine through a map.
			combined := make(map[rowKey]int64, len(buf)+len(only))
			for _, r := range buf {
				r.k.minute = t.Truncate(r.k.minute)
				if old, ok := combined[r.k]; ok {
					r.v = combine(keep, old, r.v)
				}
				combined[r.k] = r.v
			}
			for k, v := range only {
				if old, ok := combined[k]; ok {
					v = combine(keep, old, v)
				}
				combined[k] = v
			}
			buf = buf[:0]
			for k, v := range combined {
				buf = append(buf, memRow{k, v})
			}
		}
		slices.SortFunc(buf, func(a, b memRow) int { return a.k.compare(b.k) })
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
