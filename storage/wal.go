package storage

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// wal is the write-ahead log: numbered segment files of framed records
// (wal_frame.go).
// Only the store's commit goroutine appends; rotation happens under the
// store's lock, so no locking is needed here.
//
// A segment is written into room: blocks the file already has, so that a
// group commit overwrites them and its fdatasync writes data only. An
// append that grows the file makes every sync commit the file's new size
// to the file system's journal as well, which on this kind of machine
// costs nearly twice the CPU and 1.5× the time (BenchmarkWALCommit). The
// room is extended by a step (roomStep) in the commit that comes near its
// end, and cut off when the segment is closed by a clean stop. The room a
// segment
// starts with is a retired segment's file, recycled (format 3,
// wal_frame3.go): its old frames do not check under the new number, so
// they need no zeros written over them. Only a segment larger than any
// before needs zeros ahead of it.
//
// Where the file system takes it, a segment is written with O_DIRECT, its
// records and room going from flowd's memory to the disk without a copy
// in the page cache (appendDirect): nothing reads them but a replay.
type wal struct {
	dir string
	seq uint64 // the segment being appended
	f   *os.File
	// size is the bytes of the header, records and the last commit's end
	// marker, which the next commit overwrites.
	size int64
	end  int64 // the file's length: room from size to end
	buf  []byte
	// direct is set while the segment's writes bypass the page cache
	// (O_DIRECT, see appendDirect); dbuf is their aligned buffer, where
	// a commit is made: its first tail bytes are the segment's bytes from
	// the last block boundary at or before the next commit's start
	// (already on disk), the commit's after them. buf is where a commit
	// written through the page cache is made.
	direct bool
	dbuf   []byte
	tail   int
	// failSync, when set, is the error of the next commit's sync (tests).
	failSync error
}

// directBlock is what O_DIRECT asks a write's offset, length and memory to
// be multiples of: the page size, a multiple of any logical block size.
const directBlock = 4096

func alignDown(n int64) int64 { return n &^ (directBlock - 1) }
func alignUp(n int64) int64   { return alignDown(n + directBlock - 1) }

// alignedBytes returns a slice of n bytes whose memory starts at a
// multiple of directBlock.
func alignedBytes(n int) []byte {
	b := make([]byte, n+directBlock)
	off := (directBlock - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(directBlock-1))) & (directBlock - 1)
	return b[off : off+n : off+n]
}

// minWALRoom and maxWALRoom bound one extension of a segment's room.
const (
	minWALRoom = 2 << 20
	maxWALRoom = 32 << 20
)

// roomStep is how far past a commit of n bytes its segment's room is
// extended: minWALRoom, or four such commits if that is more, at most
// maxWALRoom. A step is small because zeros a segment never reaches cost
// as much as the records' own writes (page cache filled), while a
// step's own cost is one journal commit, the file's new length, in its
// commit's fdatasync: about 80 µs of CPU, the price of some 30 KB of
// zeros here. Half the segment's size (the step before) left a fresh
// data directory, whose segments find no retired file to recycle, with
// zeros for a third more than its records took: 38 MB of zeros for
// 29 MB of records over the bench's detector feed (now 29.5 MB).
func roomStep(n int64) int64 {
	return min(max(4*n, minWALRoom), maxWALRoom)
}

// zeros is written to make room.
var zeros = alignedBytes(256 << 10) // aligned for a direct write

func segmentName(seq uint64) string {
	return fmt.Sprintf("%016d.wal", seq)
}

// walSegments lists the segment numbers in dir, ascending.
func walSegments(dir string) ([]uint64, error) { return numberedFiles(dir, ".wal") }

// numberedFiles lists, ascending, the numbers n of the files of dir named
// n followed by suffix.
func numberedFiles(dir, suffix string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, suffix), 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, n)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// openWAL starts a new segment numbered after every existing one, so a
// torn tail of an old segment is never appended to.
func openWAL(dir string) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	seqs, err := walSegments(dir)
	if err != nil {
		return nil, err
	}
	w := &wal{dir: dir, seq: 1}
	if len(seqs) > 0 {
		w.seq = seqs[len(seqs)-1] + 1
	}
	if err := w.create(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wal) create() error {
	w.tail = 0
	path := filepath.Join(w.dir, segmentName(w.seq))
	if f, size, ok := claimSpare(w.dir, path); ok {
		w.f = f
		w.size, w.end = 0, size
		w.direct = setDirect(f, true)
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f = f
	w.size, w.end = 0, 0
	w.direct = setDirect(f, true)
	return nil
}

// makeRoom extends the segment with zeros so that it holds need bytes
// and a step after them, for commits of n bytes (roomStep). It is best
// effort (a full disk leaves the room short, and the commit then grows
// the file); the zeros become durable with the records of the same
// commit, by its fdatasync.
func (w *wal) makeRoom(need, n int64) {
	to := need + roomStep(n)
	if w.direct {
		// Whole blocks from the block after the file's end: the bytes
		// up to that boundary read as zeros already.
		to, w.end = alignUp(to), alignUp(w.end)
	}
	for w.end < to {
		n := int(min(to-w.end, int64(len(zeros))))
		k, err := w.f.WriteAt(zeros[:n], w.end)
		w.end += int64(k)
		if err != nil {
			return
		}
	}
}

// append writes the payloads as records and syncs once (fdatasync). On
// failure the segment is cut back to where it was, room and all, so
// nothing unacknowledged is replayed.
func (w *wal) append(payloads [][]byte) error {
	if w.f == nil {
		// A previous failure could not restore the segment; start another.
		w.seq++
		if err := w.create(); err != nil {
			w.seq--
			return err
		}
	}
	at := max(w.size-walEndMarkSize, 0) // over the last commit's end marker
	// The commit's bytes: a direct segment's are made in place in dbuf,
	// after the bytes kept of the block they start in.
	n := walEndMarkSize
	if w.size == 0 {
		n += walHeader3Size
	}
	for _, p := range payloads {
		if len(p) == 0 {
			return fmt.Errorf("BUG: an empty WAL record")
		}
		n += walFrameHeaderSize + len(p)
	}
	b := w.buf[:0]
	if w.direct {
		w.reserveDirect(w.tail + n)
		b = w.dbuf[w.tail:w.tail]
	}
	if w.size == 0 {
		b = appendSegmentHeader3(b, w.seq)
	}
	for _, p := range payloads {
		b = appendFrame3(b, p, w.seq)
	}
	b = appendFrame3(b, nil, w.seq)
	if len(b) != n {
		return fmt.Errorf("BUG: a WAL commit of %d bytes, want %d", len(b), n)
	}
	need := at + int64(n)
	var err error
	if w.direct {
		err = w.appendDirect(at, n)
	} else {
		w.buf = b
		_, err = w.f.WriteAt(b, at)
	}
	if err == nil {
		w.end = max(w.end, need)
		if need+int64(n) > w.end {
			// The next commit like this one would run past the room.
			w.makeRoom(need, int64(n))
		}
		// fdatasync: the file's length, when this commit changed it, is
		// metadata the data needs, so it is made durable too.
		if err = w.failSync; err != nil {
			w.failSync = nil
		} else {
			err = fdatasync(w.f)
		}
	}
	if err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			w.f.Close()
			w.f = nil
		}
		w.end = w.size
		return fmt.Errorf("cannot write WAL segment %s: %w", segmentName(w.seq), err)
	}
	if w.direct {
		w.keepTail(at, need)
	}
	w.size = need
	return nil
}

// appendDirect writes the commit of n bytes made in dbuf after its tail
// at at, bypassing the page cache. A commit's records are written once
// and read only by a replay, after a crash: in the page cache they would
// cost a fresh page's fill and a copy each (a detector run of the bench
// writes 29 MB of records and as much room), and hold memory nothing
// reads. O_DIRECT writes whole aligned blocks, so the write starts at the
// block boundary at or before at, rewriting the bytes before at (the
// last commit's, kept in dbuf: the same bytes, so a write torn there
// loses nothing acknowledged), and ends padded with zeros to the next
// boundary (room, or a recycled file's stale bytes, which read as room).
// The file on disk is the same as the buffered write's. A file system
// that refuses the write (EINVAL) gets this and the segment's later
// writes through the page cache.
func (w *wal) appendDirect(at int64, n int) error {
	base := alignDown(at)
	if int64(w.tail) != at-base {
		return fmt.Errorf("BUG: a direct WAL write kept %d bytes of its block, want %d", w.tail, at-base)
	}
	used := w.tail + n
	end := int(alignUp(int64(used)))
	clear(w.dbuf[used:end])
	_, err := w.f.WriteAt(w.dbuf[:end], base)
	if errors.Is(err, syscall.EINVAL) {
		w.direct = setDirect(w.f, false)
		_, err = w.f.WriteAt(w.dbuf[w.tail:used], at)
		return err
	}
	if err != nil {
		return err
	}
	w.end = max(w.end, base+int64(end))
	return nil
}

// reserveDirect makes dbuf hold n bytes and their padding to a block,
// its first tail bytes kept. It grows to a quarter more than asked and
// stays that size: as large as the largest commit yet (a group commit
// is at most maxGroupBytes, unless one record is larger) and a quarter.
func (w *wal) reserveDirect(n int) {
	if int(alignUp(int64(n))) <= len(w.dbuf) {
		return
	}
	grown := alignedBytes(int(alignUp(int64(n + n/4))))
	copy(grown, w.dbuf[:w.tail])
	w.dbuf = grown
}

// keepTail keeps, at dbuf's start, the bytes of the block that the next
// commit starts in, up to where it starts (over this commit's end marker,
// at need-walEndMarkSize), once this commit, written by appendDirect at
// at, is durable; a commit that failed leaves the last one's.
func (w *wal) keepTail(at, need int64) {
	base, next := alignDown(at), need-walEndMarkSize
	w.tail = copy(w.dbuf, w.dbuf[alignDown(next)-base:next-base])
}

// cutRoom drops the zeros after the records of a segment no longer
// appended. The cut need not be durable: room left by a crash reads as room.
func (w *wal) cutRoom() {
	if w.end > w.size {
		w.f.Truncate(w.size)
		w.end = w.size
	}
}

// rotate closes the current segment, its room left for the file's next
// life (see retireWALUpTo), and starts the next one. It returns the number
// of the segment that was closed.
func (w *wal) rotate() (uint64, error) {
	closed := w.seq
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return 0, err
		}
		w.f = nil
	}
	w.seq++
	if err := w.create(); err != nil {
		// append retries creating a segment.
		w.seq--
		return closed, err
	}
	return closed, nil
}

// abandon closes the segment as a crash would leave it, room and all
// (tests).
func (w *wal) abandon() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	w.cutRoom()
	err := w.f.Close()
	w.f = nil
	return err
}

// replayWAL calls fn for every intact record of every segment in dir, in
// order, and report with what reading each segment found besides: damaged
// ranges it skipped, a torn tail it ignored.
func replayWAL(dir string, fn func(seq uint64, payload []byte) error, report func(seq uint64, path string, sc segmentScan)) error {
	seqs, err := walSegments(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, seq := range seqs {
		path := filepath.Join(dir, segmentName(seq))
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sc, err := readSegment(data, seq, func(p []byte) error { return fn(seq, p) })
		if err != nil {
			return fmt.Errorf("WAL %s: %w", path, err)
		}
		report(seq, path, sc)
	}
	return nil
}

// keepSegment copies a WAL segment into dir, unless a copy of it is there
// already, so that the evidence of damage outlives the segment.
func keepSegment(path, dir string) (string, error) {
	dst := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(dst, data); err != nil {
		return "", err
	}
	return dst, nil
}

// maxWALSpares is how many retired segments are kept to be written into
// again; maxSpareBytes is the largest kept (a burst's segment is removed).
const (
	maxWALSpares  = 2
	maxSpareBytes = 128 << 20
)

func spareName(seq uint64) string {
	return fmt.Sprintf("%016d.spare", seq)
}

// walSpares lists the spare segment files in dir.
func walSpares(dir string) ([]string, error) {
	seqs, err := numberedFiles(dir, ".spare")
	names := make([]string, len(seqs))
	for i, n := range seqs {
		names[i] = spareName(n)
	}
	return names, err
}

// retireWALUpTo retires the WAL segments numbered at most seq, whose
// records are all in parts: a segment of format 3 becomes a spare while
// fewer than maxWALSpares are kept, for a later segment to be written
// into; the others are removed. A segment of an older format is never
// recycled: its frames would check under any number.
func retireWALUpTo(dir string, seq uint64) error {
	seqs, err := walSegments(dir)
	if err != nil {
		return err
	}
	spares, err := walSpares(dir)
	if err != nil {
		return err
	}
	changed := false
	for _, n := range seqs {
		if n > seq {
			break
		}
		path := filepath.Join(dir, segmentName(n))
		if len(spares) < maxWALSpares && recyclable(path) {
			if err := os.Rename(path, filepath.Join(dir, spareName(n))); err != nil {
				return err
			}
			spares = append(spares, spareName(n))
		} else if err := os.Remove(path); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return syncDir(dir)
	}
	return nil
}

// recyclable reports whether the segment file at path may become a spare:
// of format 3 and not too large.
func recyclable(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [len(walMagic3)]byte
	fi, err := f.Stat()
	if err != nil || fi.Size() > maxSpareBytes {
		return false
	}
	_, err = f.ReadAt(head[:], 0)
	return err == nil && head == walMagic3
}

// claimSpare renames a spare segment file to path, the next segment, and
// opens it for writing, keeping its contents (read as room until this
// segment's writes cover them). It reports false when there is no spare
// to take.
func claimSpare(dir, path string) (*os.File, int64, bool) {
	spares, err := walSpares(dir)
	if err != nil {
		return nil, 0, false
	}
	for _, name := range spares {
		src := filepath.Join(dir, name)
		if !recyclable(src) {
			os.Remove(src)
			continue
		}
		if err := os.Rename(src, path); err != nil {
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			os.Remove(path)
			continue
		}
		fi, err := f.Stat()
		if err == nil {
			err = syncDir(dir)
		}
		if err != nil {
			f.Close()
			os.Remove(path)
			continue
		}
		return f, fi.Size(), true
	}
	return nil, 0, false
}
