package dashboard

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTileIDs checks the Hilbert tile ids against the values of the
// PMTiles reference implementation, and that each zoom's ids are distinct
// and follow the zoom before.
func TestTileIDs(t *testing.T) {
	for _, tc := range []struct {
		z    uint8
		x, y uint32
		id   uint64
	}{{0, 0, 0, 0}, {1, 0, 0, 1}, {1, 0, 1, 2}, {1, 1, 1, 3}, {1, 1, 0, 4}, {2, 0, 0, 5}, {12, 3423, 1763, 19078479}} {
		if got := tileID(tc.z, tc.x, tc.y); got != tc.id {
			t.Errorf("tileID(%d, %d, %d) = %d, want %d", tc.z, tc.x, tc.y, got, tc.id)
		}
	}
	for z := uint8(0); z <= 6; z++ {
		base, n := (uint64(1)<<(2*z)-1)/3, uint64(1)<<(2*z)
		seen := map[uint64]bool{}
		for x := uint32(0); x < 1<<z; x++ {
			for y := uint32(0); y < 1<<z; y++ {
				id := tileID(z, x, y)
				if id < base || id >= base+n || seen[id] {
					t.Fatalf("zoom %d: tile %d/%d has id %d, repeated or outside [%d, %d)", z, x, y, id, base, base+n)
				}
				seen[id] = true
			}
		}
	}
}

// pmArchive is a PMTiles v3 archive for tests: entries over one blob of
// tile data, in a root directory or, with leaves, in leaf directories of
// two entries each that the root points to.
type pmArchive struct {
	tileType byte
	entries  []pmEntry
	data     []byte
	metadata string
	leaves   bool
}

func appendDir(dst []byte, es []pmEntry) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(es)))
	var last uint64
	for _, e := range es {
		dst = binary.AppendUvarint(dst, e.tileID-last)
		last = e.tileID
	}
	for _, e := range es {
		dst = binary.AppendUvarint(dst, uint64(e.run))
	}
	for _, e := range es {
		dst = binary.AppendUvarint(dst, uint64(e.length))
	}
	for _, e := range es {
		dst = binary.AppendUvarint(dst, e.offset+1)
	}
	return dst
}

func (a *pmArchive) write(t *testing.T, path string) {
	t.Helper()
	root, leaves := a.entries, []byte(nil)
	if a.leaves {
		root = nil
		for i := 0; i < len(a.entries); i += 2 {
			part := a.entries[i:min(i+2, len(a.entries))]
			dir := appendDir(nil, part)
			root = append(root, pmEntry{tileID: part[0].tileID, offset: uint64(len(leaves)), length: uint32(len(dir))})
			leaves = append(leaves, dir...)
		}
	}
	rootDir := appendDir(nil, root)
	h := make([]byte, 127)
	copy(h, "PMTiles")
	h[7] = 3
	off := uint64(127)
	put := func(at int, v uint64) { binary.LittleEndian.PutUint64(h[at:], v) }
	for _, sec := range []struct {
		at int
		n  int
	}{{8, len(rootDir)}, {24, len(a.metadata)}, {40, len(leaves)}, {56, len(a.data)}} {
		put(sec.at, off)
		put(sec.at+8, uint64(sec.n))
		off += uint64(sec.n)
	}
	h[97], h[98], h[99], h[100], h[101] = pmCompNone, pmCompNone, a.tileType, 0, 16
	out := append(append(append(append(h, rootDir...), a.metadata...), leaves...), a.data...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// solidPNG is a 256-pixel square tile of one colour.
func solidPNG(t testing.TB, c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// everyTile is an archive of one tile repeated over every tile of zooms
// 0 to 16, one run per zoom.
func everyTile(tileType byte, tile []byte, leaves bool) *pmArchive {
	a := &pmArchive{tileType: tileType, data: tile, leaves: leaves, metadata: `{"attribution":"test"}`}
	for z := uint8(0); z <= 16; z++ {
		a.entries = append(a.entries, pmEntry{tileID: tileID(z, 0, 0), run: uint32(1) << (2 * z), length: uint32(len(tile))})
	}
	return a
}

// TestPMTilesReadsRunsAndLeaves reads an archive from its root directory
// and one from leaf directories: every tile of a run comes back, tiles
// beyond the runs are absent, and files that are no archive are refused
// naming why.
func TestPMTilesReadsRunsAndLeaves(t *testing.T) {
	dir := t.TempDir()
	a := everyTile(2, []byte("tile-bytes"), false)
	// A second blob: tile 3/5/2 alone, after a gap.
	a.entries = a.entries[:3]
	a.entries = append(a.entries, pmEntry{tileID: tileID(3, 5, 2), run: 1, offset: uint64(len(a.data)), length: 5})
	a.data = append(a.data, "other"...)
	for _, leaves := range []bool{false, true} {
		a.leaves = leaves
		path := filepath.Join(dir, "a.pmtiles")
		a.write(t, path)
		p, err := OpenPMTiles(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			z    uint8
			x, y uint32
			want string
		}{{0, 0, 0, "tile-bytes"}, {2, 3, 1, "tile-bytes"}, {3, 5, 2, "other"}, {3, 5, 3, ""}, {4, 0, 0, ""}, {1, 2, 0, ""}} {
			got, err := p.Tile(tc.z, tc.x, tc.y)
			if err != nil || string(got) != tc.want {
				t.Errorf("leaves %v: tile %d/%d/%d = %q, %v; want %q", leaves, tc.z, tc.x, tc.y, got, err, tc.want)
			}
		}
		if p.TileType() != "png" || string(p.Metadata) != `{"attribution":"test"}` {
			t.Errorf("type %q, metadata %s", p.TileType(), p.Metadata)
		}
		p.Close()
	}
	bad := filepath.Join(dir, "bad.pmtiles")
	os.WriteFile(bad, []byte(strings.Repeat("not an archive ", 20)), 0o644)
	if _, err := OpenPMTiles(bad); err == nil || !strings.Contains(err.Error(), "not a PMTiles v3 archive") || !strings.Contains(err.Error(), bad) {
		t.Errorf("a file that is no archive: %v", err)
	}
	for spec, want := range map[string]string{
		filepath.Join(dir, "missing.pmtiles"): "want a .pmtiles file",
		bad:                                   "not a PMTiles v3 archive",
		"https://tiles.example/{z}/{x}.png":   "needs {z}, {x} and {y}",
	} {
		if _, err := ParseBasemap(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-basemap %s: %v; want an error saying %q", spec, err, want)
		}
	}
	for spec, kind := range map[string]string{"": "offline", "https://t.example/{z}/{x}/{y}.png": "tiles", "https://t.example/style.json": "style"} {
		if b, err := ParseBasemap(spec); err != nil || b.Kind != kind {
			t.Errorf("-basemap %q: %+v, %v; want kind %s", spec, b, err, kind)
		}
	}
}
