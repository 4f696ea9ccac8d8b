package storage

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/internal/freelist"
)

type commit struct {
	payload *[]byte // the WAL record, from payloads
	batch   *Batch
	ops     []TripOp
	done    chan error
	// applied is set by whoever adds the durable batch to the memtable:
	// its submitter in Wait, or a rotation that found it not yet added.
	applied atomic.Bool
}

// payloads keeps a few WAL record buffers, grown to a batch's record.
var payloads = freelist.New[[]byte](8)

// maxPooledPayload bounds the size of a buffer kept.
const maxPooledPayload = 4 << 20

func getPayload() *[]byte {
	if p := payloads.Get(); p != nil {
		return p
	}
	return new([]byte)
}

func putPayload(p *[]byte) {
	if cap(*p) <= maxPooledPayload {
		*p = (*p)[:0]
		payloads.Put(p)
	}
}

type rotation struct {
	frozen *frozenTable
	err    error
}

// Pending is a batch handed to the WAL writer, not yet known durable.
type Pending struct {
	s *Store
	c *commit
}

// Wait returns when the batch is durable (nil) or failed. A durable batch
// is added to the memtable here, by the submitting goroutine, so batches
// are applied in parallel while the WAL writer goes on; a rotation that
// comes first adds it itself (see Store.rotate), so a submitter slow to
// wait never holds up a flush.
func (p *Pending) Wait() error {
	err := <-p.c.done
	putPayload(p.c.payload)
	if err != nil {
		return err
	}
	s := p.s
	s.applyMu.RLock()
	full := false
	if p.c.applied.CompareAndSwap(false, true) {
		full = s.applyLocked(p.c.batch)
	}
	s.applyMu.RUnlock()
	if full {
		s.requestFlush()
	}
	return nil
}

// applyLocked adds a durable batch to the memtable, under applyMu, and
// reports whether the memtable is now full.
func (s *Store) applyLocked(b *Batch) bool {
	s.lastIngest.Store(s.opts.Now().UnixNano())
	m := s.mem // stable: only a rotation, holding applyMu, replaces it
	m.addTable(&b.t, numTiers, &b.scratch)
	return b.Len() > 0 && m.bytes() >= s.opts.MemtableBytes
}

// noteDurable records a group commit's batches until they are applied.
// Called by the commit goroutine, which alone touches s.durable; applied
// ones are dropped now and then, so the list stays about as long as the
// batches whose submitters have not waited yet.
func (s *Store) noteDurable(group []*commit) {
	if len(s.durable) >= 2*s.durableKept+256 {
		kept := s.durable[:0]
		for _, c := range s.durable {
			if !c.applied.Load() {
				kept = append(kept, c)
			}
		}
		clear(s.durable[len(kept):])
		s.durable = kept
		s.durableKept = len(kept)
	}
	s.durable = append(s.durable, group...)
}

// Submit hands a batch of deltas and trip operations to the WAL writer and
// returns at once. Batches reach the WAL in the order they were submitted,
// so a caller that orders its trip operations under its own lock submits
// under that lock and waits after releasing it.
//
// The batch must stay unchanged until Wait returns; the caller releases it
// after.
func (s *Store) Submit(b *Batch, ops []TripOp) (*Pending, error) {
	// Close waits for the submits under way, so none can queue a batch
	// after the WAL writer has answered the last ones and stopped.
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if b.err != nil {
		return nil, b.err
	}
	s.mu.RLock()
	frozen := len(s.frozen)
	s.mu.RUnlock()
	if frozen >= maxFrozen {
		return nil, fmt.Errorf("%w: %d flushes are pending; last error: %s", ErrUnavailable, frozen, s.LastError())
	}
	payload := getPayload()
	*payload = appendSeriesRecord((*payload)[:0], &b.t, ops)
	c := &commit{payload: payload, batch: b, ops: ops, done: make(chan error, 1)}
	select {
	case s.commits <- c:
	case <-s.stop:
		return nil, ErrClosed
	}
	return &Pending{s, c}, nil
}

// maxGroupBytes bounds one group commit.
const maxGroupBytes = 16 << 20

// commitLoop is the only writer of the WAL: it gathers the batches waiting
// at that moment, writes them with one fsync, applies them to the memtable
// and answers each.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	var group []*commit
	var records [][]byte
	for {
		select {
		case c := <-s.commits:
			group, records = s.commitGroup(append(group[:0], c), records, -1)
		case reply := <-s.rotates:
			// A batch submitted before the flush asked for the rotation
			// goes into the memtable that the flush writes: the batches
			// queued now, and no more (under a stream of submitters the
			// queue may never be empty, and the rotation must not wait
			// for it to be).
			for n := len(s.commits); n > 0; n -= len(group) {
				if group, records = s.commitGroup(group[:0], records, n); len(group) == 0 {
					break
				}
			}
			reply <- s.rotate()
		case <-s.stop:
			s.drainCommits()
			return
		}
	}
}

// commitGroup adds the batches waiting to group, up to limit batches in
// all (no limit when negative), writes them to the WAL with one fsync and
// answers each. It returns its slices for reuse, the group as long as the
// batches it committed.
func (s *Store) commitGroup(group []*commit, records [][]byte, limit int) ([]*commit, [][]byte) {
	size := 0
	for _, c := range group {
		size += len(*c.payload)
	}
gather:
	for size < maxGroupBytes && (limit < 0 || len(group) < limit) {
		select {
		case c := <-s.commits:
			group = append(group, c)
			size += len(*c.payload)
		default:
			break gather
		}
	}
	if len(group) == 0 {
		return group, records
	}
	records = records[:0]
	for _, c := range group {
		records = append(records, *c.payload)
	}
	start := time.Now()
	err := s.wal.append(records)
	s.metrics.walWritten(records, start, err)
	if err == nil {
		s.failpoint(FailpointWALSynced)
	}
	if err != nil {
		msg := err.Error()
		s.lastErr.Store(&msg)
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	} else {
		s.mu.Lock()
		for _, c := range group {
			applyTripOps(&s.trips, c.ops)
		}
		s.mu.Unlock()
		s.noteDurable(group)
	}
	for _, c := range group {
		c.done <- err
	}
	clear(group)
	return group, records
}

func (s *Store) drainCommits() {
	for {
		select {
		case c := <-s.commits:
			c.done <- ErrClosed
		default:
			return
		}
	}
}

// rotate closes the WAL segment, starts the next with a checkpoint of the
// open trips, and freezes the memtable that holds exactly the segments up to
// the closed one: it first adds every durable batch whose submitter has not
// yet. Called by the commit goroutine. If the checkpoint cannot be written
// nothing is frozen, so no segment is removed.
func (s *Store) rotate() rotation {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	for _, c := range s.durable {
		if c.applied.CompareAndSwap(false, true) {
			s.applyLocked(c.batch)
		}
	}
	clear(s.durable)
	s.durable, s.durableKept = s.durable[:0], 0
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem.empty() {
		return rotation{}
	}
	seq, err := s.wal.rotate()
	if err != nil {
		return rotation{err: err}
	}
	if err := s.wal.append([][]byte{appendCheckpointRecord(nil, &s.trips)}); err != nil {
		return rotation{err: err}
	}
	f := &frozenTable{mem: s.mem, walSeq: seq}
	s.frozen = append(s.frozen, f)
	s.mem, s.spare = s.spare, nil
	if s.mem == nil {
		s.mem = newMemtableLike(f.mem)
	}
	return rotation{frozen: f}
}
