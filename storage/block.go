package storage

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
	"github.com/klauspost/compress/zstd"
)

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
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
)

var encodeBufPool = sync.Pool{New: func() any { return new([]byte) }}

// encodeColumn encodes one column of a block and appends it to dst. Cell
// ids are stored as deltas from the previous row (varints), the other
// columns with VictoriaMetrics' nearest-delta encodings; the result is
// compressed with zstd when that makes it smaller.
func encodeColumn(dst []byte, col int, vals []int64, scratch []int64) ([]byte, columnHeader, []int64) {
	var ch columnHeader
	bp := encodeBufPool.Get().(*[]byte)
	raw := (*bp)[:0]
	if col == colCell {
		scratch = append(scratch[:0], vals...)
		for i := len(scratch) - 1; i > 0; i-- {
			scratch[i] -= scratch[i-1]
		}
		ch.FirstValue = scratch[0]
		raw = encoding.MarshalVarInt64s(raw, scratch[1:])
		ch.MarshalType = 0xff
	} else {
		raw, ch.MarshalType, ch.FirstValue = encoding.MarshalValues(raw, vals, 64)
	}
	start := len(dst)
	if len(raw) >= 64 && !isZSTDType(ch.MarshalType) {
		dst = zstdEncoder.EncodeAll(raw, dst)
		if len(dst)-start < len(raw) {
			ch.Compressed = true
		} else {
			dst = append(dst[:start], raw...)
		}
	} else {
		dst = append(dst, raw...)
	}
	ch.Size = uint32(len(dst) - start)
	*bp = raw
	encodeBufPool.Put(bp)
	return dst, ch, scratch
}

func isZSTDType(mt encoding.MarshalType) bool {
	return mt == encoding.MarshalTypeZSTDNearestDelta || mt == encoding.MarshalTypeZSTDNearestDelta2
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
	if col == colCell {
		dst = append(dst[:0], ch.FirstValue)
		var err error
		dst, err = unmarshalVarInt64sN(dst, src, rows-1)
		if err != nil {
			return dst, tmp, err
		}
		for i := 1; i < len(dst); i++ {
			dst[i] += dst[i-1]
		}
		return dst, tmp, nil
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

func unmarshalVarInt64sN(dst []int64, src []byte, n int) ([]int64, error) {
	start := len(dst)
	for cap(dst)-start < n {
		dst = append(dst[:cap(dst)], 0)
	}
	dst = dst[:start+n]
	tail, err := encoding.UnmarshalVarInt64s(dst[start:], src)
	if err != nil {
		return dst, err
	}
	if len(tail) != 0 {
		return dst, fmt.Errorf("%d unexpected bytes after %d varints", len(tail), n)
	}
	return dst, nil
}
