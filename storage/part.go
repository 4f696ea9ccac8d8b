package storage

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/zstd"
)

// partFormatVersion is written to every part's metadata.json.
const partFormatVersion = 1

// partMeta is a part's metadata.json.
type partMeta struct {
	Version   int    `json:"version"`
	Tier      string `json:"tier"`
	Rows      uint64 `json:"rows"`
	Blocks    int    `json:"blocks"`
	MinMinute int64  `json:"min_minute"`
	MaxMinute int64  `json:"max_minute"`
	// WALSeq is the last WAL segment whose deltas this part holds (for this
	// tier): replay of this tier skips segments up to it.
	WALSeq uint64 `json:"wal_seq"`
	// Replaces names the parts a merge summed into this one. If they are
	// still present on start, a crash came between the rename of this part
	// and their removal: they are removed then.
	Replaces []string `json:"replaces,omitempty"`
}

// partWriter writes rows, given in key order, into a new part directory.
type partWriter struct {
	tmpDir  string
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

// part is an immutable, opened part. Its files stay open while any query
// holds a reference, even after a merge has removed its directory.
type part struct {
	name    string
	dir     string
	meta    partMeta
	headers []blockHeader
	files   [numColumns]*os.File
	size    int64
	refs    atomic.Int32
}

// PartError reports a damaged part by the file at fault.
type PartError struct {
	Path string
	Err  error
}

func (e *PartError) Error() string { return fmt.Sprintf("damaged part file %s: %v", e.Path, e.Err) }
func (e *PartError) Unwrap() error { return e.Err }

// openPart opens a part and checks every checksum in it, so a damaged part
// is found when it is opened rather than half-read by a query.
func openPart(dir string) (*part, error) {
	p := &part{name: filepath.Base(dir), dir: dir}
	metaPath := filepath.Join(dir, "metadata.json")
	data, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, &PartError{metaPath, err}
	}
	if err := json.Unmarshal(data, &p.meta); err != nil {
		return nil, &PartError{metaPath, err}
	}
	if p.meta.Version != partFormatVersion {
		return nil, &PartError{metaPath, fmt.Errorf("format version %d; this flowd reads %d", p.meta.Version, partFormatVersion)}
	}
	idxPath := filepath.Join(dir, "index.bin")
	idx, err := os.ReadFile(idxPath)
	if err != nil {
		return nil, &PartError{idxPath, err}
	}
	if len(idx) < 4 {
		return nil, &PartError{idxPath, fmt.Errorf("%d bytes: too short", len(idx))}
	}
	if crc32.Checksum(idx[:len(idx)-4], castagnoli) != binary.LittleEndian.Uint32(idx[len(idx)-4:]) {
		return nil, &PartError{idxPath, fmt.Errorf("checksum mismatch")}
	}
	body, err := zstdDecoder.DecodeAll(idx[:len(idx)-4], nil)
	if err != nil {
		return nil, &PartError{idxPath, err}
	}
	if len(body) != p.meta.Blocks*blockHeaderSize {
		return nil, &PartError{idxPath, fmt.Errorf("%d bytes of block headers; %d blocks need %d", len(body), p.meta.Blocks, p.meta.Blocks*blockHeaderSize)}
	}
	p.headers = make([]blockHeader, p.meta.Blocks)
	var rows uint64
	for i := range p.headers {
		if err := p.headers[i].unmarshal(body[i*blockHeaderSize:]); err != nil {
			return nil, &PartError{idxPath, fmt.Errorf("block %d: %w", i, err)}
		}
		rows += uint64(p.headers[i].Rows)
	}
	if rows != p.meta.Rows {
		return nil, &PartError{idxPath, fmt.Errorf("blocks hold %d rows; metadata says %d", rows, p.meta.Rows)}
	}
	for c, name := range columnFiles {
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			p.closeFiles()
			return nil, &PartError{path, err}
		}
		p.files[c] = f
		if err := p.verifyColumn(c); err != nil {
			p.closeFiles()
			return nil, &PartError{path, err}
		}
	}
	p.size = int64(len(idx) + len(data))
	for c := range p.files {
		for _, h := range p.headers {
			p.size += int64(h.Columns[c].Size)
		}
	}
	p.refs.Store(1)
	return p, nil
}

func (p *part) verifyColumn(c int) error {
	r := bufio.NewReaderSize(io.NewSectionReader(p.files[c], 0, 1<<62), 256<<10)
	var off uint64
	var buf []byte
	for i := range p.headers {
		ch := p.headers[i].Columns[c]
		if ch.Offset != off {
			return fmt.Errorf("block %d starts at %d, want %d", i, ch.Offset, off)
		}
		if cap(buf) < int(ch.Size) {
			buf = make([]byte, ch.Size)
		}
		buf = buf[:ch.Size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		if crc32.Checksum(buf, castagnoli) != ch.Checksum {
			return fmt.Errorf("block %d at offset %d: checksum mismatch", i, ch.Offset)
		}
		off += uint64(ch.Size)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return fmt.Errorf("trailing bytes after %d blocks", len(p.headers))
	}
	return nil
}

func (p *part) closeFiles() {
	for i, f := range p.files {
		if f != nil {
			f.Close()
			p.files[i] = nil
		}
	}
}

func (p *part) incRef() { p.refs.Add(1) }

func (p *part) decRef() {
	if n := p.refs.Add(-1); n == 0 {
		p.closeFiles()
	} else if n < 0 {
		panic("BUG: part reference count below zero")
	}
}

// blockReader decodes blocks of parts, reusing its buffers.
type blockReader struct {
	blk block
	raw []byte
	tmp []byte
}

// read decodes the columns of block i of p that cols selects (a bit per
// column); the others are left empty.
func (br *blockReader) read(p *part, i int, cols uint8) error {
	h := &p.headers[i]
	dsts := br.blk.columns()
	for c := range numColumns {
		*dsts[c] = (*dsts[c])[:0]
		if cols&(1<<c) == 0 {
			continue
		}
		ch := h.Columns[c]
		if cap(br.raw) < int(ch.Size) {
			br.raw = make([]byte, ch.Size)
		}
		br.raw = br.raw[:ch.Size]
		path := filepath.Join(p.dir, columnFiles[c])
		if _, err := p.files[c].ReadAt(br.raw, int64(ch.Offset)); err != nil {
			return &PartError{path, fmt.Errorf("block %d: %w", i, err)}
		}
		if crc32.Checksum(br.raw, castagnoli) != ch.Checksum {
			return &PartError{path, fmt.Errorf("block %d at offset %d: checksum mismatch", i, ch.Offset)}
		}
		var err error
		*dsts[c], br.tmp, err = decodeColumn(*dsts[c], c, br.raw, ch, int(h.Rows), br.tmp)
		if err != nil {
			return &PartError{path, fmt.Errorf("block %d: %w", i, err)}
		}
	}
	return nil
}

const allColumns = 1<<numColumns - 1

// rowSink receives the rows of a scan: each row through fn, or, when sums
// is set, only each row's value added into sums[(minute-from)/step].
type rowSink struct {
	fn   func(cell, sub uint64, minute, value int64)
	sums []int64
	step int64
}

// sumRows adds each value whose minute is in [from, to) into
// sums[(minute-from)/step], dividing only when a row leaves the step of the
// one before: rows of a series come in time order.
func sumRows(sums []int64, step, from, to int64, minutes, values []int64) {
	if step == 1 {
		for k, m := range minutes {
			if m >= from && m < to {
				sums[m-from] += values[k]
			}
		}
		return
	}
	lo, hi, idx := int64(1), int64(0), int64(0) // the current step is [lo, hi)
	for k, m := range minutes {
		if m < from || m >= to {
			continue
		}
		if m < lo || m >= hi {
			idx = (m - from) / step
			lo = from + idx*step
			hi = lo + step
		}
		sums[idx] += values[k]
	}
}

// scanStep is one block of a part to read for one cell range.
type scanStep struct {
	block int
	r     vocab.CellRange
}

// plan lists the blocks of p that may hold rows of metric in ranges and
// [from, to), in order; a block serving several ranges comes once per range,
// consecutively.
func (p *part) plan(metric uint32, ranges []vocab.CellRange, from, to int64) []scanStep {
	if p.meta.MaxMinute < from || p.meta.MinMinute >= to {
		return nil
	}
	var steps []scanStep
	for _, r := range ranges {
		lo := Key{Metric: metric, Cell: r.Lo, Minute: -1 << 63}
		// The first block whose last key is not below lo.
		i := sort.Search(len(p.headers), func(i int) bool { return !p.headers[i].Last.Less(lo) })
		for ; i < len(p.headers); i++ {
			h := &p.headers[i]
			if h.First.Metric > metric || (h.First.Metric == metric && h.First.Cell > r.Hi) {
				break
			}
			if h.MaxMinute < from || h.MinMinute >= to {
				continue
			}
			steps = append(steps, scanStep{i, r})
		}
	}
	return steps
}

// columnsFor are the columns a scan needs of block i: the metric column
// only when the block holds more than one metric.
func (p *part) columnsFor(i int) uint8 {
	cols := uint8(1<<colCell | 1<<colSub | 1<<colMinute | 1<<colValue)
	if h := &p.headers[i]; h.First.Metric != h.Last.Metric {
		cols |= 1 << colMetric
	}
	return cols
}

var blockReaderPool = sync.Pool{New: func() any { return new(blockReader) }}

// scanDecoders is how many goroutines decode the blocks of one part scan.
var scanDecoders = max(1, min(runtime.GOMAXPROCS(0), 4))

// decodedBlock is a block ready to walk: read into br (handed back after
// the walk), or found in the cache (br nil).
type decodedBlock struct {
	blk *block
	br  *blockReader
	err error
}

// decode returns block i of p for a scan, from the cache or read with a
// reader from take (whose decoded columns then go to the cache).
func (p *part) decode(cache *blockCache, i int, take func() *blockReader) decodedBlock {
	k := blockKey{p, i}
	blk, keep := cache.get(k)
	if blk != nil {
		return decodedBlock{blk: blk}
	}
	br := take()
	if br == nil {
		return decodedBlock{err: errScanStopped}
	}
	if err := br.read(p, i, p.columnsFor(i)); err != nil {
		return decodedBlock{br: br, err: err}
	}
	if !keep {
		return decodedBlock{blk: &br.blk, br: br}
	}
	// The cache keeps the decoded columns; the reader starts afresh.
	kept := br.blk
	br.blk = block{}
	cache.put(k, &kept)
	return decodedBlock{blk: &kept, br: br}
}

var errScanStopped = errors.New("scan stopped")

// scan calls fn for each row of p whose metric is metric, whose cell lies in
// one of ranges (sorted, disjoint) and whose minute is in [from, to). When
// it reads more than one block, other goroutines decode the next blocks
// while this one walks the rows of the current one.
func (p *part) scan(cache *blockCache, metric uint32, ranges []vocab.CellRange, from, to int64, out rowSink) error {
	steps := p.plan(metric, ranges, from, to)
	if len(steps) == 0 {
		return nil
	}
	var blocks []int
	for i, st := range steps {
		if i == 0 || st.block != steps[i-1].block {
			blocks = append(blocks, st.block)
		}
	}
	next := func() decodedBlock {
		return p.decode(cache, blocks[0], func() *blockReader { return blockReaderPool.Get().(*blockReader) })
	}
	if len(blocks) > 1 {
		// Decoders take blocks in turn (decoder w the blocks w, w+n, …);
		// the walk takes them back in the same turn, so in order.
		const depth = 2
		n := min(scanDecoders, len(blocks))
		stop := make(chan struct{})
		defer close(stop)
		free := make(chan *blockReader, n*depth+1)
		for range cap(free) {
			free <- blockReaderPool.Get().(*blockReader)
		}
		decoded := make([]chan decodedBlock, n)
		for w := range n {
			decoded[w] = make(chan decodedBlock, depth)
			go func(out chan<- decodedBlock) {
				take := func() *blockReader {
					select {
					case br := <-free:
						return br
					case <-stop:
						return nil
					}
				}
				for k := w; k < len(blocks); k += n {
					d := p.decode(cache, blocks[k], take)
					select {
					case out <- d:
					case <-stop:
						return
					}
					if d.err != nil {
						return
					}
				}
			}(decoded[w])
		}
		k := 0
		next = func() decodedBlock {
			d := <-decoded[k%n]
			k++
			return d
		}
		defer func() {
			// Every reader is back in free once all blocks were consumed.
			for len(free) > 0 {
				blockReaderPool.Put(<-free)
			}
		}()
		release := func(br *blockReader) { free <- br }
		return p.walk(steps, next, release, metric, from, to, out)
	}
	return p.walk(steps, next, func(br *blockReader) { blockReaderPool.Put(br) }, metric, from, to, out)
}

// walk calls fn for the matching rows of each step, taking decoded blocks
// from next in order and handing each back to release when done with it.
func (p *part) walk(steps []scanStep, next func() decodedBlock, release func(*blockReader), metric uint32, from, to int64, out rowSink) error {
	var br *blockReader
	var b *block
	cur := -1
	for _, st := range steps {
		if st.block != cur {
			if br != nil {
				release(br)
			}
			d := next()
			if d.err != nil {
				return d.err
			}
			br, b, cur = d.br, d.blk, st.block
		}
		h := &p.headers[st.block]
		r := st.r
		multi := len(b.metrics) > 0
		metricAt := func(j int) uint32 {
			if multi {
				return uint32(b.metrics[j])
			}
			return h.First.Metric
		}
		j := sort.Search(len(b.cells), func(j int) bool {
			if m := metricAt(j); m != metric {
				return m > metric
			}
			return uint64(b.cells[j]) >= r.Lo
		})
		cells, subs, minutes, values := b.cells, b.subs, b.minutes, b.values
		// The end of the rows of this metric and range.
		end := j
		for end < len(cells) && uint64(cells[end]) <= r.Hi && (!multi || uint32(b.metrics[end]) == metric) {
			end++
		}
		if out.sums != nil {
			sumRows(out.sums, out.step, from, to, minutes[j:end], values[j:end])
			continue
		}
		for k := j; k < end; k++ {
			if m := minutes[k]; m >= from && m < to {
				out.fn(uint64(cells[k]), uint64(subs[k]), m, values[k])
			}
		}
	}
	if br != nil {
		release(br)
	}
	return nil
}
