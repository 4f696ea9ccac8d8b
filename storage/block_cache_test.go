package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// TestCachedBlocksAnswerAsRead asks the same questions of parts three
// times — blocks read, read and put in the block cache, found there —
// and checks every answer against
// the rows added: sums at several steps and rows one by one, over cell
// ranges that start and end inside a cell's run of rows, over windows
// that cut blocks and runs of spread readings, for blocks kept compact
// (minutes and values of each width, several metrics in one block, runs
// of spread readings, distinct-card registers) and blocks kept decoded
// (sub-keys beyond 16 bits).
func TestCachedBlocksAnswerAsRead(t *testing.T) {
	opts := quietOptions()
	opts.BlockCacheBytes = 64 << 20
	opts.Retention = [numTiers]time.Duration{1 << 62, 1 << 62}
	s := openTestStore(t, t.TempDir(), opts)
	defer s.Close()
	names := []string{"count_car", "count_bus", "speed_car", "count_truck", "trips", "count_ped", vocab.DistinctCards}
	ids := map[string]uint32{}
	for _, n := range names {
		id, err := s.MetricID(n)
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = id
	}
	base := time.Now().Unix()/60 - 300
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[Key]int64{}
	var ds []Delta
	add := func(k Key, v int64) {
		ds = append(ds, Delta{Key: k, Value: v})
		want[k] += v
	}
	cellOf := func(i int) uint64 { return 0x89309a000000000 + uint64(i)<<12 }
	// count_car: 300 cells × 90 minutes, more rows than a block holds.
	for c := range 300 {
		for m := range 90 {
			if rng.IntN(4) > 0 {
				v := int64(rng.IntN(50))
				if c >= 150 && c < 160 {
					v += 70000 // beyond 16 bits, in the second block
				}
				add(Key{Metric: ids["count_car"], Cell: cellOf(c), Minute: base + int64(m)}, v)
			}
		}
	}
	// count_bus: few rows, values beyond 32 bits in some cells.
	for c := range 20 {
		for m := range 30 {
			v := int64(rng.IntN(9))
			if c%5 == 0 {
				v += 1 << 40
			}
			add(Key{Metric: ids["count_bus"], Cell: cellOf(c * 7), Minute: base + int64(m)}, v)
		}
	}
	// speed_car beside count_bus and the last of count_car in one block:
	// a few rows.
	for c := range 10 {
		add(Key{Metric: ids["speed_car"], Cell: cellOf(c * 3), Minute: base + 5}, int64(40+c))
	}
	// count_truck: a series spanning more minutes than 16 bits hold.
	for _, m := range []int64{-100_000, -70_000, -30, 0, 17} {
		add(Key{Metric: ids["count_truck"], Cell: cellOf(9), Minute: base + m}, 3)
	}
	if err := s.Add(ds); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// trips, in a part of their own: sub-keys beyond 16 bits, kept
	// decoded.
	ds = ds[:0]
	for c := range 40 {
		for m := range 20 {
			add(Key{Metric: ids["trips"], Cell: cellOf(c), Sub: cellOf(rng.IntN(5)), Minute: base + int64(m)}, int64(1+rng.IntN(3)))
		}
	}
	if err := s.Add(ds); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// count_ped, in a part of its own: hourly readings, runs of minutes
	// (their sub-key the run's length), beside plain rows; and
	// distinct-card registers (sub-keys of a few bits).
	hour := TierHour.Truncate(base) + 60
	b := NewBatch()
	for c := range 60 {
		n := int64(2 + c%59)
		from := hour + int64(c%(61-int(n)))
		v := n * int64(1+rng.IntN(30))
		b.AddRun(b.SeriesSpread(ids["count_ped"], cellOf(c)), from, n, v)
		for m := from; m < from+n; m++ {
			want[Key{Metric: ids["count_ped"], Cell: cellOf(c), Minute: m}] += v / n
		}
		if c%3 == 0 {
			m := hour + int64(c%60)
			b.Add(ids["count_ped"], false, cellOf(c), 0, m, 7)
			want[Key{Metric: ids["count_ped"], Cell: cellOf(c), Minute: m}] += 7
		}
		for reg := range uint64(3) {
			k := Key{Metric: ids[vocab.DistinctCards], Cell: cellOf(c), Sub: 100*reg + uint64(c), Minute: base + int64(c)}
			b.Add(k.Metric, true, k.Cell, k.Sub, k.Minute, int64(1+reg))
			want[k] = int64(1 + reg)
		}
	}
	commitBatch(t, s, b)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}

	ranges := [][]vocab.CellRange{
		{{Lo: 0, Hi: ^uint64(0)}},
		{{Lo: cellOf(3) + 1, Hi: cellOf(40) - 1}, {Lo: cellOf(77), Hi: cellOf(77)}, {Lo: cellOf(150), Hi: cellOf(299)}},
		{{Lo: cellOf(0), Hi: cellOf(0)}},
	}
	windows := [][2]int64{{base - 10, base + 200}, {base + 7, base + 61}, {base + 29, base + 30}, {hour + 13, hour + 47}, {base - 100_000, base + 1}, {base - 80_000, base - 20}}
	ask := func() (answers [][]int64) {
		for _, name := range names {
			for _, rs := range ranges {
				for _, w := range windows {
					for _, step := range []int64{1, 7, 60} {
						if name == "trips" || name == vocab.DistinctCards {
							continue // not summed by step in flowd; scanned below
						}
						sums := make([]int64, (w[1]-w[0]+step-1)/step)
						if err := s.SumSteps(TierMinute, name, rs, w[0], w[1], step, sums); err != nil {
							t.Fatal(err)
						}
						wantSums := make([]int64, len(sums))
						for k, v := range want {
							if k.Metric == ids[name] && k.Minute >= w[0] && k.Minute < w[1] && inRanges(rs, k.Cell) {
								wantSums[(k.Minute-w[0])/step] += v
							}
						}
						if !slices.Equal(sums, wantSums) {
							t.Fatalf("%s in %v, minutes %v, step %d: sums %v, want %v", name, rs, w, step, sums, wantSums)
						}
						answers = append(answers, sums)
					}
					got := map[Key]int64{}
					err := s.ScanSub(TierMinute, name, rs, w[0], w[1], func(cell, sub uint64, minute, v int64) {
						got[Key{Metric: ids[name], Cell: cell, Sub: sub, Minute: minute}] += v
					})
					if err != nil {
						t.Fatal(err)
					}
					n := 0
					for k, v := range want {
						if k.Metric == ids[name] && k.Minute >= w[0] && k.Minute < w[1] && inRanges(rs, k.Cell) {
							n++
							if got[k] != v {
								t.Fatalf("%s in %v, minutes %v: %v = %d, want %d", name, rs, w, k, got[k], v)
							}
						}
					}
					if len(got) != n {
						t.Fatalf("%s in %v, minutes %v: %d rows, want %d", name, rs, w, len(got), n)
					}
				}
			}
		}
		return answers
	}
	// The first pass reads each block, reads it again and puts it in the
	// cache, then finds it there; the third finds every block there.
	first := ask()
	second := ask()
	third := ask()
	if !slices.EqualFunc(first, second, slices.Equal) || !slices.EqualFunc(first, third, slices.Equal) {
		t.Fatal("the answers changed from read to cached")
	}
	// What the cache holds: compact blocks of each width of minutes and
	// values, with several metrics, with sub-keys; and the trips' blocks
	// decoded.
	var min16, min32, val16, val32, val64, mixed, subbed, decoded int
	s.blocks.mu.Lock()
	for e := s.blocks.ll.Front(); e != nil; e = e.Next() {
		cb := e.Value.(*cachedBlock)
		if cb.cb == nil {
			decoded++
			continue
		}
		c := cb.cb
		if c.min16 != nil {
			min16++
		} else {
			min32++
		}
		switch {
		case c.val16 != nil:
			val16++
		case c.val32 != nil:
			val32++
		default:
			val64++
		}
		if c.keys[0].metric != c.keys[len(c.keys)-1].metric {
			mixed++
		}
		if c.subs != nil {
			subbed++
		}
	}
	s.blocks.mu.Unlock()
	if min16 == 0 || min32 == 0 || val16 == 0 || val32 == 0 || val64 == 0 || mixed == 0 || subbed == 0 || decoded == 0 {
		t.Fatalf("cached compact: %d, %d with 16-, 32-bit minutes; %d, %d, %d with 16-, 32-, 64-bit values; %d of several metrics, %d with sub-keys; %d decoded: want each", min16, min32, val16, val32, val64, mixed, subbed, decoded)
	}
	// A cache of a few blocks: blocks evicted while queries run, the
	// answers the same.
	const small = 48 << 10
	s.blocks = newBlockCache(small)
	for range 3 {
		if got := ask(); !slices.EqualFunc(first, got, slices.Equal) {
			t.Fatal("the answers changed with blocks evicted")
		}
		if n := s.blocks.bytes(); n > small || n == 0 {
			t.Fatalf("a cache of %d bytes holds %d", small, n)
		}
	}
}

// TestSpanReadsNameTheDamagedBlock damages a part read in spans of
// consecutive blocks (spanReader) — a flipped byte inside a span, then a
// file cut short inside a later one — and checks that the scan names the
// block the damage is in, not the first of its span, and sets the part
// aside with the store still answering.
func TestSpanReadsNameTheDamagedBlock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block int
		harm  func(data []byte, ch columnHeader) []byte
	}{
		{"flipped byte", 13, func(data []byte, ch columnHeader) []byte {
			data[ch.Offset+uint64(ch.Size)/2] ^= 0x20
			return data
		}},
		{"cut short", 17, func(data []byte, ch columnHeader) []byte { return data[:ch.Offset+uint64(ch.Size)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecorder{}
			opts := quietOptions()
			opts.Logf = logs.logf
			s := openTestStore(t, t.TempDir(), opts)
			defer s.Close()
			id, _ := s.MetricID("count_car")
			base := time.Now().Unix()/60 - 100
			var ds []Delta
			for c := range uint64(2000) {
				for m := range int64(80) {
					ds = append(ds, Delta{Key{Metric: id, Cell: 0x89309a000000000 + c<<12, Minute: base + m}, 1 + int64(c%7)})
				}
			}
			if err := s.Add(ds); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			s.mu.RLock()
			p := s.parts[TierMinute][0]
			s.mu.RUnlock()
			if len(p.headers) < 20 {
				t.Fatalf("%d blocks; want 20 or more", len(p.headers))
			}
			path := filepath.Join(p.dir, columnFiles[colValue])
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.harm(data, p.headers[tc.block].Columns[colValue]), 0o644); err != nil {
				t.Fatal(err)
			}
			sums := make([]int64, 80)
			if err := s.SumSteps(TierMinute, "count_car", []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}, base, base+80, 1, sums); err != nil {
				t.Fatalf("the store should set the part aside and answer: %v", err)
			}
			st := s.Stats()
			if st.Quarantined != 1 {
				t.Fatalf("quarantined %d parts, want 1", st.Quarantined)
			}
			if want := fmt.Sprintf("block %d", tc.block); !strings.Contains(st.LastError, want) || !strings.Contains(st.LastError, path) {
				t.Fatalf("last error %q; want it to name %s and %s", st.LastError, path, want)
			}
		})
	}
}
