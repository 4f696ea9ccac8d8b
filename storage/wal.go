package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walRecordHeaderSize is the length and checksum in front of each record.
const walRecordHeaderSize = 8

// maxWALRecord bounds one record so a damaged length cannot make replay
// allocate without limit.
const maxWALRecord = 256 << 20

// wal is the write-ahead log: numbered segment files of checksummed records.
// Only the store's commit goroutine appends; rotation happens under the
// store's lock, so no locking is needed here.
type wal struct {
	dir  string
	seq  uint64 // the segment being appended
	f    *os.File
	size int64
	buf  []byte
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%016d.wal", seq)
}

// walSegments lists the segment numbers in dir, ascending.
func walSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".wal"), 10, 64)
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
	path := filepath.Join(w.dir, segmentName(w.seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f = f
	w.size = 0
	return nil
}

// append writes the payloads as records and fsyncs once. On failure the
// segment is cut back to where it was, so nothing unacknowledged is replayed.
func (w *wal) append(payloads [][]byte) error {
	if w.f == nil {
		// A previous failure could not restore the segment; start another.
		w.seq++
		if err := w.create(); err != nil {
			w.seq--
			return err
		}
	}
	w.buf = w.buf[:0]
	for _, p := range payloads {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(p)))
		w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(p, castagnoli))
		w.buf = append(w.buf, p...)
	}
	_, err := w.f.Write(w.buf)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			w.f.Close()
			w.f = nil
		} else if _, serr := w.f.Seek(w.size, io.SeekStart); serr != nil {
			w.f.Close()
			w.f = nil
		}
		return fmt.Errorf("cannot write WAL segment %s: %w", segmentName(w.seq), err)
	}
	w.size += int64(len(w.buf))
	return nil
}

// rotate closes the current segment and starts the next one. It returns the
// number of the segment that was closed.
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

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// errTornRecord marks the end of the readable records of a segment.
var errTornRecord = errors.New("torn or damaged record")

// replayWAL calls fn for every intact record of every segment in dir, in
// order. A damaged record ends its segment: it is logged with its segment and
// offset, and replay goes on with the next segment, since a crash can only
// tear the tail of the segment being written.
func replayWAL(dir string, logf func(string, ...any), fn func(seq uint64, payload []byte) error) error {
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
		off, err := replaySegment(data, func(p []byte) error { return fn(seq, p) })
		if errors.Is(err, errTornRecord) {
			logf("storage: WAL %s: %v at offset %d of %d; the rest of the segment is skipped", path, err, off, len(data))
		} else if err != nil {
			return fmt.Errorf("WAL %s offset %d: %w", path, off, err)
		}
	}
	return nil
}

func replaySegment(data []byte, fn func([]byte) error) (int, error) {
	off := 0
	for off < len(data) {
		if len(data)-off < walRecordHeaderSize {
			return off, errTornRecord
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n > maxWALRecord || n > len(data)-off-walRecordHeaderSize {
			return off, errTornRecord
		}
		p := data[off+walRecordHeaderSize : off+walRecordHeaderSize+n]
		if crc32.Checksum(p, castagnoli) != sum {
			return off, errTornRecord
		}
		if err := fn(p); err != nil {
			return off, err
		}
		off += walRecordHeaderSize + n
	}
	return off, nil
}
