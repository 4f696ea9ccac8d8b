package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
	"github.com/klauspost/compress/zstd"
)

// zstdWindow is the encoders' window: a column block of maxBlockRows
// values of up to 10 bytes each fits.
const zstdWindow = 128 << 10

// maxBlockRows bounds the rows of one block: a query decodes whole blocks,
// so this is the granularity of seeks.
const maxBlockRows = 8192

// The columns of a part, each in a file of its own.
const (
	colMetric = iota
	colCell
	colSub
	colMinute
	colValue
	numColumns
)

var columnFiles = [numColumns]string{"metric.bin", "cell.bin", "sub.bin", "minute.bin", "value.bin"}

// block holds the rows of one block, column by column, sorted by key.
type block struct {
	metrics []int64
	cells   []int64
	subs    []int64
	minutes []int64
	values  []int64
}

func (b *block) reset() {
	b.metrics = b.metrics[:0]
	b.cells = b.cells[:0]
	b.subs = b.subs[:0]
	b.minutes = b.minutes[:0]
	b.values = b.values[:0]
}

// columns returns the column slices in column order.
func (b *block) columns() [numColumns]*[]int64 {
	return [numColumns]*[]int64{&b.metrics, &b.cells, &b.subs, &b.minutes, &b.values}
}

func (b *block) len() int { return len(b.values) }

func (b *block) append(k Key, v int64) {
	b.metrics = append(b.metrics, int64(k.Metric))
	b.cells = append(b.cells, int64(k.Cell))
	b.subs = append(b.subs, int64(k.Sub))
	b.minutes = append(b.minutes, k.Minute)
	b.values = append(b.values, v)
}

// appendRun appends rows of key k at minutes, of values.
func (b *block) appendRun(k SeriesKey, minutes, values []int64) {
	b.metrics = appendRepeat(b.metrics, int64(k.Metric), len(minutes))
	b.cells = appendRepeat(b.cells, int64(k.Cell), len(minutes))
	b.subs = appendRepeat(b.subs, int64(k.Sub), len(minutes))
	b.minutes = append(b.minutes, minutes...)
	b.values = append(b.values, values...)
}

// appendRepeat appends n copies of x to col.
func appendRepeat(col []int64, x int64, n int) []int64 {
	at := len(col)
	col = slices.Grow(col, n)[:at+n]
	tail := col[at:]
	for i := range tail {
		tail[i] = x
	}
	return col
}

func (b *block) key(i int) Key {
	return Key{Metric: uint32(b.metrics[i]), Cell: uint64(b.cells[i]), Sub: uint64(b.subs[i]), Minute: b.minutes[i]}
}

// columnHeader locates and describes one column of one block.
type columnHeader struct {
	Offset      uint64
	Size        uint32
	MarshalType encoding.MarshalType
	Compressed  bool
	FirstValue  int64
	Checksum    uint32
}

var (
	// Flushes and small merges write their columns uncompressed, since
	// their parts are merged soon (a nil encoder, see encodeColumn);
	// zstdFlush compresses their index. Merges compress harder. zstd's
	// strongest level would hold 34 MiB of match tables for good, a fifth of flowd's memory, to gain little on blocks
	// of varint deltas; the level below holds 4.
	// A column block is at most maxBlockRows varints, so a window beyond
	// that only holds memory: zstd's default keeps 16 MiB of history.
	zstdFlush, _   = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
	zstdMerge, _   = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

var encodeBufPool = sync.Pool{New: func() any { return new([]byte) }}

// deltaRunsType marks a column stored as runs of equal differences (see
// encodeColumn).
const deltaRunsType = 0xfe

// encodeColumn encodes one column of a block and appends it to dst. Cell
// ids are stored as runs of equal differences — rows are sorted by cell, so
// a block holds a few long runs of one cell (a difference of 0); the other
// columns use VictoriaMetrics' nearest-delta encodings, except that minutes
// too are stored as runs when that is smaller (a series reporting every
// minute is one run). The result is compressed with enc when that makes it
// smaller; a nil enc leaves it uncompressed.
// VictoriaMetrics' own zstd stage is undone first so that a column is
// compressed once, at enc's level.
func encodeColumn(dst []byte, enc *zstd.Encoder, col int, vals []int64) ([]byte, columnHeader) {
	var ch columnHeader
	bp := encodeBufPool.Get().(*[]byte)
	defer encodeBufPool.Put(bp)
	raw := (*bp)[:0]
	if col == colCell {
		raw = appendDeltaRuns(raw, vals)
		ch.MarshalType = deltaRunsType
		*bp = raw
	} else {
		raw, ch.MarshalType, ch.FirstValue = marshalPlain(raw, vals)
		*bp = raw
		if col == colMinute && ch.MarshalType != encoding.MarshalTypeConst && ch.MarshalType != encoding.MarshalTypeDeltaConst {
			rp := encodeBufPool.Get().(*[]byte)
			defer encodeBufPool.Put(rp)
			*rp = appendDeltaRuns((*rp)[:0], vals)
			if len(*rp) <= len(raw) {
				raw, ch.MarshalType, ch.FirstValue = *rp, deltaRunsType, 0
			}
		}
	}
	start := len(dst)
	if enc != nil && len(raw) >= 64 {
		dst = enc.EncodeAll(raw, dst)
		if len(dst)-start < len(raw) {
			ch.Compressed = true
		} else {
			dst = append(dst[:start], raw...)
		}
	} else {
		dst = append(dst, raw...)
	}
	ch.Size = uint32(len(dst) - start)
	return dst, ch
}

// decodeColumn is the inverse of encodeColumn.
func decodeColumn(dst []int64, col int, src []byte, ch columnHeader, rows int, tmp []byte) ([]int64, []byte, error) {
	if ch.Compressed {
		var err error
		tmp, err = zstdDecoder.DecodeAll(src, tmp[:0])
		if err != nil {
			return dst, tmp, err
		}
		src = tmp
	}
	if ch.MarshalType == deltaRunsType {
		return decodeDeltaRuns(dst[:0], src, rows, tmp)
	}
	if err := encoding.CheckMarshalType(ch.MarshalType); err != nil {
		return dst, tmp, err
	}
	out, err := encoding.UnmarshalValues(dst[:0], src, ch.MarshalType, ch.FirstValue, rows)
	if err != nil {
		return dst, tmp, err
	}
	if len(out) != rows {
		return out, tmp, fmt.Errorf("decoded %d values, want %d", len(out), rows)
	}
	return out, tmp, nil
}

// appendDeltaRuns encodes vals as runs of equal differences from the
// previous value (the first from 0): a varint difference and a uvarint
// count per run.
func appendDeltaRuns(dst []byte, vals []int64) []byte {
	prev := int64(0)
	for i := 0; i < len(vals); {
		d := vals[i] - prev
		j := i + 1
		for j < len(vals) && vals[j]-vals[j-1] == d {
			j++
		}
		dst = binary.AppendVarint(dst, d)
		dst = binary.AppendUvarint(dst, uint64(j-i))
		prev = vals[j-1]
		i = j
	}
	return dst
}

func decodeDeltaRuns(dst []int64, src []byte, rows int, tmp []byte) ([]int64, []byte, error) {
	v := int64(0)
	for len(src) > 0 {
		d, k := binary.Varint(src)
		if k <= 0 {
			return dst, tmp, fmt.Errorf("run %d is truncated", len(dst))
		}
		src = src[k:]
		n, k := binary.Uvarint(src)
		if k <= 0 || n == 0 || n > uint64(rows-len(dst)) {
			return dst, tmp, fmt.Errorf("run of %d rows after %d of %d", n, len(dst), rows)
		}
		src = src[k:]
		for range n {
			v += d
			dst = append(dst, v)
		}
	}
	if len(dst) != rows {
		return dst, tmp, fmt.Errorf("runs hold %d rows, want %d", len(dst), rows)
	}
	return dst, tmp, nil
}
