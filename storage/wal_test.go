package storage

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// copyDir copies the regular files of a store directory tree.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logRecorder collects a store's log lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logRecorder) find(words ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		return line
	}
	return ""
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// submitOneEach makes n single-event batches durable, one WAL record each:
// cell i+1 gets 1 at minute.
func submitOneEach(t *testing.T, s *Store, metric uint32, n int, minute int64) {
	t.Helper()
	pend := make([]*Pending, n)
	bs := make([]*Batch, n)
	for i := range n {
		bs[i] = NewBatch()
		bs[i].Add(metric, false, uint64(i+1), 0, minute, 1)
		p, err := s.Submit(bs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		pend[i] = p
	}
	for i, p := range pend {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		bs[i].Release()
	}
}

// onlySegment returns the path of the one non-empty WAL segment of dir.
func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	seqs, err := walSegments(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, seq := range seqs {
		path := filepath.Join(dir, "wal", segmentName(seq))
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			found = append(found, path)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one non-empty WAL segment, have %v", found)
	}
	return found[0]
}

// frameStarts returns the offsets of the intact record frames of a
// segment of format 3, from its header on, and the offset after the last
// of them: where the last commit's end marker begins.
func frameStarts(data []byte) (starts []int, end int) {
	seq, ok := segmentHeader3(data)
	if !ok {
		return nil, 0
	}
	off := walHeader3Size
	end = off
	for {
		p, ok := frameAt3(data, off, seq)
		if !ok {
			return starts, end
		}
		if len(p) > 0 {
			starts = append(starts, off)
			end = off + walFrameHeaderSize + len(p)
		}
		off += walFrameHeaderSize + len(p)
	}
}

// recordsEnd is the offset after the last intact record of a segment.
func recordsEnd(data []byte) int {
	_, end := frameStarts(data)
	return end
}

// crashAtSync copies a store's directory as it is right after the WAL's
// nth sync, while add makes the store's batches, and returns the copy,
// its one WAL segment's path and the segment's bytes: a crash after that
// sync, before the batch was acknowledged.
func crashAtSync(t *testing.T, n int32, add func(s *Store, metric uint32, minute int64)) (crashed, segment string, data []byte) {
	t.Helper()
	dir := t.TempDir()
	crashed = filepath.Join(t.TempDir(), "store")
	var syncs atomic.Int32
	snapshot, taken := snapshotAt(t, FailpointWALSynced, dir, crashed)
	opts := quietOptions()
	opts.Failpoint = func(name string) {
		if name == FailpointWALSynced && syncs.Add(1) == n {
			snapshot(name)
		}
	}
	s := openTestStore(t, dir, opts)
	id, _ := s.MetricID("count_car")
	add(s, id, time.Now().Unix()/60)
	crash(s)
	if !taken.Load() {
		t.Fatalf("sync %d never came", n)
	}
	segment = onlySegment(t, crashed)
	data, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	return crashed, segment, data
}

// TestWALDamageLosesOneRecord flips one byte at 100 random offsets of the
// records of a WAL holding 5,000 acknowledged single-event batches: each
// time replay loses at most the batch the byte belonged to, keeps the
// damaged segment aside and reports it by segment and offset. (Bytes
// flipped in the room after the records lose nothing: every run checks
// that no more than one batch is lost.)
func TestWALDamageLosesOneRecord(t *testing.T) {
	const batches = 5000
	template := t.TempDir()
	s := openTestStore(t, template, quietOptions())
	id, _ := s.MetricID("count_car")
	minute := time.Now().Unix() / 60
	submitOneEach(t, s, id, batches, minute)
	crash(s)
	segment := onlySegment(t, template)
	name := filepath.Base(segment)
	clean, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(13, 5))
	for flip := range 100 {
		dir := filepath.Join(t.TempDir(), "store")
		copyDir(t, template, dir)
		off := rng.IntN(recordsEnd(clean))
		data := append([]byte(nil), clean...)
		data[off] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(filepath.Join(dir, "wal", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		logs := &logRecorder{}
		opts := quietOptions()
		opts.Logf = logs.logf
		s, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("flip %d at offset %d: Open: %v", flip, off, err)
		}
		_, got := sumAll(t, s, TierMinute, "count_car")
		lost := 0
		for i := range batches {
			switch v := got[Key{Metric: id, Cell: uint64(i + 1), Minute: minute}]; v {
			case 0:
				lost++
			case 1:
			default:
				t.Fatalf("flip %d at offset %d: cell %d holds %d, want 1", flip, off, i+1, v)
			}
		}
		if len(got) > batches {
			t.Fatalf("flip %d at offset %d: %d buckets after replay, want at most %d", flip, off, len(got), batches)
		}
		if lost > 1 {
			t.Fatalf("flip %d at offset %d: %d of %d batches lost, want at most 1\n%s", flip, off, lost, batches, logs)
		}
		st := s.Stats()
		if st.WALDamagedRecords < 1 || st.WALDamagedSegments != 1 {
			t.Fatalf("flip %d at offset %d: stats report %d damaged records in %d segments kept aside; want ≥1 in 1", flip, off, st.WALDamagedRecords, st.WALDamagedSegments)
		}
		if line := logs.find(name, "offset", "wal-damaged"); line == "" {
			t.Fatalf("flip %d at offset %d: no log line names the segment, the offset and where it is kept:\n%s", flip, off, logs)
		}
		// A flush retires the segment from the WAL; the copy set aside
		// stays, byte for byte as found. (Every tenth run flushes: the
		// flush is most of a run's time.)
		if flip%10 == 0 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			crash(s)
		}
		kept, err := os.ReadFile(filepath.Join(dir, "wal-damaged", name))
		if err != nil || string(kept) != string(data) {
			t.Fatalf("flip %d at offset %d: damaged segment not kept as found (%v)", flip, off, err)
		}
	}
}

// TestWALTornTailIsNotDamage kills the store right after the tenth
// batch's fsync, before it is acknowledged, and cuts that last record
// short, as a crash in the middle of its write would: the nine before it
// replay, and nothing is reported as damage.
func TestWALTornTailIsNotDamage(t *testing.T) {
	crashed, segment, data := crashAtSync(t, 10, func(s *Store, id uint32, minute int64) {
		for range 10 {
			if err := s.Add([]Delta{{Key{Metric: id, Cell: 1, Minute: minute}, 1}}); err != nil {
				t.Fatal(err)
			}
		}
	})
	end := recordsEnd(data)
	if end == len(data) {
		t.Fatal("the segment has no room after its records")
	}
	for _, cut := range []int{1, 5, walFrameHeaderSize + 1} {
		// The file ends in the record, as a write that grew it would.
		if err := os.WriteFile(segment, data[:end-cut], 0o644); err != nil {
			t.Fatal(err)
		}
		s := openTestStore(t, crashed, quietOptions())
		total, _ := sumAll(t, s, TierMinute, "count_car")
		st := s.Stats()
		crash(s)
		if total != 9 || st.WALDamagedRecords != 0 || st.WALDamagedSegments != 0 {
			t.Fatalf("cut %d bytes: total %d, want 9; damaged records %d in %d segments, want none", cut, total, st.WALDamagedRecords, st.WALDamagedSegments)
		}
	}
	if _, err := os.Stat(filepath.Join(crashed, "wal-damaged")); !os.IsNotExist(err) {
		t.Fatalf("a torn tail was set aside as damage: %v", err)
	}
}

// TestWALTornWriteIntoRoomIsNotDamage kills the store right after the
// tenth batch's fsync and undoes the end of that batch's write from a
// sector boundary on, as a crash would leave a write into the segment's
// room: zeros from there. The nine before it replay, and it is reported as
// a write cut short, not damage. A byte flipped in the same record, with
// the write whole, is damage; the room alone is neither.
func TestWALTornWriteIntoRoomIsNotDamage(t *testing.T) {
	const batches, cells = 10, 300
	crashed, segment, data := crashAtSync(t, batches, func(s *Store, id uint32, minute int64) {
		for b := range batches {
			ds := make([]Delta, cells)
			for c := range ds {
				// Every batch other cells: a record of a few kilobytes.
				ds[c] = Delta{Key{Metric: id, Cell: uint64(b*cells + c + 1), Minute: minute}, 1}
			}
			if err := s.Add(ds); err != nil {
				t.Fatal(err)
			}
		}
	})
	starts, end := frameStarts(data)
	if len(starts) != batches || end == len(data) {
		t.Fatalf("%d frames, records end at %d of %d bytes; want %d frames and room after them", len(starts), end, len(data), batches)
	}
	last := starts[len(starts)-1]
	replay := func(what string, seg []byte) (total int64, st Stats, logs *logRecorder) {
		t.Helper()
		if err := os.WriteFile(segment, seg, 0o644); err != nil {
			t.Fatal(err)
		}
		logs = &logRecorder{}
		o := quietOptions()
		o.Logf = logs.logf
		s, err := Open(crashed, o)
		if err != nil {
			t.Fatalf("%s: Open: %v", what, err)
		}
		total, _ = sumAll(t, s, TierMinute, "count_car")
		st = s.Stats()
		crash(s)
		os.RemoveAll(filepath.Join(crashed, walDamagedDir))
		return total, st, logs
	}

	total, st, logs := replay("as the crash left it", data)
	if total != batches*cells || st.WALDamagedRecords != 0 || logs.find("cut short") != "" {
		t.Fatalf("room alone: total %d, want %d; %d damaged records; log:\n%s", total, batches*cells, st.WALDamagedRecords, logs)
	}
	cuts := 0
	for cut := (last/walTearAlign + 1) * walTearAlign; cut < end; cut += walTearAlign {
		torn := append([]byte(nil), data...)
		clear(torn[cut:])
		what := fmt.Sprintf("zeros from %d (the last record is %d–%d)", cut, last, end)
		total, st, logs := replay(what, torn)
		if total != (batches-1)*cells || st.WALDamagedRecords != 0 || logs.find(fmt.Sprintf("from offset %d", last), "cut short") == "" {
			t.Fatalf("%s: total %d, want %d; %d damaged records, want 0; log:\n%s", what, total, (batches-1)*cells, st.WALDamagedRecords, logs)
		}
		cuts++
	}
	if cuts == 0 {
		t.Fatalf("the last record (%d–%d) crosses no sector boundary", last, end)
	}
	flipped := append([]byte(nil), data...)
	flipped[end-2] ^= 0x40
	total, st, _ = replay("a byte flipped in the last record", flipped)
	if total != (batches-1)*cells || st.WALDamagedRecords != 1 {
		t.Fatalf("a byte flipped in the last record: total %d, want %d; %d damaged records, want 1", total, (batches-1)*cells, st.WALDamagedRecords)
	}
}

// TestOldFramesReplay writes a segment in the frames of flowd before
// format 2 (length and checksum, no marker): it still replays.
func TestOldFramesReplay(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, quietOptions())
	id, _ := s.MetricID("count_car")
	crash(s)
	var seg []byte
	for i := range 3 {
		b := NewBatch()
		b.Add(id, false, 10, 0, 27000000+int64(i), int64(i+1))
		seg = appendOldFrame(seg, appendSeriesRecord(nil, &b.t, nil))
		b.Release()
	}
	s = reopenWithSegment(t, dir, seg)
	defer s.Close()
	total, _ := sumAll(t, s, TierMinute, "count_car")
	if total != 6 {
		t.Errorf("replayed old frames sum to %d, want 6", total)
	}
}

// reopenWithSegment writes seg as a WAL segment numbered after the store's
// own and opens the store in dir on it.
func reopenWithSegment(t *testing.T, dir string, seg []byte) *Store {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "wal", segmentName(999)), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	return openTestStore(t, dir, quietOptions())
}

// TestWALDirectWritesAsBuffered appends the same commits to a segment
// written with O_DIRECT (whole aligned blocks, the block before each
// commit's start rewritten from memory) and to one written through the
// page cache: commits of 1 byte to 300 KiB, starting anywhere in a block,
// some ending on a boundary, one room step after another. The two files
// must hold the same bytes after every commit (room aside: past the
// records both read as room) and after the clean stop, and replay must
// give back every record. A commit whose sync fails must leave the direct
// segment able to take the next.
func TestWALDirectWritesAsBuffered(t *testing.T) {
	dirs := [2]string{t.TempDir(), t.TempDir()}
	var ws [2]*wal
	for i, d := range dirs {
		w, err := openWAL(d)
		if err != nil {
			t.Fatal(err)
		}
		ws[i] = w
	}
	if !ws[0].direct {
		t.Skipf("the file system under %s does not take O_DIRECT", dirs[0])
	}
	ws[1].direct = setDirect(ws[1].f, false)
	rng := rand.New(rand.NewPCG(11, 12))
	var want [][]byte
	for c := range 300 {
		var payloads [][]byte
		for range 1 + rng.IntN(3) {
			n := 1 + rng.IntN(64)
			switch c % 5 {
			case 1:
				n = 1 + rng.IntN(300<<10)
			case 2:
				n = directBlock*(1+rng.IntN(4)) - walFrameHeaderSize
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32() | 1)
			}
			payloads = append(payloads, p)
		}
		if c%23 == 7 {
			// The direct segment writes this commit, and its sync fails:
			// the commit is not acknowledged, the file cut back.
			ws[0].failSync = errors.New("a sync that fails")
			if err := ws[0].append(payloads); err == nil {
				t.Fatalf("commit %d: a failed sync acknowledged", c)
			}
			continue
		}
		want = append(want, payloads...)
		for i, w := range ws {
			if err := w.append(payloads); err != nil {
				t.Fatalf("commit %d, wal %d: %v", c, i, err)
			}
		}
		if ws[0].size != ws[1].size {
			t.Fatalf("commit %d: sizes %d and %d", c, ws[0].size, ws[1].size)
		}
		if !ws[0].direct {
			t.Fatalf("commit %d: the direct segment fell back to the page cache", c)
		}
		if c%37 == 0 {
			a, b := segmentBytes(t, ws[0]), segmentBytes(t, ws[1])
			if string(a[:ws[0].size]) != string(b[:ws[1].size]) {
				t.Fatalf("commit %d: the segments' records differ", c)
			}
		}
	}
	for i, w := range ws {
		if err := w.close(); err != nil {
			t.Fatal(i, err)
		}
	}
	a, b := segmentBytes(t, ws[0]), segmentBytes(t, ws[1])
	if string(a) != string(b) {
		t.Fatalf("after the clean stop the segments differ: %d and %d bytes", len(a), len(b))
	}
	var got int
	err := replayWAL(dirs[0], func(_ uint64, p []byte) error {
		if got < len(want) && string(p) != string(want[got]) {
			t.Fatalf("record %d differs", got)
		}
		got++
		return nil
	}, func(seq uint64, path string, sc segmentScan) {})
	if err != nil || got != len(want) {
		t.Fatalf("replayed %d records of %d (%v)", got, len(want), err)
	}
}

// segmentBytes reads a WAL's current segment file.
func segmentBytes(t *testing.T, w *wal) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.dir, segmentName(w.seq)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestWALDirectRefusedFallsBack has the file system refuse a direct write
// (memory off the block alignment O_DIRECT asks: EINVAL, as a file system
// that takes the flag but not the write answers) in the middle of a
// segment: that commit and the later ones go through the page cache, and
// replay gives back every record, those before and after.
func TestWALDirectRefusedFallsBack(t *testing.T) {
	dir := t.TempDir()
	w, err := openWAL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !w.direct {
		t.Skipf("the file system under %s does not take O_DIRECT", dir)
	}
	var want []string
	commit := func(s string) {
		t.Helper()
		if err := w.append([][]byte{[]byte(s)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	commit("before, direct")
	commit(strings.Repeat("x", 5000))
	// The next direct write's memory one byte off a block: refused.
	off := alignedBytes(1<<20 + 1)[1:]
	copy(off, w.dbuf[:w.tail])
	w.dbuf = off
	commit("refused direct, written through the page cache")
	if w.direct {
		t.Skip("the file system took a misaligned direct write")
	}
	commit("after, through the page cache")
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := replayWAL(dir, func(_ uint64, p []byte) error { got = append(got, string(p)); return nil }, func(uint64, string, segmentScan) {}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d records, want %d: %.40q", len(got), len(want), got)
	}
}
