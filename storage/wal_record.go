package storage

import (
	"encoding/binary"
	"fmt"
)

// WAL record types; the first byte of every record payload.
const (
	// recordBatch holds the deltas and trip operations of one or more
	// ingest batches.
	recordBatch byte = 1
	// recordCheckpoint holds every open trip at the start of a segment.
	recordCheckpoint byte = 2
)

// appendBatchRecord encodes deltas and trip operations as a WAL record
// payload.
func appendBatchRecord(dst []byte, deltas []Delta, ops []TripOp) []byte {
	dst = append(dst, recordBatch)
	dst = binary.AppendUvarint(dst, uint64(len(deltas)))
	for _, d := range deltas {
		dst = binary.AppendUvarint(dst, uint64(d.Metric))
		dst = binary.AppendUvarint(dst, d.Cell)
		dst = binary.AppendUvarint(dst, d.Sub)
		dst = binary.AppendVarint(dst, d.Minute)
		dst = binary.AppendVarint(dst, d.Value)
	}
	return appendTripOps(dst, ops)
}

// decodeRecord calls fn for every delta of a WAL record payload and op for
// every trip operation; a checkpoint first calls reset.
func decodeRecord(p []byte, fn func(Delta), op func(TripOp), reset func()) error {
	if len(p) == 0 {
		return fmt.Errorf("empty WAL record")
	}
	switch p[0] {
	case recordBatch:
	case recordCheckpoint:
		reset()
		rest, err := decodeTripOps(p[1:], op)
		if err == nil && len(rest) != 0 {
			err = fmt.Errorf("%d bytes after the checkpoint", len(rest))
		}
		return err
	default:
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
	p, err := decodeTripOps(p, op)
	if err != nil {
		return err
	}
	if len(p) != 0 {
		return fmt.Errorf("%d bytes after the last trip operation", len(p))
	}
	return nil
}
