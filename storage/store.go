package storage

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/zstd"
)

// ErrUnavailable wraps failures to make a batch durable (a full disk, an I/O
// error): the batch was not acknowledged and may be sent again.
var ErrUnavailable = errors.New("storage unavailable")

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("storage closed")

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// FlushInterval is how often the in-memory table becomes parts.
	FlushInterval time.Duration
	// MemtableBytes triggers a flush before the interval once the
	// in-memory table holds that much (default 32 MiB).
	MemtableBytes int
	// Retention of each tier; past it whole parts are removed.
	Retention [numTiers]time.Duration
	// MergeFanIn is how many parts of one size class trigger a merge.
	MergeFanIn int
	// Now is the clock, for retention.
	Now func() time.Time
	// Logf receives operational messages.
	Logf func(format string, args ...any)
	// BlockCacheBytes bounds the decoded blocks kept for repeated queries
	// (default 256 MiB; negative: none).
	BlockCacheBytes int64
	// Failpoint, when set, is called at the moments a crash is most
	// dangerous (see the failpoint constants); crash tests kill the process
	// there.
	Failpoint func(name string)
}

// Failpoints: the moments between two durable steps.
const (
	// FailpointWALSynced: a group commit is in the WAL, not yet applied or
	// acknowledged.
	FailpointWALSynced = "wal-synced"
	// FailpointFlushPartInstalled: a flushed part of one tier is in place;
	// the other tier's part and the WAL cut are not done.
	FailpointFlushPartInstalled = "flush-part-installed"
	// FailpointMergeRenamed: a merged part is in place; its sources are not
	// removed yet.
	FailpointMergeRenamed = "merge-renamed"
)

func (s *Store) failpoint(name string) {
	if s.opts.Failpoint != nil {
		s.opts.Failpoint(name)
	}
}

func (o *Options) setDefaults() {
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Minute
	}
	if o.MemtableBytes <= 0 {
		o.MemtableBytes = 32 << 20
	}
	if o.Retention[TierMinute] <= 0 {
		o.Retention[TierMinute] = 30 * 24 * time.Hour
	}
	if o.Retention[TierHour] <= 0 {
		o.Retention[TierHour] = 2 * 365 * 24 * time.Hour
	}
	if o.BlockCacheBytes == 0 {
		o.BlockCacheBytes = 256 << 20
	}
	if o.MergeFanIn < 2 {
		o.MergeFanIn = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = log.Printf
	}
}

// maxFrozen bounds the memtables waiting for a flush; past it Add refuses
// work with ErrUnavailable rather than grow memory while the disk is failing.
const maxFrozen = 4

// Store is flowd's bucket store. Add makes deltas durable and visible;
// Scan reads them back.
type Store struct {
	dir  string
	opts Options
	lock *os.File

	names *metricNames

	commits chan *commit
	rotates chan chan rotation
	wal     *wal // owned by the commit goroutine

	flushMu sync.Mutex // one flush or merge at a time
	// applyMu is held for reading by every batch from the moment its WAL
	// write is durable until it is in the memtable; a rotation holds it for
	// writing, so a frozen memtable holds exactly the batches of the
	// segments it covers.
	applyMu sync.RWMutex
	mu      sync.RWMutex // guards mem, frozen, parts and trips
	mem     *memtable
	frozen  []*frozenTable
	parts   [numTiers][]*part
	trips   map[uint64]OpenTrip

	blocks *blockCache // decoded blocks of recent scans

	nextPartID atomic.Uint64
	lastErr    atomic.Pointer[string]

	flushNow chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
}

type commit struct {
	payload *[]byte // the WAL record, from payloads
	batch   *Batch
	ops     []TripOp
	done    chan error
}

// payloads pools WAL record buffers.
var payloads = sync.Pool{New: func() any { return new([]byte) }}

type rotation struct {
	frozen *frozenTable
	err    error
}

// frozenTable is a memtable whose WAL segments are closed and which is being
// written into parts. Each tier is dropped from it once its part is in place.
type frozenTable struct {
	mem    *memtable
	walSeq uint64
	done   [numTiers]bool
}

// Open opens or creates the store in dir, replays its WAL and starts the
// background flushes and merges.
func Open(dir string, opts Options) (*Store, error) {
	opts.setDefaults()
	for _, sub := range []string{"wal", "parts/minute", "parts/hour"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, "flock.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data directory %s is in use by another flowd: %w", dir, err)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		lock:     lock,
		commits:  make(chan *commit, 1024),
		rotates:  make(chan chan rotation),
		mem:      newMemtable(nil),
		blocks:   newBlockCache(opts.BlockCacheBytes),
		trips:    map[uint64]OpenTrip{},
		flushNow: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	if s.names, err = openMetricNames(filepath.Join(dir, "metrics.json")); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.openParts(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.replay(); err != nil {
		s.releaseParts()
		lock.Close()
		return nil, err
	}
	if s.wal, err = openWAL(filepath.Join(dir, "wal")); err != nil {
		s.releaseParts()
		lock.Close()
		return nil, err
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.backgroundLoop()
	return s, nil
}

func (s *Store) tierDir(t Tier) string {
	return filepath.Join(s.dir, "parts", t.String())
}

// openParts opens every part, finishes interrupted merges and sets damaged
// parts aside.
func (s *Store) openParts() error {
	var maxID uint64
	for t := range numTiers {
		dir := s.tierDir(t)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var parts []*part
		for _, e := range ents {
			name := e.Name()
			path := filepath.Join(dir, name)
			if strings.HasPrefix(name, "tmp-") {
				// An unfinished flush or merge: its inputs are still whole.
				os.RemoveAll(path)
				continue
			}
			id, err := strconv.ParseUint(name, 16, 64)
			if err != nil || !e.IsDir() {
				continue
			}
			maxID = max(maxID, id)
			p, err := openPart(path)
			if err != nil {
				s.quarantine(t, path, err)
				continue
			}
			parts = append(parts, p)
		}
		replaced := map[string]bool{}
		for _, p := range parts {
			for _, r := range p.meta.Replaces {
				replaced[r] = true
			}
		}
		for _, p := range parts {
			if replaced[p.name] {
				s.opts.Logf("storage: removing part %s, already merged into another part", p.dir)
				p.decRef()
				if err := os.RemoveAll(p.dir); err != nil {
					return err
				}
				continue
			}
			s.parts[t] = append(s.parts[t], p)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	s.nextPartID.Store(maxID)
	return nil
}

// quarantine moves a damaged part out of the way and says which file failed.
func (s *Store) quarantine(t Tier, path string, cause error) {
	qdir := filepath.Join(s.dir, "quarantine")
	dst := filepath.Join(qdir, t.String()+"-"+filepath.Base(path))
	s.opts.Logf("storage: %v; part set aside as %s", cause, dst)
	msg := cause.Error()
	s.lastErr.Store(&msg)
	if err := os.MkdirAll(qdir, 0o755); err == nil {
		if err := os.Rename(path, dst); err != nil {
			s.opts.Logf("storage: cannot move %s aside: %v", path, err)
		}
	}
}

// replay adds every WAL record not yet in a part of each tier to the memtable.
func (s *Store) replay() error {
	var covered [numTiers]uint64
	for t := range numTiers {
		for _, p := range s.parts[t] {
			covered[t] = max(covered[t], p.meta.WALSeq)
		}
	}
	records := 0
	var rec seriesTable
	var scratch shardScratch
	err := replayWAL(filepath.Join(s.dir, "wal"), s.opts.Logf, func(seq uint64, payload []byte) error {
		records++
		rec.reset()
		err := decodeRecord(payload, &rec, s.names.IsMax, func(op TripOp) {
			applyTripOps(s.trips, []TripOp{op})
		}, func() {
			clear(s.trips)
		})
		if err != nil {
			return err
		}
		switch minute, hour := seq > covered[TierMinute], seq > covered[TierHour]; {
		case minute && hour:
			s.mem.addTable(&rec, numTiers, &scratch)
		case minute:
			s.mem.addTable(&rec, TierMinute, &scratch)
		case hour:
			s.mem.addTable(&rec, TierHour, &scratch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if records > 0 {
		s.opts.Logf("storage: replayed %d WAL records (%d minute rows, %d open trips)", records, s.mem.rowCount(TierMinute), len(s.trips))
	}
	return nil
}

// MetricID returns the id of a metric name, creating it if new.
func (s *Store) MetricID(name string) (uint32, error) {
	return s.names.ID(name)
}

// LookupMetric returns the id of a known metric.
func (s *Store) LookupMetric(name string) (uint32, bool) {
	return s.names.Lookup(name)
}

// Metrics lists the known metric names.
func (s *Store) Metrics() []string {
	return s.names.Names()
}

// Add makes deltas durable and queryable. It returns only after they are
// fsynced in the WAL (with other batches, in one group commit); an error
// means none of them were kept.
func (s *Store) Add(deltas []Delta) error {
	if len(deltas) == 0 {
		return nil
	}
	b := NewBatch()
	defer b.Release()
	for _, d := range deltas {
		b.Add(d.Metric, s.names.IsMax(d.Metric), d.Cell, d.Sub, d.Minute, d.Value)
	}
	p, err := s.Submit(b, nil)
	if err != nil {
		return err
	}
	return p.Wait()
}

// Pending is a batch handed to the WAL writer, not yet known durable.
type Pending struct {
	s *Store
	c *commit
}

// Wait returns when the batch is durable (nil) or failed. A durable batch
// is added to the memtable here, by the submitting goroutine, so batches
// are applied in parallel while the WAL writer goes on.
func (p *Pending) Wait() error {
	err := <-p.c.done
	*p.c.payload = (*p.c.payload)[:0]
	payloads.Put(p.c.payload)
	if err != nil {
		return err
	}
	p.s.apply(p.c.batch)
	return nil
}

// apply adds a durable batch to the memtable and releases its hold on
// rotation.
func (s *Store) apply(b *Batch) {
	m := s.mem // stable: only a rotation, holding applyMu, replaces it
	m.addTable(&b.t, numTiers, &b.scratch)
	full := b.Len() > 0 && m.bytes() >= s.opts.MemtableBytes
	s.applyMu.RUnlock()
	if full {
		s.requestFlush()
	}
}

// Submit hands a batch of deltas and trip operations to the WAL writer and
// returns at once. Batches reach the WAL in the order they were submitted,
// so a caller that orders its trip operations under its own lock submits
// under that lock and waits after releasing it.
//
// The batch must stay unchanged until Wait returns; the caller releases it
// after.
func (s *Store) Submit(b *Batch, ops []TripOp) (*Pending, error) {
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
	payload := payloads.Get().(*[]byte)
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
			group = append(group[:0], c)
			size := len(*c.payload)
		gather:
			for size < maxGroupBytes {
				select {
				case c := <-s.commits:
					group = append(group, c)
					size += len(*c.payload)
				default:
					break gather
				}
			}
			records = records[:0]
			for _, c := range group {
				records = append(records, *c.payload)
			}
			err := s.wal.append(records)
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
					applyTripOps(s.trips, c.ops)
				}
				s.mu.Unlock()
				for range group {
					s.applyMu.RLock() // released by apply, in Pending.Wait
				}
			}
			for _, c := range group {
				c.done <- err
			}
			clear(group)
		case reply := <-s.rotates:
			reply <- s.rotate()
		case <-s.stop:
			s.drainCommits()
			return
		}
	}
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
// the closed one. Called by the commit goroutine. If the checkpoint cannot
// be written nothing is frozen, so no segment is removed.
func (s *Store) rotate() rotation {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem.empty() {
		return rotation{}
	}
	seq, err := s.wal.rotate()
	if err != nil {
		return rotation{err: err}
	}
	if err := s.wal.append([][]byte{appendCheckpointRecord(nil, s.trips)}); err != nil {
		return rotation{err: err}
	}
	f := &frozenTable{mem: s.mem, walSeq: seq}
	s.frozen = append(s.frozen, f)
	s.mem = newMemtable(s.mem)
	return rotation{frozen: f}
}

func (s *Store) requestFlush() {
	select {
	case s.flushNow <- struct{}{}:
	default:
	}
}

// LastError returns the last storage failure, for health reports.
func (s *Store) LastError() string {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *Store) backgroundLoop() {
	defer s.wg.Done()
	ticker := time.NewTicker(s.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-s.flushNow:
		case <-s.stop:
			return
		}
		s.maintain()
	}
}

// maintain flushes, cuts the WAL, merges and applies retention.
func (s *Store) maintain() {
	if err := s.Flush(); err != nil {
		s.opts.Logf("storage: flush failed, will retry: %v", err)
		return
	}
	for t := range numTiers {
		if err := s.mergeTier(t); err != nil {
			s.opts.Logf("storage: merge of %s parts failed, will retry: %v", t, err)
		}
	}
	s.applyRetention()
}

// Flush writes the memtable (and any earlier flush that failed) into parts
// and removes the WAL segments they cover.
func (s *Store) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	reply := make(chan rotation, 1)
	select {
	case s.rotates <- reply:
	case <-s.stop:
		return ErrClosed
	}
	if r := <-reply; r.err != nil {
		return r.err
	}
	return s.flushFrozen()
}

func (s *Store) flushFrozen() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.RLock()
	pending := slices.Clone(s.frozen)
	s.mu.RUnlock()
	for _, f := range pending {
		for t := range numTiers {
			if f.done[t] {
				continue
			}
			var p *part
			if f.mem.rowCount(t) > 0 {
				var err error
				p, err = s.writePart(t, f.walSeq, nil, zstdFlush, func(add func(Key, int64) error) error {
					return f.mem.each(t, add)
				})
				if err != nil {
					msg := err.Error()
					s.lastErr.Store(&msg)
					return err
				}
			}
			s.mu.Lock()
			if p != nil {
				s.parts[t] = append(s.parts[t], p)
			}
			f.done[t] = true
			s.mu.Unlock()
			if p != nil {
				s.failpoint(FailpointFlushPartInstalled)
			}
		}
		s.mu.Lock()
		s.frozen = slices.DeleteFunc(s.frozen, func(x *frozenTable) bool { return x == f })
		s.mu.Unlock()
		f.mem.release() // no scan can reach it now
		if err := removeWALUpTo(filepath.Join(s.dir, "wal"), f.walSeq); err != nil {
			return err
		}
	}
	return nil
}

// removeWALUpTo deletes the WAL segments numbered at most seq.
func removeWALUpTo(dir string, seq uint64) error {
	seqs, err := walSegments(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, n := range seqs {
		if n > seq {
			break
		}
		if err := os.Remove(filepath.Join(dir, segmentName(n))); err != nil {
			return err
		}
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// writePart writes the rows that each yields, in key order, as a new part
// of tier t and opens it.
func (s *Store) writePart(t Tier, walSeq uint64, replaces []string, enc *zstd.Encoder, each func(add func(Key, int64) error) error) (*part, error) {
	id := s.nextPartID.Add(1)
	name := fmt.Sprintf("%016x", id)
	tmp := filepath.Join(s.tierDir(t), "tmp-"+name)
	w, err := newPartWriter(tmp, t, enc)
	if err != nil {
		return nil, err
	}
	w.meta.WALSeq = walSeq
	w.meta.Replaces = replaces
	if err := each(w.add); err != nil {
		w.abort()
		return nil, err
	}
	return w.finish(filepath.Join(s.tierDir(t), name))
}

// Scan calls fn for every stored bucket of the metric in tier t whose cell
// lies in ranges (sorted, disjoint, base resolution) and whose minute is in
// [from, to). A bucket may be reported more than once (from the memtable and
// from parts not merged yet): callers sum (or, for max metrics, take the
// maximum). An unknown metric yields nothing.
func (s *Store) Scan(t Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell uint64, minute, value int64)) error {
	return s.ScanSub(t, metric, ranges, from, to, func(cell, _ uint64, minute, value int64) {
		fn(cell, minute, value)
	})
}

// ScanSub is Scan for metrics with a sub-key, which it passes on.
func (s *Store) ScanSub(t Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) error {
	return s.scan(t, metric, ranges, from, to, rowSink{fn: fn})
}

// SumSteps adds the value of every bucket of the metric in tier t, ranges
// and [from, to) into sums[(minute-from)/step]: a series query without a
// call per row. The metric must add up (not a max metric).
func (s *Store) SumSteps(t Tier, metric string, ranges []vocab.CellRange, from, to, step int64, sums []int64) error {
	if int64(len(sums)) < (to-from+step-1)/step {
		panic(fmt.Sprintf("BUG: %d sums for %d steps", len(sums), (to-from+step-1)/step))
	}
	if vocab.KindOf(metric) == vocab.Sketch {
		panic("BUG: SumSteps of a max metric " + metric)
	}
	return s.scan(t, metric, ranges, from, to, rowSink{sums: sums, step: step})
}

func (s *Store) scan(t Tier, metric string, ranges []vocab.CellRange, from, to int64, out rowSink) error {
	id, ok := s.names.Lookup(metric)
	if !ok || len(ranges) == 0 {
		return nil
	}
	fn := out.fn
	if fn == nil {
		fn = func(_, _ uint64, minute, v int64) { out.sums[(minute-from)/out.step] += v }
	}
	s.mu.RLock()
	s.mem.scan(t, id, ranges, from, to, fn)
	for _, f := range s.frozen {
		if !f.done[t] {
			f.mem.scan(t, id, ranges, from, to, fn)
		}
	}
	parts := slices.Clone(s.parts[t])
	for _, p := range parts {
		p.incRef()
	}
	s.mu.RUnlock()
	defer func() {
		for _, p := range parts {
			p.decRef()
		}
	}()
	for _, p := range parts {
		if err := p.scan(s.blocks, id, ranges, from, to, out); err != nil {
			var pe *PartError
			if errors.As(err, &pe) {
				s.setAside(t, p, err)
				continue
			}
			return err
		}
	}
	return nil
}

// setAside removes a part found damaged while serving and quarantines it.
func (s *Store) setAside(t Tier, p *part, cause error) {
	s.mu.Lock()
	i := slices.Index(s.parts[t], p)
	if i >= 0 {
		s.parts[t] = slices.Delete(s.parts[t], i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		s.quarantine(t, p.dir, cause)
		p.decRef()
	}
}

// Stats describes the store for /metrics.
type Stats struct {
	Parts         [numTiers]int
	PartRows      [numTiers]uint64
	PartBytes     [numTiers]int64
	MemtableRows  [numTiers]int
	PendingFlush  int
	Metrics       int
	LastError     string
	Quarantined   int
	BlockCache    int64 // bytes of decoded blocks kept for repeated queries
	DataDirectory string
}

// Stats returns current counters.
func (s *Store) Stats() Stats {
	var st Stats
	s.mu.RLock()
	for t := range numTiers {
		st.Parts[t] = len(s.parts[t])
		for _, p := range s.parts[t] {
			st.PartRows[t] += p.meta.Rows
			st.PartBytes[t] += p.size
		}
		st.MemtableRows[t] = s.mem.rowCount(t)
		for _, f := range s.frozen {
			if !f.done[t] {
				st.MemtableRows[t] += f.mem.rowCount(t)
			}
		}
	}
	st.PendingFlush = len(s.frozen)
	s.mu.RUnlock()
	st.Metrics = len(s.names.Names())
	st.LastError = s.LastError()
	if ents, err := os.ReadDir(filepath.Join(s.dir, "quarantine")); err == nil {
		st.Quarantined = len(ents)
	}
	st.BlockCache = s.blocks.bytes()
	st.DataDirectory = s.dir
	return st
}

// Close flushes the memtable into parts and stops the background work. If
// the flush fails, the WAL still holds everything and is replayed on Open.
func (s *Store) Close() error {
	if s.closed.Load() {
		return nil
	}
	ferr := s.Flush()
	s.closed.Store(true)
	close(s.stop)
	s.wg.Wait()
	err := s.wal.close()
	s.releaseParts()
	s.lock.Close()
	if ferr != nil {
		return ferr
	}
	return err
}

func (s *Store) releaseParts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range numTiers {
		for _, p := range s.parts[t] {
			p.decRef()
		}
		s.parts[t] = nil
	}
}
