package storage

import (
	"encoding/binary"
	"fmt"
)

// WAL record types; the first byte of every record payload.
const (
	recordDeltas byte = 1
)

// appendDeltasRecord encodes deltas as a WAL record payload.
func appendDeltasRecord(dst []byte, deltas []Delta) []byte {
	dst = append(dst, recordDeltas)
	dst = binary.AppendUvarint(dst, uint64(len(deltas)))
	for _, d := range deltas {
		dst = binary.AppendUvarint(dst, uint64(d.Metric))
		dst = binary.AppendUvarint(dst, d.Cell)
		dst = binary.AppendUvarint(dst, d.Sub)
		dst = binary.AppendVarint(dst, d.Minute)
		dst = binary.AppendVarint(dst, d.Value)
	}
	return dst
}

// decodeRecord calls fn for every delta of a WAL record payload.
func decodeRecord(p []byte, fn func(Delta)) error {
	if len(p) == 0 {
		return fmt.Errorf("empty WAL record")
	}
	if p[0] != recordDeltas {
		return fmt.Errorf("unknown WAL record type %d", p[0])
	}
	p = p[1:]
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return fmt.Errorf("bad delta count")
	}
	p = p[k:]
	for i := uint64(0); i < n; i++ {
		var d Delta
		var vals [5]uint64
		for j := range vals {
			var v uint64
			var k int
			if j < 3 {
				v, k = binary.Uvarint(p)
			} else {
				var sv int64
				sv, k = binary.Varint(p)
				v = uint64(sv)
			}
			if k <= 0 {
				return fmt.Errorf("delta %d of %d is truncated", i, n)
			}
			vals[j] = v
			p = p[k:]
		}
		d.Metric, d.Cell, d.Sub, d.Minute, d.Value = uint32(vals[0]), vals[1], vals[2], int64(vals[3]), int64(vals[4])
		fn(d)
	}
	if len(p) != 0 {
		return fmt.Errorf("%d bytes after the last delta", len(p))
	}
	return nil
}
