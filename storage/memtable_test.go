package storage

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// TestCrashAfterWALSync kills the store when a batch is in the WAL but not
// yet in the memtable nor acknowledged: on reopening, it is there once,
// with every batch before it.
func TestCrashAfterWALSync(t *testing.T) {
	dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "store")
	var syncs atomic.Int32
	snapshot, taken := snapshotAt(t, FailpointWALSynced, dir, crashed)
	opts := quietOptions()
	opts.Failpoint = func(name string) {
		if name == FailpointWALSynced && syncs.Add(1) == 3 {
			snapshot(name)
		}
	}
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix() / 60
	for i := range 5 {
		if err := s.Add([]Delta{{Key{Metric: id, Cell: 1, Minute: minute}, int64(1) << i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !taken.Load() {
		t.Fatal("the third batch never reached the WAL")
	}
	s = openTestStore(t, crashed, quietOptions())
	defer s.Close()
	for _, tier := range []Tier{TierMinute, TierHour, TierDay} {
		if total, _ := sumAll(t, s, tier, "count_car"); total != 1+2+4 {
			t.Fatalf("%s tier after the crash: %d, want the first three batches, 7", tier, total)
		}
	}
}

// TestCrashBetweenTierParts kills the store when a flush has installed the
// minute part and not yet the hour and day parts nor cut the WAL: replay
// gives the WAL's rows to the hour and day tiers only, so every tier
// holds every row once,
// then and after further flushes.
func TestCrashBetweenTierParts(t *testing.T) {
	dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "store")
	opts := quietOptions()
	opts.Failpoint, _ = snapshotAt(t, FailpointFlushPartInstalled, dir, crashed)
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	m0 := time.Now().Unix()/60 - 200
	want := addParts(t, s, id, 1, 150, m0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		for _, tier := range []Tier{TierMinute, TierHour, TierDay} {
			if total, _ := sumAll(t, s, tier, "count_car"); total != want {
				t.Fatalf("%s: %s tier holds %d, want %d", when, tier, total, want)
			}
		}
	}
	s = openTestStore(t, crashed, quietOptions())
	if st := s.Stats(); st.Parts[TierMinute] != 1 || st.Parts[TierHour] != 0 || st.Parts[TierDay] != 0 || st.MemtableRows[TierMinute] != 0 || st.MemtableRows[TierHour] == 0 || st.MemtableRows[TierDay] == 0 {
		t.Fatalf("after the crash: parts %v, memtable rows %v; want a minute part and the hour and day rows in memory", st.Parts, st.MemtableRows)
	}
	check(s, "after the crash")
	want += addParts(t, s, id, 1, 10, m0)
	check(s, "after another flush")
	crash(s)
	s = openTestStore(t, crashed, quietOptions())
	defer s.Close()
	check(s, "after reopening")
}

// TestFlushRowsOfPointsInAnyOrder adds points to a memtable's series in
// random minute order, as concurrent requests for different minutes do —
// some series in order, some not, some of one chunk and some of many,
// repeated minutes among them, values that fit 32 bits unsigned and
// values that do not — and checks every row of both tiers that a
// flush reads against sums kept in a map.
func TestFlushRowsOfPointsInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var want [numTiers]map[Key]int64
	for tr := range want {
		want[tr] = map[Key]int64{}
	}
	m := newMemtable()
	var scratch shardScratch
	for round := range 40 {
		b := &Batch{}
		for s := range 50 {
			cell := 0x89309a000000000 + uint64(s)<<12
			n := 1 + rng.IntN(1+s)
			for range n {
				minute := int64(27000000 + rng.IntN(3*60))
				if s%2 == 0 { // in order: minutes only grow, round by round
					minute = int64(27000000 + round*10 + rng.IntN(3))
				}
				v := int64(rng.IntN(100)) - 10 // a series with a negative value: sortedPlaces
				switch s % 4 {
				case 1: // values that fit 32 bits: sortedValues
					v = int64(rng.IntN(100))
				case 3: // values that fit 32 bits, their sums not
					v = int64(rng.Uint32())
				}
				b.Add(1, false, cell, uint64(s%3), minute, v)
				for tr := range numTiers {
					want[tr][Key{Metric: 1, Cell: cell, Sub: uint64(s % 3), Minute: Tier(tr).Truncate(minute)}] += v
				}
			}
		}
		if err := b.err; err != nil {
			t.Fatal(err)
		}
		m.addTable(&b.t, numTiers, &scratch)
	}
	got := flushedRows(t, m)
	for tr := range numTiers {
		if !maps.Equal(got[tr], want[tr]) {
			t.Errorf("tier %d: %d rows, want %d (or different sums)", tr, len(got[tr]), len(want[tr]))
		}
	}
}

// flushedRows returns the rows a flush of m reads in each tier, checking
// that they come in key order.
func flushedRows(t *testing.T, m *memtable) [numTiers]map[Key]int64 {
	t.Helper()
	var got [numTiers]map[Key]int64
	var last [numTiers]Key
	var fns [numTiers]func(Key, int64) error
	for tr := range numTiers {
		got[tr] = map[Key]int64{}
		fns[tr] = func(k Key, v int64) error {
			if len(got[tr]) > 0 && !last[tr].Less(k) {
				return fmt.Errorf("tier %d: row %+v after %+v", tr, k, last[tr])
			}
			last[tr], got[tr][k] = k, v
			return nil
		}
	}
	if err := m.eachTiers(byRow(fns)); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMemtablePairsAddToTheirOwnSeries applies batches of counts with
// second values (Batch.AddPairRecent: a count and a speed sum of one cell
// in one point) to a memtable, which keeps the seconds in its own points:
// with the count's partner changing from batch to batch (another metric
// for the same count, whose values then go to their own series), with
// seconds added alone, and with a second that is the first of another
// pair (a chain, which ingest never makes: added on its own, not lost).
// Every row a flush reads matches sums kept in a map.
func TestMemtablePairsAddToTheirOwnSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[Key]int64{}
	m := newMemtable()
	var scratch shardScratch
	for round := range 30 {
		b := &Batch{}
		for c := range 200 {
			cell := 0x89309a000000000 + uint64(c)<<12
			minute := int64(27000000 + round)
			partner := uint32(2 + (c+round)%3) // 2, 3 or 4: the count's pair changes
			switch rng.IntN(5) {
			case 4: // a chain: the second is the first of another pair
				b.AddPairRecent(1, partner, cell, 0, minute, 1, 2)
				b.AddPairRecent(partner, 9, cell, 0, minute, 4, 3)
				want[Key{Metric: 1, Cell: cell, Minute: minute}]++
				want[Key{Metric: partner, Cell: cell, Minute: minute}] += 2 + 4
				want[Key{Metric: 9, Cell: cell, Minute: minute}] += 3
			case 0: // the second alone
				b.Add(partner, false, cell, 0, minute, 5)
				want[Key{Metric: partner, Cell: cell, Minute: minute}] += 5
			case 1: // the second alone, in a series made as a pair's would be
				b.AddTo(b.SeriesRecent(partner, cell, 0), minute, 7)
				want[Key{Metric: partner, Cell: cell, Minute: minute}] += 7
			default:
				v := int64(1 + rng.IntN(9))
				b.AddPairRecent(1, partner, cell, 0, minute, v, 10*v)
				want[Key{Metric: 1, Cell: cell, Minute: minute}] += v
				want[Key{Metric: partner, Cell: cell, Minute: minute}] += 10 * v
			}
		}
		if err := b.err; err != nil {
			t.Fatal(err)
		}
		m.addTable(&b.t, numTiers, &scratch)
	}
	got := map[Key]int64{}
	var fns [numTiers]func(Key, int64) error
	fns[TierMinute] = func(k Key, v int64) error {
		got[k] = v
		return nil
	}
	if err := m.eachTiers(byRow(fns)); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		n := 0
		for k, v := range want {
			if got[k] != v && n < 5 {
				t.Errorf("%+v: %d, want %d", k, got[k], v)
				n++
			}
		}
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
}

// TestMemtableHoldsPointsDensely fills a memtable as 72 minutes of a city's
// detectors would (series of a point a minute: 26 bytes a point with
// chunks of up to 64 points, 19 with 16, of 12-byte points; 24 with
// 16-byte points, which hold a second value) and checks the bytes it
// counts against its budget per point held: the points themselves take 16,
// and the room a series' last chunk leaves empty must not double that.
func TestMemtableHoldsPointsDensely(t *testing.T) {
	m := newMemtable()
	var scratch shardScratch
	const series, minutes = 2000, 72
	for minute := range minutes {
		b := &Batch{}
		for s := range series {
			b.Add(1, false, 0x89309a000000000+uint64(s)<<12, 0, int64(27000000+minute), 1)
		}
		m.addTable(&b.t, numTiers, &scratch)
	}
	perPoint := float64(m.bytes()) / (series * minutes)
	t.Logf("%.1f bytes a point", perPoint)
	if perPoint > 26 {
		t.Fatalf("a memtable of %d series of %d points counts %.1f bytes a point; want at most 26", series, minutes, perPoint)
	}
}

// TestSortNearly sorts words in order, nearly in order, reversed and
// random, as slices.Sort does.
func TestSortNearly(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := range 200 {
		for _, kind := range []string{"sorted", "nearly", "reversed", "random"} {
			w := make([]uint64, n)
			for i := range w {
				switch kind {
				case "sorted":
					w[i] = uint64(i)
				case "nearly":
					w[i] = uint64(i + rng.IntN(5)) // a few places out
				case "reversed":
					w[i] = uint64(n - i)
				case "random":
					w[i] = rng.Uint64() % 50
				}
			}
			want := slices.Clone(w)
			slices.Sort(want)
			sortNearly(w)
			if !slices.Equal(w, want) {
				t.Fatalf("%s, %d words: %v, want %v", kind, n, w, want)
			}
		}
	}
}

// TestSortAboveSortsByTheHighBits sorts sets of sketch words (a register,
// a minute of a flush's span, a value), some small, some of thousands,
// some with every byte varying: the words come back a permutation of
// those given, in order of their bits from the shift up.
func TestSortAboveSortsByTheHighBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var spare []uint64
	for round := range 200 {
		n := rng.IntN(5000)
		words := make([]uint64, n)
		for i := range words {
			switch round % 3 {
			case 0: // a flush's taps: registers of 12 bits, minutes of three hours
				words[i] = uint64(rng.IntN(1<<12))<<40 | uint64(29000000+rng.IntN(180))<<registerBits | uint64(rng.IntN(40))
			case 1: // one register and minute, values alone differing
				words[i] = 7<<40 | 29000000<<registerBits | uint64(rng.IntN(256))
			default:
				words[i] = rng.Uint64()
			}
		}
		want := slices.Clone(words)
		var got []uint64
		got, spare = sortAbove(words, spare, registerBits)
		if !slices.IsSortedFunc(got, func(a, b uint64) int { return cmp.Compare(a>>registerBits, b>>registerBits) }) {
			t.Fatalf("round %d: %d words not in order of their high bits", round, n)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: the sorted words are not those given", round)
		}
	}
}

// TestSortRefsAsByCompare sorts refs of many kinds of keys by sortRefs
// and checks that their keys come out in compare's order, each ref once:
// keys that take the radix path (one sub-key, cells of a city at one or
// several resolutions, metrics up to 1023) and keys that must not (sub-keys
// differing, cells and metrics too varied to share a word with an index),
// below and above 256 refs.
func TestSortRefsAsByCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	city := uint64(h3.LatLngToCell(h3.LatLng{Lat: 30.25, Lng: 120.15}, 9))
	near := func(res int) uint64 { // a cell of the city at resolution res
		return uint64(h3.LatLngToCell(h3.LatLng{Lat: 30.1 + 0.3*rng.Float64(), Lng: 120.0 + 0.3*rng.Float64()}, res))
	}
	for round := range 300 {
		n := []int{0, 1, 255, 256, 257, 5000, 40000}[round%7]
		refs := make([]seriesRef, n)
		tab := &seriesTable{}
		for i := range refs {
			k := SeriesKey{Metric: uint32(rng.IntN(4)), Cell: near(9)}
			switch round / 7 % 6 { // kind, below
			case 1: // metrics up to 1023
				k.Metric = uint32(rng.IntN(1024))
			case 2: // resolutions 7 to 10
				k.Cell = near(7 + rng.IntN(4))
			case 3: // a few sub-keys: by compare
				k.Sub = uint64(rng.IntN(3))
			case 4: // any cell, any metric: too wide for a word
				k.Cell, k.Metric = rng.Uint64(), rng.Uint32()
			case 5: // one cell, one sub-key, many duplicates
				k.Cell, k.Sub = city, 9
			}
			refs[i] = seriesRef{key: k, t: tab, s: int32(i), second: i%2 == 0}
		}
		want := slices.Clone(refs)
		slices.SortStableFunc(want, func(a, b seriesRef) int { return a.key.compare(b.key) })
		kind := round / 7 % 6
		if _, radix := radixRefs(refs); radix != (n >= 256 && kind != 3 && kind != 4) {
			t.Fatalf("round %d (%d refs, kind %d): by radix %v", round, n, kind, radix)
		}
		got := sortRefs(slices.Clone(refs))
		if len(got) != n {
			t.Fatalf("round %d: %d refs back of %d", round, len(got), n)
		}
		seen := make([]bool, n)
		for j := range got {
			if got[j].key != want[j].key {
				t.Fatalf("round %d: ref %d has key %+v, want %+v", round, j, got[j].key, want[j].key)
			}
			if s := got[j].s; seen[s] || got[j] != refs[s] {
				t.Fatalf("round %d: ref %d (%d) repeated or changed", round, j, s)
			}
			seen[got[j].s] = true
		}
	}
}

// TestMemtableKeepsSecondValuesExactly applies batches of pairs as ingest
// makes them (a count and, not always, its speed sum, added together,
// several readings of one cell in a batch, minutes out of order and
// repeated) to a memtable, which keeps the speed sums as second values of
// the counts' points (addSecondedPoint), and checks every row a flush reads in both
// tiers, and every row a scan reads, against sums kept in a map. Among
// the sums: values a second value cannot hold (0, negative, 2^32 and
// more), sums that pass 32 bits, seconds added alone, and batches applied
// to one tier alone (replay after a partial flush).
func TestMemtableKeepsSecondValuesExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var want [numTiers]map[Key]int64
	for tr := range want {
		want[tr] = map[Key]int64{}
	}
	add := func(only Tier, metric uint32, cell uint64, minute, v int64) {
		for tr := range numTiers {
			if only == numTiers || Tier(tr) == only {
				want[tr][Key{Metric: metric, Cell: cell, Minute: Tier(tr).Truncate(minute)}] += v
			}
		}
	}
	m := newMemtable()
	var scratch shardScratch
	for round := range 40 {
		only := numTiers
		if round%10 == 9 {
			only = TierHour
		}
		b := &Batch{}
		for c := range 100 {
			cell := 0x89309a000000000 + uint64(c)<<12
			for range 1 + rng.IntN(4) {
				minute := int64(27000000 + round*7 + rng.IntN(90))
				v := int64(1 + rng.IntN(50))
				speed := v * int64(10+rng.IntN(90))
				odd := rng.IntN(12)
				if c%4 != 0 && odd != 0 {
					odd = 12 // most cells: speed sums a second value holds
				}
				switch odd {
				case 0:
					speed = 0 // no speed: the count alone
				case 1:
					speed = -speed
				case 2:
					speed = 1<<32 + speed
				case 3:
					speed = 1<<32 - 1 - int64(rng.IntN(3)) // sums pass 32 bits
				case 4: // the second alone
					b.AddTo(b.SeriesRecent(2, cell, 0), minute, speed)
					add(only, 2, cell, minute, speed)
					continue
				}
				b.AddPairRecent(1, 2, cell, 0, minute, v, speed)
				add(only, 1, cell, minute, v)
				if speed != 0 {
					add(only, 2, cell, minute, speed)
				}
			}
		}
		if err := b.err; err != nil {
			t.Fatal(err)
		}
		m.addTable(&b.t, only, &scratch)
	}
	seconds := 0
	for i := range m.shards {
		for _, se := range m.shards[i].both.series {
			if se.second != 0 {
				seconds++
			}
		}
	}
	if seconds < 50 {
		t.Fatalf("%d memtable series hold second values; the test means most of 100", seconds)
	}
	got := flushedRows(t, m)
	for tr := range numTiers {
		// The rows a tier gets are at most what the memtable counts.
		if n := m.rowCount(Tier(tr)); n < len(got[tr]) {
			t.Errorf("tier %d: the memtable counts %d rows at most, a flush writes %d", tr, n, len(got[tr]))
		}
		scanned := map[Key]int64{}
		for _, metric := range []uint32{1, 2} {
			m.scan(Tier(tr), metric, vocab.Everywhere, 0, 1<<40, func(cell, sub uint64, minute, v int64) {
				scanned[Key{Metric: metric, Cell: cell, Sub: sub, Minute: minute}] += v
			})
		}
		for what, rows := range map[string]map[Key]int64{"flush": got[tr], "scan": scanned} {
			if !maps.Equal(rows, want[tr]) {
				n := 0
				for k, v := range want[tr] {
					if rows[k] != v && n < 5 {
						t.Errorf("tier %d, %s: %+v: %d, want %d", tr, what, k, rows[k], v)
						n++
					}
				}
				t.Errorf("tier %d, %s: %d rows, want %d", tr, what, len(rows), len(want[tr]))
			}
		}
	}
}

// byRow makes a runFn of each function of fns, which takes a row at a
// time.
func byRow(fns [numTiers]func(Key, int64) error) [numTiers]runFn {
	var out [numTiers]runFn
	for t, fn := range fns {
		if fn == nil {
			continue
		}
		out[t] = func(k SeriesKey, minutes, values []int64) error {
			for i, m := range minutes {
				if err := fn(Key{Metric: k.Metric, Cell: k.Cell, Sub: k.Sub, Minute: m}, values[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return out
}

// TestMemtableLikeHasRoom: a memtable made like another (at a rotation
// with no emptied one to reuse) starts empty, counts as empty, has the
// index and the room for the series and chunks the other holds, fills to
// the same rows without growing its lists, and leaves the other as it was.
func TestMemtableLikeHasRoom(t *testing.T) {
	var scratch shardScratch
	batches := make([]*Batch, 72)
	for minute := range batches {
		b := &Batch{}
		for s := range 2000 {
			b.Add(1, false, 0x89309a000000000+uint64(s)<<12, 0, int64(27000000+minute), int64(1+s%7))
		}
		batches[minute] = b
	}
	prev := newMemtable()
	for _, b := range batches {
		prev.addTable(&b.t, numTiers, &scratch)
	}
	rows := func(m *memtable) map[Key]int64 {
		got := map[Key]int64{}
		err := m.eachTiers(byRow([numTiers]func(Key, int64) error{TierMinute: func(k Key, v int64) error {
			got[k] += v
			return nil
		}}))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := rows(prev)
	next := newMemtableLike(prev)
	if !next.empty() || next.bytes() != 0 {
		t.Fatalf("a memtable made like another: empty %v, %d bytes", next.empty(), next.bytes())
	}
	for i := range next.shards {
		p, n := &prev.shards[i].both, &next.shards[i].both
		if len(n.slots) != len(p.slots) || cap(n.series) < len(p.series) || cap(n.chunks) < len(p.chunks) {
			t.Fatalf("shard %d: %d slots, room for %d series and %d chunks; the other has %d, %d, %d",
				i, len(n.slots), cap(n.series), cap(n.chunks), len(p.slots), len(p.series), len(p.chunks))
		}
	}
	var caps [memShards][2]int
	for i := range next.shards {
		caps[i] = [2]int{cap(next.shards[i].both.series), cap(next.shards[i].both.chunks)}
	}
	for _, b := range batches {
		next.addTable(&b.t, numTiers, &scratch)
	}
	for i := range next.shards {
		if c := [2]int{cap(next.shards[i].both.series), cap(next.shards[i].both.chunks)}; c != caps[i] {
			t.Errorf("shard %d: its lists grew from %v to %v", i, caps[i], c)
		}
	}
	if got := rows(next); !maps.Equal(got, before) {
		t.Fatalf("the memtable made like another holds %d rows unlike the other's %d", len(got), len(before))
	}
	if after := rows(prev); !maps.Equal(after, before) {
		t.Fatal("making a memtable like another changed the other")
	}
}

// TestAddListAddsAsOneByOne adds lists of every length around the groups
// addList and addRows ask for ahead, into tables that grow while they are added and
// into tables that hold the series already, and checks every series'
// points against addSeries called series by series (and addRow row by
// row).
func TestAddListAddsAsOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100, 1000, 5000} {
		got, want := &seriesTable{indexMetrics: true}, &seriesTable{indexMetrics: true}
		for round := range 3 {
			b := &Batch{}
			for range n {
				cell := 0x89309a000000000 + uint64(rng.IntN(2*n+1))<<12
				minute := int64(27000000 + round*7 + rng.IntN(3))
				switch rng.IntN(4) {
				case 0:
					b.Add(1, false, cell, 0, minute, int64(rng.IntN(9)))
				case 1:
					b.Add(3, true, cell, uint64(rng.IntN(64)), minute, int64(rng.IntN(30)))
				default:
					b.AddPairRecent(1, 2, cell, 0, minute, int64(1+rng.IntN(9)), int64(rng.IntN(90)))
				}
			}
			if b.err != nil {
				t.Fatal(b.err)
			}
			list := make([]int32, len(b.t.series))
			for i := range list {
				list[i] = int32(i)
			}
			rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			got.addList(&b.t, list, TierMinute)
			for _, s := range list {
				want.addSeries(&b.t, s, TierMinute, b.t.series[s].key.hash())
			}
			// The batch's rows (AddPairRecent), by addRows and one by one.
			// addRows takes them in the order of their indexes.
			at := make([]int32, len(b.t.rows))
			for i := range at {
				at[i] = int32(i)
			}
			rng.Shuffle(len(at), func(i, j int) { at[i], at[j] = at[j], at[i] })
			got.addRows(b.t.rows, at, TierMinute)
			for _, r := range at {
				want.addRow(&b.t.rows[r], b.t.rows[r].key.hash(), TierMinute)
			}
		}
		if len(got.series) != len(want.series) || got.npts != want.npts || got.npts2 != want.npts2 {
			t.Fatalf("%d a list: %d series, %d points, %d second values; one by one %d, %d, %d", n, len(got.series), got.npts, got.npts2, len(want.series), want.npts, want.npts2)
		}
		for s := range want.series {
			if got.series[s].key != want.series[s].key {
				t.Fatalf("%d a list: series %d is %+v, one by one %+v", n, s, got.series[s].key, want.series[s].key)
			}
			g, w := got.appendPoints(nil, int32(s)), want.appendPoints(nil, int32(s))
			if !slices.Equal(g, w) {
				t.Fatalf("%d a list: series %+v holds %v, one by one %v", n, want.series[s].key, g, w)
			}
		}
	}
}
