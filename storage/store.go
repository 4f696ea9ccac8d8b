package storage

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	// in-memory table holds that much (default 32 MiB: about 1.7 M
	// points of the bench's city, see maxChunk). A flush's cost is mostly
	// per series it writes, and merges rewrite what flushes wrote, so a
	// larger table writes each series' points in fewer, longer runs: at
	// 32 MiB the bench's day took a tenth to a fifth less CPU than at 12,
	// with no higher peak RSS (BENCH.md, seventeenth session).
	MemtableBytes int
	// HugePages advises the kernel to back the memtables' pages (a pool
	// mapped at Open, see pagePool) with transparent huge pages.
	HugePages bool
	// Retention of each tier; past it whole parts are removed. The day
	// tier keeps what the hour tier keeps: its entry is ignored.
	Retention [numTiers]time.Duration
	// MergeFanIn is how many parts of one size class trigger a merge
	// [8]: each row is rewritten about log_F(parts a day) times as it
	// climbs the classes, while up to F-1 parts of each wait.
	MergeFanIn int
	// Now is the clock, for retention.
	Now func() time.Time
	// Logf receives operational messages.
	Logf func(format string, args ...any)
	// MaxMetrics bounds the metric names (default 1024): a new one past it
	// is refused with ErrTooManyMetrics, unless it is one every flowd
	// keeps (vocab.IsFixed). Detector classes make metrics, two each.
	MaxMetrics int
	// BlockCacheBytes bounds the decoded blocks kept for repeated queries
	// (default 256 MiB; negative: none).
	BlockCacheBytes int64
	// Watch, when set, hears of every row a flush writes before the
	// flush's part is in place (see FlushWatch).
	Watch FlushWatch
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
	o.Retention[TierDay] = o.Retention[TierHour]
	if o.MaxMetrics <= 0 {
		o.MaxMetrics = 1024
	}
	if o.BlockCacheBytes == 0 {
		o.BlockCacheBytes = 256 << 20
	}
	if o.MergeFanIn < 2 {
		o.MergeFanIn = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = log.Printf
	}
}

// walDamagedDir holds copies of WAL segments in which replay found damage.
const walDamagedDir = "wal-damaged"

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
	// applyMu is held for reading while a durable batch is added to the
	// memtable; a rotation holds it for writing and adds the durable
	// batches not added yet, so a frozen memtable holds exactly the
	// batches of the segments it covers.
	applyMu sync.RWMutex
	// durable lists, for the commit goroutine, the batches written to the
	// WAL since the last rotation; the first durableKept were there at the
	// last pruning.
	durable     []*commit
	durableKept int
	mu          sync.RWMutex // guards mem, frozen, parts and trips
	mem         *memtable
	spare       *memtable // a flushed memtable, emptied, for the next rotation
	frozen      []*frozenTable
	parts       [numTiers][]*part
	trips       TripTable
	// flushed is, by tier, the last WAL segment whose deltas are in that
	// tier's parts (or were past its retention): it never goes back, even
	// when retention removes the part that held them.
	flushed [numTiers]uint64
	// watchRows is the rows told to Options.Watch at each tier's last
	// flush, reused by the next (under flushMu).
	watchRows [numTiers][]Row

	blocks  *blockCache   // decoded blocks of recent scans
	metrics *storeMetrics // timings and counts for /metrics

	nextPartID atomic.Uint64
	lastIngest atomic.Int64 // unix nanoseconds of the last batch applied
	lastErr    atomic.Pointer[string]
	walDamaged atomic.Int64 // damaged WAL records found by replay

	manifestMu   sync.Mutex // one write of parts/manifest.json at a time
	partsMissing int        // parts the manifest listed and Open did not find

	flushNow  chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeMu   sync.RWMutex // held for reading by Submit, for writing to mark closed
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the store in dir, replays its WAL and starts the
// background flushes and merges.
func Open(dir string, opts Options) (*Store, error) {
	opts.setDefaults()
	// Two memtables' pages: one filling while the other is flushed.
	pointPages.reserve(2*opts.MemtableBytes, opts.HugePages)
	for _, sub := range []string{"wal", "parts/minute", "parts/hour", "parts/day"} {
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
		mem:      newMemtable(),
		blocks:   newBlockCache(opts.BlockCacheBytes),
		metrics:  newStoreMetrics(),
		flushNow: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	if s.names, err = openMetricNames(filepath.Join(dir, "metrics.json"), opts.MaxMetrics); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.openParts(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.deriveDayTier(); err != nil {
		s.releaseParts()
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

// MetricID returns the id of a metric name, creating it if new (see
// Options.MaxMetrics).
func (s *Store) MetricID(name string) (uint32, error) {
	id, err := s.names.ID(name)
	return id, s.noteNameErr(err)
}

// MaxMetrics returns the cap on metric names (Options.MaxMetrics).
func (s *Store) MaxMetrics() int { return s.opts.MaxMetrics }

// MetricIDs returns the ids of metric names, creating the new ones all
// together or none.
func (s *Store) MetricIDs(names ...string) ([]uint32, error) {
	ids, err := s.names.IDs(names)
	return ids, s.noteNameErr(err)
}

// noteNameErr makes err, a metric name that could not be made durable
// (ErrUnavailable: a full or failing disk), the store's last error, which
// /readyz gives as the reason; it returns err.
func (s *Store) noteNameErr(err error) error {
	if errors.Is(err, ErrUnavailable) {
		msg := err.Error()
		s.lastErr.Store(&msg)
	}
	return err
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

// LastError returns the last storage failure, for health reports.
func (s *Store) LastError() string {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Stats describes the store for /metrics.
type Stats struct {
	Parts        [numTiers]int
	PartRows     [numTiers]uint64
	PartBytes    [numTiers]int64
	MemtableRows [numTiers]int
	PendingFlush int
	Metrics      int
	LastError    string
	Quarantined  int
	// WALDamagedRecords counts the damaged ranges replay skipped since
	// start, each at least one lost record.
	WALDamagedRecords int64
	// WALDamagedSegments counts the segments kept in wal-damaged/.
	WALDamagedSegments int
	// PartsMissing counts the parts the manifest listed and Open did not
	// find (removed by hand, lost with a disk).
	PartsMissing  int
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
	if ents, err := os.ReadDir(filepath.Join(s.dir, walDamagedDir)); err == nil {
		st.WALDamagedSegments = len(ents)
	}
	st.WALDamagedRecords = s.walDamaged.Load()
	st.PartsMissing = s.partsMissing
	st.BlockCache = s.blocks.bytes()
	st.DataDirectory = s.dir
	return st
}

// Close flushes the memtable into parts and stops the background work. If
// the flush fails, the WAL still holds everything and is replayed on Open.
// Later and concurrent calls wait for the first and return its error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	ferr := s.Flush()
	s.stopWork()
	err := s.wal.close()
	s.releaseParts()
	s.lock.Close()
	if ferr != nil {
		return ferr
	}
	return err
}

// stopWork marks the store closed once no Submit is under way, and stops
// the WAL writer, which answers the batches still queued with ErrClosed,
// and the background loop.
func (s *Store) stopWork() {
	s.closeMu.Lock()
	s.closed.Store(true)
	s.closeMu.Unlock()
	close(s.stop)
	s.wg.Wait()
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

// Span returns the first and last minute the parts of tier t hold (the
// memtable's rows are not counted); ok is false when it has no part.
func (s *Store) Span(t Tier) (first, last int64, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.parts[t] {
		if !ok || p.meta.MinMinute < first {
			first = p.meta.MinMinute
		}
		if !ok || p.meta.MaxMinute > last {
			last = p.meta.MaxMinute
		}
		ok = true
	}
	return first, last, ok
}
