package storage

import "encoding/binary"

// appendBatchRecord encodes deltas and trip operations as earlier flowd
// did (recordBatch), for tests that such a log still replays.
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
