package storage

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
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
	// Compacted is set on a part an idle compaction wrote, at zstd's
	// strongest level: it is not rewritten alone again.
	Compacted bool `json:"compacted,omitempty"`
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

// openPart opens a part and, when verify is set (at start), checks every
// checksum in it, so a damaged part is found when it is opened rather than
// half-read by a query. A part flowd has just written and synced is not
// read back: its bytes are the ones it wrote, and a query still checks
// each block it reads.
func openPart(dir string, verify bool) (*part, error) {
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
		if !verify {
			continue
		}
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
// column); the others are left empty. With a span (not nil), a column is
// read with the same column of the blocks after i up to block last.
func (br *blockReader) read(p *part, i int, cols uint8, sp *spanReader, last int) error {
	h := &p.headers[i]
	dsts := br.blk.columns()
	rows := int(h.Rows)
	short := 0 // columns to read without room for the block's rows
	for c := range numColumns {
		if cols&(1<<c) != 0 && cap(*dsts[c]) < rows {
			short++
		}
	}
	// A reader starting afresh (its columns went to the block cache) gets
	// room for them in one allocation, sized for the block: decoding
	// into empty slices grew each column by doubling, copying and
	// clearing it a dozen times — the most of a cached query's CPU.
	var room []int64
	if short > 0 {
		room = make([]int64, short*rows)
		// Fresh from the system when the block cache grows (a query's
		// second read keeps its blocks): mapped in one call, not a fault
		// a page while decoding (a 3-M-row query's second answer took
		// 200 ms of which 150 were faults, TestPrefaultMapsPages).
		prefault(room)
	}
	for c := range numColumns {
		*dsts[c] = (*dsts[c])[:0]
		if cols&(1<<c) == 0 {
			continue
		}
		if cap(*dsts[c]) < rows {
			*dsts[c], room = room[:0:rows], room[rows:]
		}
		ch := h.Columns[c]
		path := filepath.Join(p.dir, columnFiles[c])
		raw, err := sp.column(p, c, i, last)
		if raw == nil && err == nil {
			if cap(br.raw) < int(ch.Size) {
				br.raw = make([]byte, ch.Size)
			}
			raw = br.raw[:ch.Size]
			_, err = p.files[c].ReadAt(raw, int64(ch.Offset))
		}
		if err != nil {
			return &PartError{path, fmt.Errorf("block %d: %w", i, err)}
		}
		if crc32.Checksum(raw, castagnoli) != ch.Checksum {
			return &PartError{path, fmt.Errorf("block %d at offset %d: checksum mismatch", i, ch.Offset)}
		}
		*dsts[c], br.tmp, err = decodeColumn(*dsts[c], c, raw, ch, int(h.Rows), br.tmp)
		if err != nil {
			return &PartError{path, fmt.Errorf("block %d: %w", i, err)}
		}
	}
	return nil
}

// groupBlocks bounds the consecutive blocks a scan's decoder takes as one
// group (see spanReader): enough to read a column of several blocks at
// once, few enough that a scan of a few dozen blocks still keeps every
// decoder busy.
const groupBlocks = 8

// maxSpan bounds the bytes of a column a spanReader reads at once.
const maxSpan = 256 << 10

// A spanReader reads a column of consecutive blocks of a part in one
// system call and hands each block its bytes: a scan of a long range
// reads thousands of small blocks (a cell's two weeks of hours: 336 rows,
// a few hundred bytes a column), where a read a column a block was a
// sixth of a cold query's CPU. Consecutive blocks' columns lie side by
// side in their files, in block order.
type spanReader struct {
	p   *part // whose files the spans are of
	buf [numColumns][]byte
	off [numColumns]uint64 // the file offset of buf[c][0]
}

// forget drops the spans read, keeping their room: the reader may go on
// to another part's files.
func (sp *spanReader) forget() {
	sp.p = nil
	for c := range sp.buf {
		sp.buf[c] = sp.buf[c][:0]
	}
}

// column returns the bytes of column c of block i of p, from a span
// already read or from one read now that reaches on to block last (as far
// as maxSpan allows); nil (and no error) when sp is nil. A span that
// cannot be read (damage past block i) leaves block i to be read alone.
func (sp *spanReader) column(p *part, c, i, last int) ([]byte, error) {
	if sp == nil {
		return nil, nil
	}
	if sp.p != p {
		sp.forget()
		sp.p = p
	}
	ch := p.headers[i].Columns[c]
	if b := sp.buf[c]; ch.Offset >= sp.off[c] && ch.Offset+uint64(ch.Size) <= sp.off[c]+uint64(len(b)) {
		return b[ch.Offset-sp.off[c]:][:ch.Size], nil
	}
	end := ch.Offset + uint64(ch.Size)
	for j := last; j > i; j-- {
		e := &p.headers[j].Columns[c]
		if to := e.Offset + uint64(e.Size); to > end && to-ch.Offset <= maxSpan {
			end = to
			break
		}
	}
	n := int(end - ch.Offset)
	if cap(sp.buf[c]) < n {
		sp.buf[c] = make([]byte, n)
	}
	sp.off[c] = ch.Offset
	b := sp.buf[c][:n]
	if _, err := p.files[c].ReadAt(b, int64(ch.Offset)); err != nil {
		sp.buf[c] = sp.buf[c][:0] // nothing held
		if n == int(ch.Size) {
			return nil, err
		}
		return nil, nil // read alone
	}
	sp.buf[c] = b
	return b[:ch.Size], nil
}
