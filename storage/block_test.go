package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestColumnRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dense := make([]int64, 5000)
	for i := range dense {
		dense[i] = 29000000 + int64(i%1440) // a series per minute, 4 cells
	}
	sparse := make([]int64, 5000)
	for i := range sparse {
		sparse[i] = 29000000 + int64(rng.IntN(100000))
	}
	cells := make([]int64, 5000)
	for i := range cells {
		cells[i] = 0x89309a000000000 + int64(i/700)<<12
	}
	noisy := make([]int64, 5000)
	for i := range noisy {
		noisy[i] = int64(rng.IntN(50)) - 3
	}
	cases := []struct {
		name string
		col  int
		vals []int64
	}{
		{"dense minutes", colMinute, dense},
		{"sparse minutes", colMinute, sparse},
		{"constant minutes", colMinute, slices.Repeat([]int64{7}, 100)},
		{"one minute", colMinute, []int64{29000000}},
		{"cells", colCell, cells},
		{"one cell", colCell, []int64{42}},
		{"values", colValue, noisy},
		{"zero subs", colSub, make([]int64, 300)},
	}
	for _, tc := range cases {
		for _, enc := range []string{"flush", "merge"} {
			e := zstdFlush
			if enc == "merge" {
				e = zstdMerge
			}
			data, ch := encodeColumn(nil, e, tc.col, tc.vals)
			got, _, err := decodeColumn(nil, tc.col, data, ch, len(tc.vals), nil)
			if err != nil || !slices.Equal(got, tc.vals) {
				t.Errorf("%s (%s): round trip failed: %v", tc.name, enc, err)
			}
		}
	}
	// Dense minutes are stored as runs, far smaller than a byte a row.
	if data, ch := encodeColumn(nil, zstdFlush, colMinute, dense); ch.MarshalType != deltaRunsType || len(data) > 100 {
		t.Errorf("dense minutes: type %d, %d bytes; want runs, under 100 bytes", ch.MarshalType, len(data))
	}
}

func TestSumRowsMatchesDivision(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, step := range []int64{1, 2, 5, 60, 1440} {
		from, to := int64(1000), int64(1000+3000)
		minutes := make([]int64, 4000)
		values := make([]int64, 4000)
		m := int64(900)
		for i := range minutes {
			if rng.IntN(10) == 0 {
				m = 900 + int64(rng.IntN(3500)) // a new series starts anywhere
			}
			m += int64(rng.IntN(3))
			minutes[i], values[i] = m, int64(rng.IntN(9))
		}
		n := (to - from + step - 1) / step
		got, want := make([]int64, n), make([]int64, n)
		sumRows(got, step, from, to, 0, minutes, values)
		for i, m := range minutes {
			if m >= from && m < to {
				want[(m-from)/step] += values[i]
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("step %d: sums differ from the division per row", step)
		}
	}
}

// TestAddRunWritesWhatAddWrites writes the same rows to two parts of each
// tier, a row at a time (add) and a key's rows at a time (addRun), and
// checks that the parts' files are the same bytes: runs longer than a
// block, runs that cross the hour tier's block periods, keys of one row,
// and blocks cut short by a period only once they hold minCutRows.
func TestAddRunWritesWhatAddWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type run struct {
		k               SeriesKey
		minutes, values []int64
	}
	var runs []run
	for m := uint32(1); m <= 3; m++ {
		for c := range 40 {
			k := SeriesKey{Metric: m, Cell: 0x89309a000000000 + uint64(c)<<12, Sub: uint64(c % 3)}
			var r run
			r.k = k
			minute := int64(27000000 + rng.IntN(3*hourBlockPeriod))
			n := []int{1, 2, 300, maxBlockRows + 500, 3 * minCutRows}[rng.IntN(5)]
			for range n {
				r.minutes = append(r.minutes, minute)
				r.values = append(r.values, rng.Int64N(1000)-10)
				minute += 1 + int64(rng.IntN([]int{1, 60, hourBlockPeriod / 4}[rng.IntN(3)]))
			}
			runs = append(runs, r)
		}
	}
	dir := t.TempDir()
	for _, tier := range []Tier{TierMinute, TierHour} {
		var parts [2]string
		for way := range parts {
			w, err := newPartWriter(filepath.Join(dir, fmt.Sprintf("tmp-%v-%d", tier, way)), tier, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				if way == 1 {
					err = w.addRun(r.k, r.minutes, r.values)
				} else {
					for i, m := range r.minutes {
						if err = w.add(Key{Metric: r.k.Metric, Cell: r.k.Cell, Sub: r.k.Sub, Minute: m}, r.values[i]); err != nil {
							break
						}
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			parts[way] = filepath.Join(dir, fmt.Sprintf("part-%v-%d", tier, way))
			if _, err := w.finish(parts[way]); err != nil {
				t.Fatal(err)
			}
		}
		names := append(slices.Clone(columnFiles[:]), "index.bin", "metadata.json")
		for _, name := range names {
			a, err := os.ReadFile(filepath.Join(parts[0], name))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(parts[1], name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("tier %v: %s differs: %d bytes by rows, %d by runs", tier, name, len(a), len(b))
			}
		}
	}
}
