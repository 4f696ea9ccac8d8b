// Package deltaq queues a durable batch's deltas from ingest for a live
// consumer (the live map's window, the forecast tracker) until it takes
// them, in blocks of fixed size that the consumer gives back for reuse: a
// busy city queues hundreds of thousands of deltas between two takes, and
// a slice grown to that size by appending was copied at every doubling
// and dropped as garbage at every take (ingest's largest source of
// garbage, and 4–6 % of its CPU in the copies alone).
package deltaq

import (
	"iter"

	"github.com/flowd/flowd/storage"
)

// blockLen is the deltas of one block: 160 KiB.
const blockLen = 4096

type block struct {
	n int
	d [blockLen]storage.Delta
}

// Queue is a FIFO of deltas. It is not safe for concurrent use: its
// owner guards Push, Len, Take and Release with one lock.
type Queue struct {
	blocks []*block // queued, the last one being filled
	cur    *block   // the last of blocks, nil when there are none
	free   []*block
	n      int
}

// Len is the number of deltas queued.
func (q *Queue) Len() int { return q.n }

// Push queues d.
func (q *Queue) Push(d storage.Delta) {
	if b := q.cur; b != nil && b.n < blockLen {
		b.d[b.n] = d
		b.n++
		q.n++
		return
	}
	q.pushBlock(d)
}

// pushBlock queues d in a block of its own: a free one, or a new one.
func (q *Queue) pushBlock(d storage.Delta) {
	var b *block
	if k := len(q.free); k > 0 {
		b, q.free[k-1] = q.free[k-1], nil
		q.free = q.free[:k-1]
	} else {
		b = new(block)
	}
	q.blocks = append(q.blocks, b)
	q.cur = b
	b.d[0] = d
	b.n = 1
	q.n++
}

// Taken is what Take moved out of a queue: read it, then Release it.
type Taken struct{ blocks []*block }

// Len is the number of deltas taken.
func (t Taken) Len() int {
	n := 0
	for _, b := range t.blocks {
		n += b.n
	}
	return n
}

// All yields the deltas taken, in the order they were pushed, a block's
// run at a time.
func (t Taken) All() iter.Seq[[]storage.Delta] {
	return func(yield func([]storage.Delta) bool) {
		for _, b := range t.blocks {
			if !yield(b.d[:b.n]) {
				return
			}
		}
	}
}

// Take empties the queue and returns what it held.
func (q *Queue) Take() Taken {
	t := Taken{blocks: q.blocks}
	q.blocks, q.cur, q.n = nil, nil, 0
	return t
}

// Release gives the blocks of t back for reuse. The queue keeps as many
// free blocks as t held (at least one): a steady feed reuses the same
// blocks take after take, and a burst's blocks go back to the garbage
// collector by the next Release after it.
func (q *Queue) Release(t Taken) {
	for _, b := range t.blocks {
		b.n = 0
	}
	q.free = append(q.free, t.blocks...)
	if keep := max(len(t.blocks), 1); len(q.free) > keep {
		clear(q.free[keep:])
		q.free = q.free[:keep]
	}
	if q.blocks == nil {
		q.blocks = t.blocks[:0] // the list's array too
	}
}
