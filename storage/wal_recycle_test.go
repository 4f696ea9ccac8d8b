package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lastSegment returns the path of the highest-numbered WAL segment of the
// store in dir.
func lastSegment(t *testing.T, dir string) (string, uint64) {
	t.Helper()
	seqs, err := walSegments(filepath.Join(dir, "wal"))
	if err != nil || len(seqs) == 0 {
		t.Fatalf("no WAL segment in %s (%v)", dir, err)
	}
	seq := seqs[len(seqs)-1]
	return filepath.Join(dir, "wal", segmentName(seq)), seq
}

// submitCells makes one durable single-event batch (one WAL commit) for
// each cell: 1 at minute.
func submitCells(t *testing.T, s *Store, metric uint32, minute int64, cells ...uint64) {
	t.Helper()
	for _, c := range cells {
		b := NewBatch()
		b.Add(metric, false, c, 0, minute, 1)
		p, err := s.Submit(b, nil)
		if err == nil {
			err = p.Wait()
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Release()
	}
}

// TestRecycledSegmentReplaysOnlyItsOwnRecords writes 3,000 acknowledged
// batches into a segment, flushes them into parts, and has the WAL write
// 20 more into that same file, recycled (its 3,000 frames still there
// after the new ones), then crashes. Replay must give each batch exactly
// once: none of the old frames, all of the new. An attacker then damages
// the recycled segment: a byte flipped in a new record is reported damage
// and loses that record alone; the last commit cut short at a sector
// boundary, with the old bytes after the cut, is a torn write and no
// damage; a spare file renamed to a segment and never written holds
// nothing.
func TestRecycledSegmentReplaysOnlyItsOwnRecords(t *testing.T) {
	const old, mid, fresh = 3000, 10, 20
	dir := t.TempDir()
	var mu sync.Mutex
	var snaps [][]byte // the segment after each of the fresh batches' syncs
	var recording atomic.Bool
	opts := quietOptions()
	opts.Failpoint = func(name string) {
		if name == FailpointWALSynced && recording.Load() {
			path, _ := lastSegment(t, dir)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			snaps = append(snaps, data)
			mu.Unlock()
		}
	}
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix() / 60
	submitOneEach(t, s, id, old, minute)
	if err := s.Flush(); err != nil { // its segment becomes a spare
		t.Fatal(err)
	}
	submitOneEach(t, s, id, mid, minute+1)
	if err := s.Flush(); err != nil { // the next segment is the first's file
		t.Fatal(err)
	}
	recording.Store(true)
	for c := range fresh {
		submitCells(t, s, id, minute+2, uint64(c+1))
	}
	crash(s)
	if len(snaps) != fresh {
		t.Fatalf("%d syncs recorded, want %d", len(snaps), fresh)
	}
	segment, seq := lastSegment(t, dir)
	data, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	starts, end := frameStarts(data)
	if len(starts) != fresh+1 { // the rotation's checkpoint, then the fresh batches
		t.Fatalf("segment %d: %d records, want %d", seq, len(starts), fresh+1)
	}
	var staleSeq uint64
	for prev := uint64(1); prev < seq; prev++ {
		if nextFrame3(data, end, prev) >= 0 {
			staleSeq = prev
		}
	}
	if staleSeq == 0 {
		t.Fatalf("segment %d holds no frame of an earlier segment after its records: it was not recycled", seq)
	}

	want := map[Key]int64{}
	for c := range old {
		want[Key{Metric: id, Cell: uint64(c + 1), Minute: minute}] = 1
	}
	for c := range mid {
		want[Key{Metric: id, Cell: uint64(c + 1), Minute: minute + 1}] = 1
	}
	for c := range fresh {
		want[Key{Metric: id, Cell: uint64(c + 1), Minute: minute + 2}] = 1
	}
	// replay opens a copy of the crashed store with seg as its last
	// segment and returns what it holds against want: buckets lost, and
	// the first bucket more than once or not asked for.
	replay := func(what string, seg []byte, extra func(dir string)) (lost int, st Stats, logs *logRecorder) {
		t.Helper()
		cp := filepath.Join(t.TempDir(), "store")
		copyDir(t, dir, cp)
		if err := os.WriteFile(filepath.Join(cp, "wal", segmentName(seq)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if extra != nil {
			extra(cp)
		}
		logs = &logRecorder{}
		o := quietOptions()
		o.Logf = logs.logf
		s, err := Open(cp, o)
		if err != nil {
			t.Fatalf("%s: Open: %v", what, err)
		}
		defer crash(s)
		_, got := sumAll(t, s, TierMinute, "count_car")
		for k, v := range got {
			if v != 1 || want[k] != 1 {
				t.Fatalf("%s: %v holds %d, want %d: a record replayed twice, or one of the file's earlier life\n%s", what, k, v, want[k], logs)
			}
		}
		for k := range want {
			if got[k] == 0 {
				lost++
			}
		}
		return lost, s.Stats(), logs
	}

	lost, st, logs := replay("as the crash left it", data, nil)
	if lost != 0 || st.WALDamagedRecords != 0 || logs.find("cut short") != "" {
		t.Fatalf("as the crash left it: %d lost, %d damaged; log:\n%s", lost, st.WALDamagedRecords, logs)
	}

	// A byte flipped in each fresh record in turn, the last included.
	for i, at := range starts[1:] {
		next := end
		if i+2 < len(starts) {
			next = starts[i+2]
		}
		for _, off := range []int{at, at + 5, at + walFrameHeaderSize + 1, next - 1} {
			flipped := append([]byte(nil), data...)
			flipped[off] ^= 0x10
			what := fmt.Sprintf("byte %d of record %d flipped", off, i+1)
			lost, st, logs := replay(what, flipped, nil)
			if lost != 1 || st.WALDamagedRecords != 1 || logs.find(segmentName(seq), "damaged") == "" {
				t.Fatalf("%s: %d lost, want 1; %d damaged records, want 1; log:\n%s", what, lost, st.WALDamagedRecords, logs)
			}
		}
	}

	// The last commit cut short: what the segment held after the commit
	// before, with the last commit's bytes up to a sector boundary.
	before, after := snaps[fresh-2], snaps[fresh-1]
	lastStarts, lastEnd := frameStarts(after)
	at := lastStarts[len(lastStarts)-1]
	cuts := 0
	for cut := (at/walTearAlign + 1) * walTearAlign; cut < lastEnd+walEndMarkSize; cut += walTearAlign {
		torn := append([]byte(nil), before...)
		copy(torn[at:cut], after[at:cut])
		what := fmt.Sprintf("the last commit (%d–%d) cut at %d", at, lastEnd+walEndMarkSize, cut)
		lost, st, logs := replay(what, torn, nil)
		if lost != 1 || st.WALDamagedRecords != 0 || logs.find(fmt.Sprintf("from offset %d", at), "cut short") == "" {
			t.Fatalf("%s: %d lost, want 1 (never acknowledged); %d damaged, want 0; log:\n%s", what, lost, st.WALDamagedRecords, logs)
		}
		cuts++
	}
	if cuts == 0 {
		// Cut in the middle of the record if it crosses no boundary.
		torn := append([]byte(nil), before...)
		copy(torn[at:at+walFrameHeaderSize+2], after[at:])
		lost, st, logs := replay("the last commit cut in its record", torn, nil)
		if lost != 1 || st.WALDamagedRecords != 0 || logs.find("cut short") == "" {
			t.Fatalf("the last commit cut in its record: %d lost, %d damaged; log:\n%s", lost, st.WALDamagedRecords, logs)
		}
	}

	// A spare renamed to the next segment, and the crash before its first
	// write: it holds only an earlier life's frames.
	lost, st, logs = replay("a spare claimed and never written", data, func(cp string) {
		spares, err := walSpares(filepath.Join(cp, "wal"))
		if err != nil || len(spares) == 0 {
			t.Fatalf("no spare segment (%v)", err)
		}
		if err := os.Rename(filepath.Join(cp, "wal", spares[0]), filepath.Join(cp, "wal", segmentName(seq+1))); err != nil {
			t.Fatal(err)
		}
	})
	if lost != 0 || st.WALDamagedRecords != 0 || logs.find("cut short") != "" {
		t.Fatalf("a spare claimed and never written: %d lost, %d damaged; log:\n%s", lost, st.WALDamagedRecords, logs)
	}
}

// TestOnlyFormat3SegmentsAreRecycled: a retired segment of format 2,
// whose frames would check under any number, is removed, never kept as a
// spare; one of format 3 is kept, up to maxWALSpares.
func TestOnlyFormat3SegmentsAreRecycled(t *testing.T) {
	dir := t.TempDir()
	old := append(walSegmentHeader[:], appendFrame(nil, []byte{1, 2, 3})...)
	for n := uint64(1); n <= 4; n++ {
		seg := appendFrame3(appendSegmentHeader3(nil, n), []byte{1, 2, 3}, n)
		if n == 1 {
			seg = old
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(n)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := retireWALUpTo(dir, 4); err != nil {
		t.Fatal(err)
	}
	seqs, _ := walSegments(dir)
	spares, _ := walSpares(dir)
	if len(seqs) != 0 || len(spares) != maxWALSpares {
		t.Fatalf("after retiring: segments %v, spares %v; want none and %d spares", seqs, spares, maxWALSpares)
	}
	for _, name := range spares {
		if name == spareName(1) {
			t.Fatalf("the format 2 segment was kept as a spare: %v", spares)
		}
	}
}

// TestSegment3Ranges reads made-up segments of format 3: a range without
// an intact frame is damage when an end marker follows it (an
// acknowledged commit lies beyond it), and an unfinished write when none
// does, whatever intact frames follow; an intact header naming another
// segment is an earlier life, read as room.
func TestSegment3Ranges(t *testing.T) {
	const seq = 7
	rec := func(b byte) []byte { return []byte{4, b, b, b, b, b, b, b} }
	stale := appendFrame3(appendFrame3(appendSegmentHeader3(nil, 5), rec(9), 5), nil, 5)
	stale = append(stale, stale...)
	seg := appendSegmentHeader3(nil, seq)
	a := len(seg)
	seg = appendFrame3(seg, rec(1), seq)
	seg = appendFrame3(seg, nil, seq) // the first commit's end
	b := len(seg) - walEndMarkSize    // the second commit overwrites that marker
	seg = appendFrame3(seg[:b], rec(2), seq)
	c := len(seg)
	seg = appendFrame3(seg, rec(3), seq)
	d := len(seg)
	seg = appendFrame3(seg, nil, seq) // the second commit's end
	for _, tc := range []struct {
		name    string
		data    []byte
		records []byte // the first payload byte of each replayed record
		damaged []walDamage
		torn    bool
		tornAt  int
	}{
		{"whole", seg, []byte{4, 4, 4}, nil, false, 0},
		{"whole, then an earlier life", append(append([]byte(nil), seg...), stale...), []byte{4, 4, 4}, nil, false, 0},
		{"record 2 damaged, the commit's end marker after it", flip(seg, b+20), []byte{4, 4}, []walDamage{{b, c - b}}, false, 0},
		{"record 2 unwritten, record 3 written, no end marker", append(flip(seg, b+20)[:d], stale...), []byte{4, 4}, nil, true, b},
		{"the second commit's end marker unwritten", append(append([]byte(nil), seg[:d]...), stale...), []byte{4, 4, 4}, nil, true, d},
		{"the header damaged", flip(seg, 9), []byte{4, 4, 4}, []walDamage{{0, a}}, false, 0},
		{"a spare not yet written", stale, nil, nil, false, 0},
	} {
		var got []byte
		sc, err := readSegment(tc.data, seq, func(p []byte) error {
			got = append(got, p[0])
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != string(tc.records) || fmt.Sprint(sc.damaged) != fmt.Sprint(tc.damaged) || (sc.torn > 0) != tc.torn || tc.torn && sc.tornAt != tc.tornAt {
			t.Errorf("%s: records %v, damaged %v, torn %d at %d; want %v, %v, torn %v at %d", tc.name, got, sc.damaged, sc.torn, sc.tornAt, tc.records, tc.damaged, tc.torn, tc.tornAt)
		}
	}
}

func flip(data []byte, off int) []byte {
	out := append([]byte(nil), data...)
	out[off] ^= 0x20
	return out
}
