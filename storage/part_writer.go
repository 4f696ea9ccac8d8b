package storage

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/flowd/flowd/internal/freelist"
	"github.com/klauspost/compress/zstd"
)

// partWriter writes rows, given in key order, into a new part directory.
type partWriter struct {
	tmpDir  string
	final   string // where the store renames the part once written
	files   [numColumns]*os.File
	offsets [numColumns]uint64
	headers []blockHeader
	meta    partMeta
	wb      *writerBufs // nil once given back
	last    Key
	hasLast bool
	buf     []byte
	enc     *zstd.Encoder
	// period, when not 0, is the span in minutes, aligned to the unix
	// epoch, at whose bounds blocks are cut (see hourBlockPeriod);
	// blockPeriod is the last row's.
	period, blockPeriod int64
}

// hourBlockPeriod is the span the hour tier cuts its blocks at: two
// weeks. Its rows come a cell at a time, a cell's hours in time order, so
// an uncut block of 8,192 rows would hold a cell's whole year, and a
// query of a month would decode every hour of the year. Cut where the
// rows pass into the next two weeks, a busy cell's block holds at most
// 336 of its hours, and a month's query decodes about six weeks of them.
const hourBlockPeriod = 14 * 24 * 60

// minCutRows is the fewest rows a block holds before it is cut at a
// period: series of few rows a period (a sketch's registers) would
// otherwise make a block of a few rows, and an index header of 206 bytes,
// each.
const minCutRows = 256

// writerBufs is what a part writer fills and a later one reuses: its
// block's columns and its column files' write buffers.
type writerBufs struct {
	blk  block
	bufs [numColumns]*bufio.Writer
}

// freeWriterBufs keeps the buffers of the few parts written at once (a
// flush's two tiers, a merge).
var freeWriterBufs = freelist.New[writerBufs](4)

// release gives w's buffers back for the next writer.
func (w *partWriter) release() {
	if w.wb == nil {
		return
	}
	w.wb.blk.reset()
	for _, b := range w.wb.bufs {
		if b != nil {
			b.Reset(nil)
		}
	}
	freeWriterBufs.Put(w.wb)
	w.wb = nil
}

// newPartWriter starts a part in tmpDir whose blocks enc compresses.
func newPartWriter(tmpDir string, tier Tier, enc *zstd.Encoder) (*partWriter, error) {
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, err
	}
	w := &partWriter{tmpDir: tmpDir, enc: enc, wb: freeWriterBufs.Get()}
	if w.wb == nil {
		w.wb = &writerBufs{}
	}
	w.meta = partMeta{Version: partFormatVersion, Tier: tier.String()}
	if tier == TierHour {
		w.period = hourBlockPeriod
	}
	for i, name := range columnFiles {
		f, err := os.Create(filepath.Join(tmpDir, name))
		if err != nil {
			w.abort()
			return nil, err
		}
		w.files[i] = f
		if w.wb.bufs[i] == nil {
			w.wb.bufs[i] = bufio.NewWriterSize(f, 64<<10)
		} else {
			w.wb.bufs[i].Reset(f)
		}
	}
	return w, nil
}

// add appends a row; keys must be strictly increasing.
func (w *partWriter) add(k Key, v int64) error {
	if w.hasLast && !w.last.Less(k) {
		panic(fmt.Sprintf("BUG: part rows out of order: %v after %v", k, w.last))
	}
	w.last, w.hasLast = k, true
	if err := w.cutAt(k.Minute); err != nil {
		return err
	}
	w.wb.blk.append(k, v)
	if w.wb.blk.len() >= maxBlockRows {
		return w.flushBlock()
	}
	return nil
}

// addRun appends the rows of key k at minutes (increasing), of values,
// after every row added before: as many add calls, a block's run of rows
// at a time.
func (w *partWriter) addRun(k SeriesKey, minutes, values []int64) error {
	if len(minutes) == 0 {
		return nil
	}
	first := Key{Metric: k.Metric, Cell: k.Cell, Sub: k.Sub, Minute: minutes[0]}
	if w.hasLast && !w.last.Less(first) {
		panic(fmt.Sprintf("BUG: part rows out of order: %v after %v", first, w.last))
	}
	for i := 1; i < len(minutes); i++ {
		if minutes[i] <= minutes[i-1] {
			panic(fmt.Sprintf("BUG: part rows out of order: minute %d after %d of %v", minutes[i], minutes[i-1], k))
		}
	}
	w.last, w.hasLast = Key{Metric: k.Metric, Cell: k.Cell, Sub: k.Sub, Minute: minutes[len(minutes)-1]}, true
	for i := 0; i < len(minutes); {
		if err := w.cutAt(minutes[i]); err != nil {
			return err
		}
		// The rows from i that the block has room for, in its period.
		j := min(len(minutes), i+maxBlockRows-w.wb.blk.len())
		if w.period != 0 {
			for e := i + 1; e < j; e++ {
				if floorDiv(minutes[e], w.period) != w.blockPeriod {
					j = e
					break
				}
			}
		}
		w.wb.blk.appendRun(k, minutes[i:j], values[i:j])
		i = j
		if w.wb.blk.len() >= maxBlockRows {
			if err := w.flushBlock(); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutAt ends the current block before a row of minute when the row lies
// in another period than the row before it and the block holds at least
// minCutRows rows.
func (w *partWriter) cutAt(minute int64) error {
	if w.period == 0 {
		return nil
	}
	p := floorDiv(minute, w.period)
	if w.wb.blk.len() >= minCutRows && p != w.blockPeriod {
		if err := w.flushBlock(); err != nil {
			return err
		}
	}
	w.blockPeriod = p
	return nil
}

// addRows appends rows i to j-1 of src, in key order and after every row
// added before, column by column.
func (w *partWriter) addRows(src *block, i, j int) error {
	if first := src.key(i); w.hasLast && !w.last.Less(first) {
		panic(fmt.Sprintf("BUG: part rows out of order: %v after %v", first, w.last))
	}
	w.last, w.hasLast = src.key(j-1), true
	if w.period != 0 {
		// Runs of one period at a time.
		for i < j {
			if err := w.cutAt(src.minutes[i]); err != nil {
				return err
			}
			e := i + 1
			for e < j && floorDiv(src.minutes[e], w.period) == w.blockPeriod {
				e++
			}
			if err := w.copyRows(src, i, e); err != nil {
				return err
			}
			i = e
		}
		return nil
	}
	return w.copyRows(src, i, j)
}

// copyRows appends rows i to j-1 of src, cutting blocks at maxBlockRows.
func (w *partWriter) copyRows(src *block, i, j int) error {
	for i < j {
		n := min(j-i, maxBlockRows-w.wb.blk.len())
		w.wb.blk.metrics = append(w.wb.blk.metrics, src.metrics[i:i+n]...)
		w.wb.blk.cells = append(w.wb.blk.cells, src.cells[i:i+n]...)
		w.wb.blk.subs = append(w.wb.blk.subs, src.subs[i:i+n]...)
		w.wb.blk.minutes = append(w.wb.blk.minutes, src.minutes[i:i+n]...)
		w.wb.blk.values = append(w.wb.blk.values, src.values[i:i+n]...)
		i += n
		if w.wb.blk.len() >= maxBlockRows {
			if err := w.flushBlock(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *partWriter) flushBlock() error {
	n := w.wb.blk.len()
	if n == 0 {
		return nil
	}
	h := blockHeader{First: w.wb.blk.key(0), Last: w.wb.blk.key(n - 1), Rows: uint32(n)}
	h.MinMinute, h.MaxMinute = w.wb.blk.minutes[0], w.wb.blk.minutes[0]
	for _, m := range w.wb.blk.minutes {
		h.MinMinute = min(h.MinMinute, m)
		h.MaxMinute = max(h.MaxMinute, m)
	}
	cols := w.wb.blk.columns()
	for c := range numColumns {
		var ch columnHeader
		w.buf, ch = encodeColumn(w.buf[:0], w.enc, c, *cols[c])
		ch.Offset = w.offsets[c]
		ch.Checksum = crc32.Checksum(w.buf, castagnoli)
		if _, err := w.wb.bufs[c].Write(w.buf); err != nil {
			return err
		}
		w.offsets[c] += uint64(len(w.buf))
		h.Columns[c] = ch
	}
	if len(w.headers) == 0 {
		w.meta.MinMinute, w.meta.MaxMinute = h.MinMinute, h.MaxMinute
	}
	w.meta.MinMinute = min(w.meta.MinMinute, h.MinMinute)
	w.meta.MaxMinute = max(w.meta.MaxMinute, h.MaxMinute)
	w.meta.Rows += uint64(n)
	w.headers = append(w.headers, h)
	w.wb.blk.reset()
	return nil
}

// finish writes the index and metadata, makes everything durable and
// renames the part to finalDir. It returns the opened part.
func (w *partWriter) finish(finalDir string) (*part, error) {
	if err := w.flushBlock(); err != nil {
		w.abort()
		return nil, err
	}
	for i := range w.files {
		err := w.wb.bufs[i].Flush()
		if err == nil {
			err = w.files[i].Sync()
		}
		if cerr := w.files[i].Close(); err == nil {
			err = cerr
		}
		w.files[i] = nil
		if err != nil {
			w.abort()
			return nil, fmt.Errorf("cannot write %s: %w", filepath.Join(w.tmpDir, columnFiles[i]), err)
		}
	}
	w.release()
	hdrs := make([]byte, 0, len(w.headers)*blockHeaderSize)
	for i := range w.headers {
		hdrs = w.headers[i].marshal(hdrs)
	}
	enc := w.enc
	if enc == nil {
		enc = zstdFlush
	}
	idx := enc.EncodeAll(hdrs, nil)
	idx = binary.LittleEndian.AppendUint32(idx, crc32.Checksum(idx, castagnoli))
	w.meta.Blocks = len(w.headers)
	meta, err := json.MarshalIndent(w.meta, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal part metadata: %v", err))
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"index.bin", idx}, {"metadata.json", meta}} {
		if err := writeFileSync(filepath.Join(w.tmpDir, f.name), f.data); err != nil {
			w.abort()
			return nil, err
		}
	}
	if err := syncDir(w.tmpDir); err != nil {
		w.abort()
		return nil, err
	}
	if err := os.Rename(w.tmpDir, finalDir); err != nil {
		w.abort()
		return nil, err
	}
	if err := syncDir(filepath.Dir(finalDir)); err != nil {
		return nil, err
	}
	return openPart(finalDir, false)
}

func (w *partWriter) abort() {
	w.release()
	for _, f := range w.files {
		if f != nil {
			f.Close()
		}
	}
	os.RemoveAll(w.tmpDir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// floorDiv is a/b rounded toward minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
