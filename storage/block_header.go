package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
)

// blockHeaderSize is the encoded size of a blockHeader in index.bin.
const blockHeaderSize = 2*keySize + 16 + 4 + numColumns*columnHeaderSize

// keySize is the encoded size of a Key.
const keySize = 4 + 8 + 8 + 8

const columnHeaderSize = 8 + 4 + 1 + 1 + 8 + 4

// blockHeader is one entry of a part's sparse index: the key range, time
// range and row count of a block, and where each of its columns lies.
type blockHeader struct {
	First, Last          Key
	MinMinute, MaxMinute int64
	Rows                 uint32
	Columns              [numColumns]columnHeader
}

func appendKey(dst []byte, k Key) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, k.Metric)
	dst = binary.LittleEndian.AppendUint64(dst, k.Cell)
	dst = binary.LittleEndian.AppendUint64(dst, k.Sub)
	return binary.LittleEndian.AppendUint64(dst, uint64(k.Minute))
}

func readKey(src []byte) Key {
	return Key{
		Metric: binary.LittleEndian.Uint32(src),
		Cell:   binary.LittleEndian.Uint64(src[4:]),
		Sub:    binary.LittleEndian.Uint64(src[12:]),
		Minute: int64(binary.LittleEndian.Uint64(src[20:])),
	}
}

func (h *blockHeader) marshal(dst []byte) []byte {
	dst = appendKey(dst, h.First)
	dst = appendKey(dst, h.Last)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.MinMinute))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.MaxMinute))
	dst = binary.LittleEndian.AppendUint32(dst, h.Rows)
	for _, c := range h.Columns {
		dst = binary.LittleEndian.AppendUint64(dst, c.Offset)
		dst = binary.LittleEndian.AppendUint32(dst, c.Size)
		dst = append(dst, byte(c.MarshalType))
		if c.Compressed {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(c.FirstValue))
		dst = binary.LittleEndian.AppendUint32(dst, c.Checksum)
	}
	return dst
}

func (h *blockHeader) unmarshal(src []byte) error {
	if len(src) < blockHeaderSize {
		return fmt.Errorf("block header needs %d bytes, have %d", blockHeaderSize, len(src))
	}
	h.First = readKey(src)
	h.Last = readKey(src[keySize:])
	src = src[2*keySize:]
	h.MinMinute = int64(binary.LittleEndian.Uint64(src))
	h.MaxMinute = int64(binary.LittleEndian.Uint64(src[8:]))
	h.Rows = binary.LittleEndian.Uint32(src[16:])
	if h.Rows == 0 || h.Rows > maxBlockRows {
		return fmt.Errorf("block has %d rows; want 1..%d", h.Rows, maxBlockRows)
	}
	src = src[20:]
	for i := range h.Columns {
		c := &h.Columns[i]
		c.Offset = binary.LittleEndian.Uint64(src)
		c.Size = binary.LittleEndian.Uint32(src[8:])
		c.MarshalType = encoding.MarshalType(src[12])
		c.Compressed = src[13] == 1
		c.FirstValue = int64(binary.LittleEndian.Uint64(src[14:]))
		c.Checksum = binary.LittleEndian.Uint32(src[22:])
		src = src[columnHeaderSize:]
	}
	return nil
}
