package remote

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowd/flowd/storage"
	"github.com/klauspost/compress/zstd"
)

// journal is the rows of one tier of one flush that were not yet cut when
// the flush told them: the WAL segments after afterSeq up to seq. A folded
// journal holds, summed, the rows of every journal of its tier up to seq
// (see fold).
type journal struct {
	name          string
	tier          storage.Tier
	afterSeq, seq uint64
	folded        bool
	rows          []storage.Row
	end           int64 // the latest end (Minute+Span) of its rows
}

// foldedPrefix starts the name of a folded journal.
const foldedPrefix = "folded-"

// foldedName is the file name of the folded journal of tier t's journals
// up to WAL segment seq.
func foldedName(t storage.Tier, seq uint64) string {
	return fmt.Sprintf("%s%s-%016x.zst", foldedPrefix, t, seq)
}

// journalMagic opens every journal file, with its format version.
const journalMagic = "flowd-journal\x01"

// journalName is the file name of the journal of tier t's flush of the
// WAL segments after afterSeq up to seq.
func journalName(t storage.Tier, afterSeq, seq uint64) string {
	return fmt.Sprintf("%s-%016x-%016x.zst", t, afterSeq, seq)
}

// parseJournalName reads a journal file name, folded or not; ok is false
// for another file.
func parseJournalName(name string) (t storage.Tier, afterSeq, seq uint64, folded, ok bool) {
	base, found := strings.CutSuffix(name, ".zst")
	base, folded = strings.CutPrefix(base, foldedPrefix)
	parts := strings.Split(base, "-")
	if !found || len(parts) != 3 && !folded || len(parts) != 2 && folded {
		return 0, 0, 0, false, false
	}
	switch parts[0] {
	case storage.TierMinute.String():
		t = storage.TierMinute
	case storage.TierHour.String():
		t = storage.TierHour
	default:
		return 0, 0, 0, false, false
	}
	s, err := strconv.ParseUint(parts[len(parts)-1], 16, 64)
	if folded {
		return t, 0, s, true, err == nil
	}
	a, err1 := strconv.ParseUint(parts[1], 16, 64)
	return t, a, s, false, err == nil && err1 == nil
}

// encodeJournal appends the rows, zstd-compressed: the magic, then the
// number of metric names and each name (uvarint length, bytes), then the
// number of rows and each row as uvarint metric index, cell (8 bytes
// little-endian), uvarint sub, varint minute, uvarint span, varint value.
func encodeJournal(dst []byte, rows []storage.Row) []byte {
	index := map[string]uint64{}
	var names []string
	for _, r := range rows {
		if _, ok := index[r.Metric]; !ok {
			index[r.Metric] = uint64(len(names))
			names = append(names, r.Metric)
		}
	}
	var raw []byte
	raw = binary.AppendUvarint(raw, uint64(len(names)))
	for _, n := range names {
		raw = binary.AppendUvarint(raw, uint64(len(n)))
		raw = append(raw, n...)
	}
	raw = binary.AppendUvarint(raw, uint64(len(rows)))
	for _, r := range rows {
		raw = binary.AppendUvarint(raw, index[r.Metric])
		raw = binary.LittleEndian.AppendUint64(raw, r.Cell)
		raw = binary.AppendUvarint(raw, r.Sub)
		raw = binary.AppendVarint(raw, r.Minute)
		raw = binary.AppendUvarint(raw, uint64(r.Span))
		raw = binary.AppendVarint(raw, r.Value)
	}
	dst = append(dst, journalMagic...)
	return zstdEncoder.EncodeAll(raw, dst)
}

var (
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
)

var errJournal = errors.New("damaged journal")

// readJournal reads the journal file at path.
func readJournal(path string) (*journal, error) {
	name := filepath.Base(path)
	t, afterSeq, seq, folded, ok := parseJournalName(name)
	if !ok {
		return nil, fmt.Errorf("%s: not a journal name", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	body, ok := strings.CutPrefix(string(data), journalMagic)
	if !ok {
		return nil, fmt.Errorf("%s: %w: no %q header", path, errJournal, journalMagic)
	}
	raw, err := zstdDecoder.DecodeAll([]byte(body), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, errJournal, err)
	}
	j := &journal{name: name, tier: t, afterSeq: afterSeq, seq: seq, folded: folded}
	if j.rows, err = decodeRows(raw); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, errJournal, err)
	}
	for _, r := range j.rows {
		j.end = max(j.end, r.Minute+r.Span)
	}
	return j, nil
}

func decodeRows(raw []byte) ([]storage.Row, error) {
	d := decoder{b: raw}
	names := make([]string, d.uvarint())
	for i := range names {
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return nil, errors.New("a metric name runs past the end")
		}
		names[i] = string(d.b[:n])
		d.b = d.b[n:]
	}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, errors.New("more rows than bytes")
	}
	rows := make([]storage.Row, 0, n)
	for range n {
		var r storage.Row
		m := d.uvarint()
		if m >= uint64(len(names)) {
			return nil, fmt.Errorf("row %d: metric index %d of %d", len(rows), m, len(names))
		}
		r.Metric = names[m]
		r.Cell = d.uint64()
		r.Sub = d.uvarint()
		r.Minute = d.varint()
		r.Span = int64(d.uvarint())
		r.Value = d.varint()
		if d.err != nil {
			return nil, fmt.Errorf("row %d: %v", len(rows), d.err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// decoder reads varints from b, keeping the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("cut short")
	}
	d.b = nil
}
