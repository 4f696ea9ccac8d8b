package storage

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
)

// OpenTrip is a tap-in not yet matched with its tap-out: the only state
// about a person flowd keeps, under the card's keyed hash, until the trip
// closes or expires.
type OpenTrip struct {
	Card  uint64 // keyed hash of the card id
	Start int64  // tap-in time, unix seconds
	Cell  uint64 // tap-in cell at the base resolution

	// A leg of a line, whose destination may be inferred from the card's
	// next tap-in that day, carries its line and what chaining needs: the
	// start and first boarding cell of the trip it belongs to, and the
	// day's first boarding cell, where the day's last leg is taken to end.
	Line      string
	TripStart int64
	TripCell  uint64
	DayCell   uint64
	// Group is the rider group of the leg's card ("" for none), which its
	// inferred leg and trip count in.
	Group string
}

// TripOp opens or closes a trip in the durable open-trip table. It is
// logged with the deltas of the same batch.
type TripOp struct {
	Open bool
	Trip OpenTrip // for a close only Card counts
}

// applyTripOps applies ops to trips in their order. It returns a sum of
// what it read ahead (see TripTable.Warm), for the caller to keep or drop.
func applyTripOps(trips *TripTable, ops []TripOp) (sink uint64) {
	var ahead [tripWarmAhead]uint64
	for i, op := range ops {
		if i%tripWarmAhead == 0 {
			// This op's slot and the next ones', read together (see
			// TripTable.Warm).
			n := 0
			for _, next := range ops[i:min(i+tripWarmAhead, len(ops))] {
				ahead[n], n = next.Trip.Card, n+1
			}
			sink += trips.Warm(ahead[:n])
		}
		if op.Open {
			trips.Put(op.Trip)
		} else {
			trips.Del(op.Trip.Card)
		}
	}
	return sink
}

// tripWarmAhead is how many trip operations ahead their slots are read
// together (TripTable.Warm); ingest's matcher reads as many taps ahead.
const tripWarmAhead = 16

func appendTripOps(dst []byte, ops []TripOp) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ops)))
	for _, op := range ops {
		if op.Open {
			kind := byte(tripOpOpen)
			switch {
			case op.Trip.Line != "" && op.Trip.Group != "":
				kind = tripOpOpenGroupLeg
			case op.Trip.Line != "":
				kind = tripOpOpenLeg
			}
			dst = append(dst, kind)
			dst = binary.LittleEndian.AppendUint64(dst, op.Trip.Card)
			dst = binary.AppendVarint(dst, op.Trip.Start)
			dst = binary.AppendUvarint(dst, op.Trip.Cell)
			if kind != tripOpOpen {
				dst = binary.AppendUvarint(dst, uint64(len(op.Trip.Line)))
				dst = append(dst, op.Trip.Line...)
				dst = binary.AppendVarint(dst, op.Trip.Start-op.Trip.TripStart)
				dst = binary.AppendUvarint(dst, op.Trip.TripCell)
				dst = binary.AppendUvarint(dst, op.Trip.DayCell)
			}
			if kind == tripOpOpenGroupLeg {
				dst = binary.AppendUvarint(dst, uint64(len(op.Trip.Group)))
				dst = append(dst, op.Trip.Group...)
			}
		} else {
			dst = append(dst, 0)
			dst = binary.LittleEndian.AppendUint64(dst, op.Trip.Card)
		}
	}
	return dst
}

// The kinds of a logged trip operation: its first byte.
const (
	tripOpClose   = 0
	tripOpOpen    = 1
	tripOpOpenLeg = 2 // an open trip with a line: followed by the leg's fields
	// tripOpOpenGroupLeg is tripOpOpenLeg followed by the card's rider group.
	tripOpOpenGroupLeg = 3
)

// maxLineLen bounds a line name in a logged leg, maxGroupLen a rider
// group's name.
const (
	maxLineLen  = 256
	maxGroupLen = 64
)

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
		kind := p[0]
		if kind > tripOpOpenGroupLeg {
			return nil, fmt.Errorf("trip operation %d of %d has unknown kind %d", i, n, kind)
		}
		op.Open = kind != tripOpClose
		op.Trip.Card = binary.LittleEndian.Uint64(p[1:])
		p = p[9:]
		truncated := fmt.Errorf("trip operation %d of %d is truncated", i, n)
		if op.Open {
			start, k := binary.Varint(p)
			if k <= 0 {
				return nil, truncated
			}
			p = p[k:]
			cell, k := binary.Uvarint(p)
			if k <= 0 {
				return nil, truncated
			}
			p = p[k:]
			op.Trip.Start, op.Trip.Cell = start, cell
		}
		if kind >= tripOpOpenLeg {
			var err error
			if p, err = decodeLeg(p, &op.Trip); err != nil {
				return nil, fmt.Errorf("trip operation %d of %d: %w", i, n, err)
			}
		}
		if kind == tripOpOpenGroupLeg {
			g, k := binary.Uvarint(p)
			if k <= 0 || g == 0 || g > maxGroupLen || uint64(len(p)-k) < g {
				return nil, fmt.Errorf("trip operation %d of %d: bad rider group of a leg", i, n)
			}
			op.Trip.Group = string(p[k : k+int(g)])
			p = p[k+int(g):]
		}
		fn(op)
	}
	return p, nil
}

// decodeLeg reads the fields of an open leg after its trip's.
func decodeLeg(p []byte, o *OpenTrip) ([]byte, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n == 0 || n > maxLineLen || uint64(len(p)-k) < n {
		return nil, fmt.Errorf("bad line of a leg")
	}
	o.Line = string(p[k : k+int(n)])
	p = p[k+int(n):]
	back, k := binary.Varint(p)
	if k <= 0 {
		return nil, fmt.Errorf("leg is truncated")
	}
	p = p[k:]
	o.TripStart = o.Start - back
	if o.TripCell, k = binary.Uvarint(p); k <= 0 {
		return nil, fmt.Errorf("leg is truncated")
	}
	p = p[k:]
	if o.DayCell, k = binary.Uvarint(p); k <= 0 {
		return nil, fmt.Errorf("leg is truncated")
	}
	return p[k:], nil
}

// appendCheckpointRecord encodes every open trip as a WAL checkpoint
// record, written first in each new segment so that older segments can go.
func appendCheckpointRecord(dst []byte, trips *TripTable) []byte {
	ops := make([]TripOp, 0, trips.Len())
	trips.Each(func(o OpenTrip) { ops = append(ops, TripOp{Open: true, Trip: o}) })
	slices.SortFunc(ops, func(a, b TripOp) int { return cmp.Compare(a.Trip.Card, b.Trip.Card) })
	dst = append(dst, recordCheckpoint)
	return appendTripOps(dst, ops)
}

// OpenTrips returns the durable open-trip table, as replayed at Open and
// kept since.
func (s *Store) OpenTrips() []OpenTrip {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]OpenTrip, 0, s.trips.Len())
	s.trips.Each(func(t OpenTrip) { out = append(out, t) })
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}
