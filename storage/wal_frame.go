package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// WAL format 2: a segment opens with walSegmentHeader, then holds frames of
// a marker, the payload's length and checksum and a checksum of those
// three, then the payload. The marker and the header's own checksum let
// replay find the next intact frame after a damaged one, so one damaged
// byte costs one record, not the rest of its segment.
// docs/storage-format.md describes the bytes.

// walSegmentHeader is the first 8 bytes of every segment of format 2.
var walSegmentHeader = [8]byte{'f', 'l', 'o', 'w', 'd', 'W', 'L', 2}

// walFrameMagic opens every frame (bytes a9 f1 0d 5e).
const walFrameMagic uint32 = 0x5e0df1a9

// walFrameHeaderSize is the marker, length, payload checksum and header
// checksum in front of each payload.
const walFrameHeaderSize = 16

// walOldHeaderSize is the length and checksum in front of each record of
// format 1, before markers.
const walOldHeaderSize = 8

// maxWALRecord bounds one record so a damaged length cannot make replay
// allocate or checksum without limit.
const maxWALRecord = 256 << 20

// appendFrame appends payload p as one frame.
func appendFrame(dst, p []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, walFrameMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(p, castagnoli))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:start+12], castagnoli))
	return append(dst, p...)
}

// frameHeaderAt checks the frame header at off and returns its payload
// length; ok is false when there is no intact header there.
func frameHeaderAt(data []byte, off int) (n int, ok bool) {
	if len(data)-off < walFrameHeaderSize {
		return 0, false
	}
	h := data[off : off+walFrameHeaderSize]
	if binary.LittleEndian.Uint32(h) != walFrameMagic ||
		crc32.Checksum(h[:12], castagnoli) != binary.LittleEndian.Uint32(h[12:]) {
		return 0, false
	}
	n = int(binary.LittleEndian.Uint32(h[4:]))
	return n, n <= maxWALRecord
}

// frameAt returns the payload of the intact frame at off.
func frameAt(data []byte, off int) ([]byte, bool) {
	n, ok := frameHeaderAt(data, off)
	if !ok || n > len(data)-off-walFrameHeaderSize {
		return nil, false
	}
	p := data[off+walFrameHeaderSize : off+walFrameHeaderSize+n]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(data[off+8:]) {
		return nil, false
	}
	return p, true
}

var walFrameMagicBytes = binary.LittleEndian.AppendUint32(nil, walFrameMagic)

// nextFrame returns the offset of the first intact frame at or after off,
// or -1.
func nextFrame(data []byte, off int) int { return nextIntact(data, off, frameAt) }

// nextIntact returns the first offset at or after off where a frame
// marker begins and intact says a frame is, or -1.
func nextIntact(data []byte, off int, intact func([]byte, int) ([]byte, bool)) int {
	for off < len(data) {
		i := bytes.Index(data[off:], walFrameMagicBytes)
		if i < 0 {
			return -1
		}
		off += i
		if _, ok := intact(data, off); ok {
			return off
		}
		off++
	}
	return -1
}

// walDamage is a range of a segment that held no intact frame: at least
// one record was lost there.
type walDamage struct {
	offset, length int
}

// segmentScan is what reading a segment found besides its intact records.
type segmentScan struct {
	version int
	records int
	damaged []walDamage
	// torn is the length of an unfinished last write, from tornAt: a
	// crash cut it short, so nothing in it was acknowledged.
	torn, tornAt int
	// room is the length of the zeros at the end that no record reached:
	// the segment's room (see wal), or what a crash left of it.
	room int
}

// readSegment calls fn with the payload of every intact record of segment
// seq, in order. It resynchronises after damage: the range up to the
// next intact frame is reported in the scan and reading goes on there. An
// error is fn's, with the offset of its record.
func readSegment(data []byte, seq uint64, fn func([]byte) error) (segmentScan, error) {
	if isSegment3(data, seq) {
		return readSegment3(data, seq, fn)
	}
	if isOldSegment(data) {
		return readOldSegment(data, fn)
	}
	sc := segmentScan{version: 2}
	off := 0
	switch {
	case len(data) >= len(walSegmentHeader) && bytes.Equal(data[:len(walSegmentHeader)], walSegmentHeader[:]):
		off = len(walSegmentHeader)
	case len(data) < len(walSegmentHeader) && bytes.HasPrefix(walSegmentHeader[:], data):
		sc.torn, sc.tornAt = len(data), 0
		return sc, nil
	}
	// A damaged segment header is found as damage at offset 0: the first
	// intact frame is searched from there.
	for off < len(data) {
		if p, ok := frameAt(data, off); ok {
			if err := fn(p); err != nil {
				return sc, fmt.Errorf("record at offset %d: %w", off, err)
			}
			sc.records++
			off += walFrameHeaderSize + len(p)
			continue
		}
		next := nextFrame(data, off+1)
		if next < 0 {
			z := zerosFrom(data, off)
			switch {
			case z == off:
				sc.room = len(data) - off
			case tornTail(data, off, z):
				sc.torn, sc.tornAt, sc.room = z-off, off, len(data)-z
			default:
				sc.damaged = append(sc.damaged, walDamage{off, len(data) - off})
			}
			break
		}
		sc.damaged = append(sc.damaged, walDamage{off, next - off})
		off = next
	}
	return sc, nil
}

// zerosFrom returns where the zeros that end data begin, at off or later.
func zerosFrom(data []byte, off int) int {
	z := len(data)
	for z > off && data[z-1] == 0 {
		z--
	}
	return z
}

// walTearAlign is the granularity at which a crash can cut a write short:
// the disk's sector (the page cache writes back and copies whole pages,
// which are multiples of it).
const walTearAlign = 512

// tornTail reports whether the bytes from off to the end of a segment, with
// no intact frame in them and zeros from z on, look like a write a crash
// cut short rather than damage to written records: fewer bytes than a
// frame header, an intact header whose payload runs past the end, or, in
// a segment's room, the start of a frame followed by zeros from a sector
// boundary before the frame's end (where the write did not reach).
// Anything else is damage.
func tornTail(data []byte, off, z int) bool {
	if len(data)-off < walFrameHeaderSize {
		return true
	}
	end := off + walFrameHeaderSize
	if n, ok := frameHeaderAt(data, off); ok {
		if n > len(data)-end {
			return true
		}
		end += n
	}
	cut := (z + walTearAlign - 1) / walTearAlign * walTearAlign
	return cut < end
}

// isOldSegment reports whether data is a segment of format 1: no segment
// header, and its first record checks as format 1 — or no frame marker of
// format 2 anywhere in it (a format 1 segment whose first write was torn).
func isOldSegment(data []byte) bool {
	if len(data) == 0 || bytes.HasPrefix(data, walSegmentHeader[:min(len(data), len(walSegmentHeader))]) {
		return false
	}
	if len(data) >= 4 && binary.LittleEndian.Uint32(data) == 0 {
		return false // no record is empty: zeros are a new segment's room
	}
	if len(data) >= walOldHeaderSize {
		n := int(binary.LittleEndian.Uint32(data))
		if n <= maxWALRecord && n <= len(data)-walOldHeaderSize &&
			crc32.Checksum(data[walOldHeaderSize:walOldHeaderSize+n], castagnoli) == binary.LittleEndian.Uint32(data[4:]) {
			return true
		}
	}
	return !bytes.Contains(data, walFrameMagicBytes)
}

// readOldSegment reads a segment of format 1. Without markers it cannot
// resynchronise: a bad record ends the segment, as a torn tail when the
// record runs past the end, as damage otherwise.
func readOldSegment(data []byte, fn func([]byte) error) (segmentScan, error) {
	sc := segmentScan{version: 1}
	off := 0
	for off < len(data) {
		if len(data)-off < walOldHeaderSize {
			sc.torn, sc.tornAt = len(data)-off, off
			break
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n > len(data)-off-walOldHeaderSize {
			sc.torn, sc.tornAt = len(data)-off, off
			break
		}
		p := data[off+walOldHeaderSize : off+walOldHeaderSize+n]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(data[off+4:]) {
			sc.damaged = append(sc.damaged, walDamage{off, len(data) - off})
			break
		}
		if err := fn(p); err != nil {
			return sc, fmt.Errorf("record at offset %d: %w", off, err)
		}
		sc.records++
		off += walOldHeaderSize + n
	}
	return sc, nil
}
