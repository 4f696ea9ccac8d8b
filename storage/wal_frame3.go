package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// WAL format 3: segment files are recycled. A segment opens with a header
// naming its number (walSegmentHeader3), and each frame's header checksum
// covers that number too, so the frames a file held in an earlier life,
// under another number, never check in this one: a recycled file needs no
// zeros written over its old contents. Each group commit ends with an end
// marker (a frame of no payload), which the next commit overwrites: a range
// that holds no intact frame before an end marker lay inside acknowledged
// commits (damage); after the last end marker it is an unfinished write,
// or room, or what the file held before. docs/storage-format.md describes
// the bytes.

// walMagic3 is the first 8 bytes of every segment of format 3.
var walMagic3 = [8]byte{'f', 'l', 'o', 'w', 'd', 'W', 'L', 3}

// walHeader3Size is a format 3 segment header: magic, the segment's number
// (uint64), CRC-32C of those 16 bytes, 4 zero bytes.
const walHeader3Size = 24

// walEndMarkSize is an end marker: a frame header with no payload.
const walEndMarkSize = walFrameHeaderSize

func appendSegmentHeader3(dst []byte, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, walMagic3[:]...)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:start+16], castagnoli))
	return append(dst, 0, 0, 0, 0)
}

// segmentHeader3 returns the number an intact format 3 header names.
func segmentHeader3(data []byte) (seq uint64, ok bool) {
	if len(data) < walHeader3Size || !bytes.Equal(data[:8], walMagic3[:]) ||
		crc32.Checksum(data[:16], castagnoli) != binary.LittleEndian.Uint32(data[16:]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(data[8:]), true
}

// frameHeaderCRC3 is the header checksum of a format 3 frame of segment
// seq: bytes 0–11 of the frame, then seq as 8 bytes.
func frameHeaderCRC3(h []byte, seq uint64) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Checksum(h[:12], castagnoli), castagnoli, s[:])
}

// appendFrame3 appends payload p as one frame of segment seq; an empty p
// is an end marker.
func appendFrame3(dst, p []byte, seq uint64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, walFrameMagic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(p, castagnoli))
	dst = binary.LittleEndian.AppendUint32(dst, frameHeaderCRC3(dst[start:], seq))
	return append(dst, p...)
}

// frameAt3 returns the payload of the intact frame of segment seq at off;
// an empty payload is an end marker.
func frameAt3(data []byte, off int, seq uint64) ([]byte, bool) {
	if len(data)-off < walFrameHeaderSize {
		return nil, false
	}
	h := data[off : off+walFrameHeaderSize]
	if binary.LittleEndian.Uint32(h) != walFrameMagic || frameHeaderCRC3(h, seq) != binary.LittleEndian.Uint32(h[12:]) {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(h[4:]))
	if n > maxWALRecord || n > len(data)-off-walFrameHeaderSize {
		return nil, false
	}
	p := data[off+walFrameHeaderSize : off+walFrameHeaderSize+n]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[8:]) {
		return nil, false
	}
	return p, true
}

// nextFrame3 returns the offset of the first intact frame (or end marker)
// of segment seq at or after off, or -1.
func nextFrame3(data []byte, off int, seq uint64) int {
	return nextIntact(data, off, func(data []byte, off int) ([]byte, bool) { return frameAt3(data, off, seq) })
}

// isSegment3 reports whether data, the contents of segment seq, is of
// format 3: its header says so, or (the header damaged) a frame of
// segment seq checks somewhere in it.
func isSegment3(data []byte, seq uint64) bool {
	if bytes.HasPrefix(data, walMagic3[:]) {
		return true
	}
	if len(data) < len(walMagic3) || bytes.HasPrefix(data, walSegmentHeader[:]) {
		return false
	}
	return nextFrame3(data, 0, seq) >= 0
}

// readSegment3 is readSegment for a segment of format 3, numbered seq.
func readSegment3(data []byte, seq uint64, fn func([]byte) error) (segmentScan, error) {
	sc := segmentScan{version: 3}
	off := 0
	if h, ok := segmentHeader3(data); ok {
		if h != seq {
			// A recycled file that no write of its new life reached:
			// everything in it is from its life as segment h.
			sc.room = len(data)
			return sc, nil
		}
		off = walHeader3Size
	}
	// A damaged header is a range without an intact frame at offset 0,
	// judged as any other.
	var gaps []walDamage // ranges without an intact frame since the last end marker
	last := off          // the end of the last intact frame, end marker or header
	marked := false      // whether the last intact frame was an end marker
	for off < len(data) {
		if p, ok := frameAt3(data, off, seq); ok {
			at := off
			off += walFrameHeaderSize + len(p)
			last = off
			if len(p) == 0 {
				// Every commit before this marker was acknowledged: the
				// ranges before it that hold no frame are damage.
				sc.damaged = append(sc.damaged, gaps...)
				gaps, marked = gaps[:0], true
				continue
			}
			marked = false
			if err := fn(p); err != nil {
				return sc, fmt.Errorf("record at offset %d: %w", at, err)
			}
			sc.records++
			continue
		}
		next := nextFrame3(data, off+1, seq)
		if next < 0 {
			break
		}
		gaps = append(gaps, walDamage{off, next - off})
		off = next
	}
	// After the last end marker: room (zeros, or what the file held in an
	// earlier life), or a commit a crash cut short, which was never
	// acknowledged.
	z := zerosFrom(data, last)
	sc.room = len(data) - z
	if !marked && (last < z || len(gaps) > 0) {
		sc.tornAt = last
		if len(gaps) > 0 {
			sc.tornAt = gaps[0].offset
		}
		sc.torn = max(z, last) - sc.tornAt
	}
	return sc, nil
}
