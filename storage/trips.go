package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// OpenTrip is a tap-in not yet matched with its tap-out: the only state
// about a person flowd keeps, under the card's keyed hash, until the trip
// closes or expires.
type OpenTrip struct {
	Card  uint64 // keyed hash of the card id
	Start int64  // tap-in time, unix seconds
	Cell  uint64 // tap-in cell at the base resolution
}

// TripOp opens or closes a trip in the durable open-trip table. It is
// logged with the deltas of the same batch.
type TripOp struct {
	Open bool
	Trip OpenTrip // for a close only Card counts
}

func applyTripOps(trips map[uint64]OpenTrip, ops []TripOp) {
	for _, op := range ops {
		if op.Open {
			trips[op.Trip.Card] = op.Trip
		} else {
			delete(trips, op.Trip.Card)
		}
	}
}

func appendTripOps(dst []byte, ops []TripOp) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, op := range ops {
		if op.Open {
			dst = append(dst, 1)
			dst = binary.LittleEndian.AppendUint64(dst, op.Trip.Card)
			dst = binary.AppendVarint(dst, op.Trip.Start)
			dst = binary.AppendUvarint(dst, op.Trip.Cell)
		} else {
			dst = append(dst, 0)
			dst = binary.LittleEndian.AppendUint64(dst, op.Trip.Card)
		}
	}
	return dst
}

func decodeTripOps(p []byte, fn func(TripOp)) ([]byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return nil, fmt.Errorf("bad trip operation count")
	}
	p = p[k:]
	for i := uint64(0); i < n; i++ {
		if len(p) < 9 {
			return nil, fmt.Errorf("trip operation %d of %d is truncated", i, n)
		}
		var op TripOp
		op.Open = p[0] == 1
		op.Trip.Card = binary.LittleEndian.Uint64(p[1:])
		p = p[9:]
		if op.Open {
			start, k := binary.Varint(p)
			if k <= 0 {
				return nil, fmt.Errorf("trip operation %d of %d is truncated", i, n)
			}
			p = p[k:]
			cell, k := binary.Uvarint(p)
			if k <= 0 {
				return nil, fmt.Errorf("trip operation %d of %d is truncated", i, n)
			}
			p = p[k:]
			op.Trip.Start, op.Trip.Cell = start, cell
		}
		fn(op)
	}
	return p, nil
}

// appendCheckpointRecord encodes every open trip as a WAL checkpoint
// record, written first in each new segment so that older segments can go.
func appendCheckpointRecord(dst []byte, trips map[uint64]OpenTrip) []byte {
	cards := make([]uint64, 0, len(trips))
	for c := range trips {
		cards = append(cards, c)
	}
	sort.Slice(cards, func(i, j int) bool { return cards[i] < cards[j] })
	ops := make([]TripOp, len(cards))
	for i, c := range cards {
		ops[i] = TripOp{Open: true, Trip: trips[c]}
	}
	dst = append(dst, recordCheckpoint)
	return appendTripOps(dst, ops)
}

// OpenTrips returns the durable open-trip table, as replayed at Open and
// kept since.
func (s *Store) OpenTrips() []OpenTrip {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]OpenTrip, 0, len(s.trips))
	for _, t := range s.trips {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}
