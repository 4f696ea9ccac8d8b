package dashboard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// PMTiles is a PMTiles v3 archive (github.com/protomaps/PMTiles, spec v3)
// read in place: a header, a root directory, optional leaf directories and
// the tiles, each found by its Hilbert tile id. flowd serves a local one as
// plain {z}/{x}/{y} tiles for the dashboard's base map, so the page needs
// no PMTiles code and the file never leaves the server.
type PMTiles struct {
	f    *os.File
	path string
	hdr  pmHeader
	root []pmEntry
	// Metadata is the archive's JSON metadata (vector_layers, attribution…).
	Metadata json.RawMessage

	mu     sync.Mutex
	leaves map[uint64][]pmEntry // by offset, the leaf directories read so far
}

// pmHeader is the fixed 127-byte header.
type pmHeader struct {
	rootOff, rootLen, metaOff, metaLen, leafOff, leafLen, dataOff, dataLen uint64
	internalComp, tileComp, tileType                                       byte
	minZoom, maxZoom                                                       byte
	bounds                                                                 [4]float64 // west, south, east, north
}

// pmEntry is a directory entry: run tiles from tileID at offset, or a leaf
// directory when run is 0.
type pmEntry struct {
	tileID, offset uint64
	length, run    uint32
}

// PMTiles' compression and tile type codes.
const (
	pmCompNone = 1
	pmCompGzip = 2
	pmCompZstd = 4
)

var pmTileTypes = map[byte]string{1: "mvt", 2: "png", 3: "jpg", 4: "webp", 5: "avif"}

// maxLeafCache bounds the leaf directories kept in memory.
const maxLeafCache = 64

// OpenPMTiles opens the archive at path and reads its header, root
// directory and metadata; an archive flowd cannot serve is an error that
// says why.
func OpenPMTiles(path string) (*PMTiles, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p := &PMTiles{f: f, path: path, leaves: map[uint64][]pmEntry{}}
	if err := p.readHead(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func (p *PMTiles) readHead() error {
	var b [127]byte
	if _, err := p.f.ReadAt(b[:], 0); err != nil {
		return fmt.Errorf("reading the header: %w", err)
	}
	if string(b[:7]) != "PMTiles" || b[7] != 3 {
		return errors.New("not a PMTiles v3 archive")
	}
	u := func(at int) uint64 { return binary.LittleEndian.Uint64(b[at:]) }
	deg := func(at int) float64 { return float64(int32(binary.LittleEndian.Uint32(b[at:]))) / 1e7 }
	h := &p.hdr
	h.rootOff, h.rootLen, h.metaOff, h.metaLen = u(8), u(16), u(24), u(32)
	h.leafOff, h.leafLen, h.dataOff, h.dataLen = u(40), u(48), u(56), u(64)
	h.internalComp, h.tileComp, h.tileType, h.minZoom, h.maxZoom = b[97], b[98], b[99], b[100], b[101]
	h.bounds = [4]float64{deg(102), deg(106), deg(110), deg(114)}
	if pmTileTypes[h.tileType] == "" {
		return fmt.Errorf("tile type %d: flowd serves mvt, png, jpg, webp and avif tiles", h.tileType)
	}
	if h.tileComp != pmCompNone && h.tileComp != pmCompGzip && h.tileComp != pmCompZstd {
		return fmt.Errorf("tile compression %d: flowd serves uncompressed, gzip and zstd tiles", h.tileComp)
	}
	var err error
	if p.root, err = p.readDir(h.rootOff, h.rootLen); err != nil {
		return fmt.Errorf("root directory: %w", err)
	}
	meta, err := p.readSection(h.metaOff, h.metaLen)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if len(meta) > 0 && !json.Valid(meta) {
		return errors.New("metadata is not JSON")
	}
	p.Metadata = meta
	return nil
}

// readSection reads and decompresses a directory or the metadata.
func (p *PMTiles) readSection(off, n uint64) ([]byte, error) {
	if n > 64<<20 {
		return nil, fmt.Errorf("a section of %d bytes", n)
	}
	raw := make([]byte, n)
	if _, err := p.f.ReadAt(raw, int64(off)); err != nil {
		return nil, err
	}
	return decompress(p.hdr.internalComp, raw)
}

func decompress(comp byte, raw []byte) ([]byte, error) {
	switch comp {
	case pmCompNone, 0:
		return raw, nil
	case pmCompGzip:
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(zr, 256<<20))
	case pmCompZstd:
		zr, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return zr.DecodeAll(raw, nil)
	}
	return nil, fmt.Errorf("compression %d: flowd reads none, gzip and zstd", comp)
}

// readDir reads a directory: its entry count, then their tile ids (as
// deltas), run lengths, lengths and offsets (0: right after the entry
// before; else offset+1), each a varint column.
func (p *PMTiles) readDir(off, n uint64) ([]pmEntry, error) {
	data, err := p.readSection(off, n)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(bytes.NewReader(data))
	count, err := binary.ReadUvarint(r)
	if err != nil || count > uint64(len(data)) {
		return nil, fmt.Errorf("a directory of %d entries in %d bytes", count, len(data))
	}
	es := make([]pmEntry, count)
	var id uint64
	for col := 0; col < 4; col++ {
		for i := range es {
			v, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, fmt.Errorf("directory entry %d: %w", i, err)
			}
			switch col {
			case 0:
				id += v
				es[i].tileID = id
			case 1:
				es[i].run = uint32(v)
			case 2:
				es[i].length = uint32(v)
			case 3:
				if i > 0 && v == 0 {
					es[i].offset = es[i-1].offset + uint64(es[i-1].length)
				} else {
					es[i].offset = v - 1
				}
			}
		}
	}
	return es, nil
}

// Tile returns the tile z/x/y, nil when the archive has none there.
func (p *PMTiles) Tile(z uint8, x, y uint32) ([]byte, error) {
	if z > 26 || x >= 1<<z || y >= 1<<z {
		return nil, nil
	}
	id := tileID(z, x, y)
	dir := p.root
	for depth := 0; depth < 4; depth++ {
		i := sort.Search(len(dir), func(i int) bool { return dir[i].tileID > id }) - 1
		if i < 0 {
			return nil, nil
		}
		e := dir[i]
		if e.run > 0 {
			if id >= e.tileID+uint64(e.run) {
				return nil, nil
			}
			data := make([]byte, e.length)
			if _, err := p.f.ReadAt(data, int64(p.hdr.dataOff+e.offset)); err != nil {
				return nil, fmt.Errorf("%s: tile %d/%d/%d: %w", p.path, z, x, y, err)
			}
			return data, nil
		}
		var err error
		if dir, err = p.leaf(e); err != nil {
			return nil, fmt.Errorf("%s: leaf directory at %d: %w", p.path, e.offset, err)
		}
	}
	return nil, fmt.Errorf("%s: directories nested past 4 levels", p.path)
}

func (p *PMTiles) leaf(e pmEntry) ([]pmEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.leaves[e.offset]; ok {
		return d, nil
	}
	d, err := p.readDir(p.hdr.leafOff+e.offset, uint64(e.length))
	if err != nil {
		return nil, err
	}
	if len(p.leaves) >= maxLeafCache {
		clear(p.leaves)
	}
	p.leaves[e.offset] = d
	return d, nil
}

// TileType is "mvt", "png", "jpg", "webp" or "avif".
func (p *PMTiles) TileType() string { return pmTileTypes[p.hdr.tileType] }

// Close closes the file.
func (p *PMTiles) Close() error { return p.f.Close() }

// tileID is the Hilbert id of tile z/x/y: the tiles of the zoom levels
// below z, then the tile's place along the Hilbert curve of level z.
func tileID(z uint8, x, y uint32) uint64 {
	acc := (uint64(1)<<(2*z) - 1) / 3
	for s := uint32(1) << z >> 1; s > 0; s >>= 1 {
		rx, ry := s&x, s&y
		d := uint64(s) * uint64(s)
		var q uint64
		switch {
		case rx == 0 && ry == 0:
			q = 0
		case rx == 0:
			q = 1
		case ry != 0:
			q = 2
		default:
			q = 3
		}
		acc += q * d
		if ry == 0 {
			if rx != 0 {
				x, y = s-1-x, s-1-y
			}
			x, y = y, x
		}
		x, y = x&(s-1), y&(s-1)
	}
	return acc
}
