package storage

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// partWriter writes rows, given in key order, into a new part directory.
type partWriter struct {
	tmpDir  string
	final   string // where the store renames the part once written
	files   [numColumns]*os.File
	bufs    [numColumns]*bufio.Writer
	offsets [numColumns]uint64
	headers []blockHeader
	meta    partMeta
	blk     block
	last    Key
	hasLast bool
	buf     []byte
	enc     *zstd.Encoder
}

// newPartWriter starts a part in tmpDir whose blocks enc compresses.
func newPartWriter(tmpDir string, tier Tier, enc *zstd.Encoder) (*partWriter, error) {
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, err
	}
	w := &partWriter{tmpDir: tmpDir, enc: enc}
	w.meta = partMeta{Version: partFormatVersion, Tier: tier.String()}
	for i, name := range columnFiles {
		f, err := os.Create(filepath.Join(tmpDir, name))
		if err != nil {
			w.abort()
			return nil, err
		}
		w.files[i] = f
		w.bufs[i] = bufio.NewWriterSize(f, 64<<10)
	}
	return w, nil
}

// add appends a row; keys must be strictly increasing.
func (w *partWriter) add(k Key, v int64) error {
	if w.hasLast && !w.last.Less(k) {
		panic(fmt.Sprintf("BUG: part rows out of order: %v after %v", k, w.last))
	}
	w.last, w.hasLast = k, true
	w.blk.append(k, v)
	if w.blk.len() >= maxBlockRows {
		return w.flushBlock()
	}
	return nil
}

// addRows appends rows i to j-1 of src, in key order and after every row
// added before, column by column.
func (w *partWriter) addRows(src *block, i, j int) error {
	if first := src.key(i); w.hasLast && !w.last.Less(first) {
		panic(fmt.Sprintf("BUG: part rows out of order: %v after %v", first, w.last))
	}
	w.last, w.hasLast = src.key(j-1), true
	for i < j {
		n := min(j-i, maxBlockRows-w.blk.len())
		w.blk.metrics = append(w.blk.metrics, src.metrics[i:i+n]...)
		w.blk.cells = append(w.blk.cells, src.cells[i:i+n]...)
		w.blk.subs = append(w.blk.subs, src.subs[i:i+n]...)
		w.blk.minutes = append(w.blk.minutes, src.minutes[i:i+n]...)
		w.blk.values = append(w.blk.values, src.values[i:i+n]...)
		i += n
		if w.blk.len() >= maxBlockRows {
			if err := w.flushBlock(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *partWriter) flushBlock() error {
	n := w.blk.len()
	if n == 0 {
		return nil
	}
	h := blockHeader{First: w.blk.key(0), Last: w.blk.key(n - 1), Rows: uint32(n)}
	h.MinMinute, h.MaxMinute = w.blk.minutes[0], w.blk.minutes[0]
	for _, m := range w.blk.minutes {
		h.MinMinute = min(h.MinMinute, m)
		h.MaxMinute = max(h.MaxMinute, m)
	}
	cols := w.blk.columns()
	for c := range numColumns {
		var ch columnHeader
		w.buf, ch = encodeColumn(w.buf[:0], w.enc, c, *cols[c])
		ch.Offset = w.offsets[c]
		ch.Checksum = crc32.Checksum(w.buf, castagnoli)
		if _, err := w.bufs[c].Write(w.buf); err != nil {
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
	w.blk.reset()
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
		err := w.bufs[i].Flush()
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
	hdrs := make([]byte, 0, len(w.headers)*blockHeaderSize)
	for i := range w.headers {
		hdrs = w.headers[i].marshal(hdrs)
	}
	idx := w.enc.EncodeAll(hdrs, nil)
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
	return openPart(finalDir)
}

func (w *partWriter) abort() {
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
