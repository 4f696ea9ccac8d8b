package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// partIterator yields the rows of a part in key order, a block at a time.
type partIterator struct {
	p     *part
	br    blockReader
	block int
	row   int
}

func (it *partIterator) next() (Key, int64, bool, error) {
	for it.block < len(it.p.headers) {
		if it.row == 0 {
			if err := it.br.read(it.p, it.block, allColumns, nil, it.block); err != nil {
				return Key{}, 0, false, err
			}
		}
		if it.row < it.br.blk.len() {
			i := it.row
			it.row++
			return it.br.blk.key(i), it.br.blk.values[i], true, nil
		}
		it.block++
		it.row = 0
	}
	return Key{}, 0, false, nil
}

// sizeClass groups parts whose row counts are within a factor of four.
func sizeClass(rows uint64) int {
	return bits.Len64(rows) / 2
}

// pickMerge chooses parts of tier t to merge: every part of the smallest
// size class holding at least fanIn parts, at most max(fanIn,
// maxMergeParts) at once. Merged parts move up a class, so the number of
// parts stays logarithmic in the data.
func pickMerge(parts []*part, fanIn int) []*part {
	classes := map[int][]*part{}
	for _, p := range parts {
		c := sizeClass(p.meta.Rows)
		classes[c] = append(classes[c], p)
	}
	best := -1
	for c, ps := range classes {
		if len(ps) >= fanIn && (best < 0 || c < best) {
			best = c
		}
	}
	if best < 0 {
		return nil
	}
	ps := classes[best]
	return ps[:min(len(ps), max(fanIn, maxMergeParts))]
}

// maxMergeParts bounds the parts one merge reads, each through a block
// decoded in memory (about 400 KB): parts that came faster than merges
// (a burst of ingest) are merged sixteen at a time, not all at once.
const maxMergeParts = 16

// mergeTier merges parts of tier t until no size class is crowded.
func (s *Store) mergeTier(t Tier) error { return s.mergeTierThen(t, nil) }

// mergeTierThen is mergeTier calling between, when not nil, before each
// merge.
func (s *Store) mergeTierThen(t Tier, between func()) error {
	for {
		if between != nil {
			between()
		}
		s.mu.RLock()
		srcs := pickMerge(s.parts[t], s.opts.MergeFanIn)
		for _, p := range srcs {
			p.incRef()
		}
		s.mu.RUnlock()
		if len(srcs) == 0 {
			return nil
		}
		err := s.merge(t, srcs)
		var pe *PartError
		if errors.As(err, &pe) {
			for _, p := range srcs {
				if strings.HasPrefix(pe.Path, p.dir+string(filepath.Separator)) {
					s.setAside(t, p, err)
				}
			}
		}
		for _, p := range srcs {
			p.decRef()
		}
		if err != nil {
			return err
		}
	}
}

// merge sums srcs into one new part, installs it and removes them. The new
// part names its sources, so a crash after its rename and before their
// removal is finished on the next Open.
func (s *Store) merge(t Tier, srcs []*part) error {
	start := time.Now()
	// A small merge's part is merged again soon: its columns are left
	// uncompressed, like a flush's (zstd there cost a twentieth of ingest
	// CPU to save bytes that live a few minutes). Parts large enough to
	// stay are compressed.
	var enc *zstd.Encoder
	var rows uint64
	for _, p := range srcs {
		rows += p.meta.Rows
	}
	if rows >= mergeHardRows {
		enc = zstdMerge
	}
	err := s.mergeWith(t, srcs, enc, false)
	s.metrics.merged(t, len(srcs), start, err)
	return err
}

// mergeHardRows is the size from which a merge's part is compressed at
// zstd's middle level rather than its fastest: about four flushes of a
// busy city, a part that stays until the next size class fills.
const mergeHardRows = 4 << 20

// mergeWith is merge with the given encoder.
// mergeWith merges srcs into one part of tier t encoded by enc; compacted
// marks it as an idle compaction's.
func (s *Store) mergeWith(t Tier, srcs []*part, enc *zstd.Encoder, compacted bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	// A CPU profile tells the tiers' merges apart by this label.
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("merge", t.String())))
	defer pprof.SetGoroutineLabels(context.Background())
	var walSeq uint64
	names := make([]string, len(srcs))
	its := make([]*partIterator, len(srcs))
	for i, p := range srcs {
		walSeq = max(walSeq, p.meta.WALSeq)
		names[i] = p.name
		its[i] = &partIterator{p: p}
	}
	cutoff := s.RetentionCutoff(t)
	var expired int
	w, err := s.startPart(t, walSeq, names, enc)
	if err != nil {
		return fmt.Errorf("merging %d parts: %w", len(srcs), err)
	}
	w.meta.Compacted = compacted
	if expired, err = mergeRows(its, cutoff, s.names.IsMax, w.add, w.addRows); err != nil {
		w.abort()
		return fmt.Errorf("merging %d parts: %w", len(srcs), err)
	}
	merged, err := s.finishPart(w)
	if err != nil {
		return fmt.Errorf("merging %d parts: %w", len(srcs), err)
	}
	if expired > 0 {
		s.opts.Logf("storage: merge of %d %s parts dropped %d rows past the %s retention of %v", len(srcs), t, expired, t, s.opts.Retention[t])
	}
	s.failpoint(FailpointMergeRenamed)
	// A source a query set aside meanwhile is no longer the store's to
	// release or remove: setAside did both.
	var removed []*part
	s.mu.Lock()
	s.parts[t] = slices.DeleteFunc(s.parts[t], func(p *part) bool {
		if slices.Contains(srcs, p) {
			removed = append(removed, p)
			return true
		}
		return false
	})
	if merged != nil { // nil when every row was past retention
		s.parts[t] = append(s.parts[t], merged)
	}
	s.mu.Unlock()
	s.noteManifest()
	for _, p := range removed {
		if err := os.RemoveAll(p.dir); err != nil {
			return err
		}
		p.decRef()
	}
	return syncDir(s.tierDir(t))
}

// minBulkRows is the shortest run of a block's rows that a merge copies
// column by column rather than row by row.
const minBulkRows = 8

// mergeRows k-way merges the iterators, combining equal keys (a sum, or the
// maximum for max metrics) and dropping rows before cutoff, which it counts.
// Rows go to add one by one, or, when addRows is not nil, a run of one
// block's rows that combines with nothing to addRows at once.
func mergeRows(its []*partIterator, cutoff int64, isMax func(uint32) bool, add func(Key, int64) error, addRows func(b *block, i, j int) error) (expired int, err error) {
	type head struct {
		k  Key
		v  int64
		ok bool
	}
	heads := make([]head, len(its))
	for i, it := range its {
		k, v, ok, err := it.next()
		if err != nil {
			return 0, err
		}
		heads[i] = head{k, v, ok}
	}
	for {
		// The smallest head, and the next smallest key of another part:
		// the smallest head's rows below that key combine with nothing
		// and go out as they are, compared with that one key only.
		minI, second := -1, -1
		for i := range heads {
			switch {
			case !heads[i].ok:
			case minI < 0 || heads[i].k.Less(heads[minI].k):
				minI, second = i, minI
			case second < 0 || heads[i].k.Less(heads[second].k):
				second = i
			}
		}
		if minI < 0 {
			return expired, nil
		}
		h, it := &heads[minI], its[minI]
		for h.ok && (second < 0 || h.k.Less(heads[second].k)) {
			if addRows != nil {
				// h is row it.row-1 of the block it holds: copy its rows up
				// to the second key at once, when none is past retention.
				blk, i := &it.br.blk, it.row-1
				j := blk.len()
				if second >= 0 {
					j = runEnd(blk, i, heads[second].k)
				}
				if j-i >= minBulkRows && slices.Min(blk.minutes[i:j]) >= cutoff {
					if err := addRows(blk, i, j); err != nil {
						return expired, err
					}
					it.row = j
					if h.k, h.v, h.ok, err = it.next(); err != nil {
						return expired, err
					}
					continue
				}
			}
			if h.k.Minute < cutoff {
				expired++
			} else if err := add(h.k, h.v); err != nil {
				return expired, err
			}
			if h.k, h.v, h.ok, err = it.next(); err != nil {
				return expired, err
			}
		}
		if !h.ok || second < 0 || h.k != heads[second].k {
			continue
		}
		k := h.k
		keepMax := isMax(k.Metric)
		sum, first := int64(0), true
		for i := range heads {
			for heads[i].ok && heads[i].k == k {
				if first {
					sum, first = heads[i].v, false
				} else {
					sum = combine(keepMax, sum, heads[i].v)
				}
				nk, nv, ok, err := its[i].next()
				if err != nil {
					return expired, err
				}
				heads[i] = head{nk, nv, ok}
			}
		}
		if k.Minute < cutoff {
			expired++
			continue
		}
		if err := add(k, sum); err != nil {
			return expired, err
		}
	}
}

// runEnd returns the first row after row i of blk whose key is not below
// k, or blk.len(); the rows are in key order. It gallops (1, 2, 4, … rows
// on) before it bisects: a run that combines with nothing is most often a
// series' minutes of one part, a few dozen rows of a block of thousands.
func runEnd(blk *block, i int, k Key) int {
	n := blk.len()
	lo, hi := i+1, n
	for step := 1; ; step *= 2 {
		p := lo + step - 1
		if p >= n {
			break
		}
		if !blk.key(p).Less(k) {
			hi = p
			break
		}
		lo = p + 1
	}
	return lo + sort.Search(hi-lo, func(x int) bool { return !blk.key(lo + x).Less(k) })
}

// applyRetention removes the parts of each tier whose newest bucket is past
// the tier's retention.
func (s *Store) applyRetention() {
	for t := range numTiers {
		cutoff := s.RetentionCutoff(t)
		s.mu.Lock()
		var expired []*part
		s.parts[t] = slices.DeleteFunc(s.parts[t], func(p *part) bool {
			if p.meta.MaxMinute < cutoff {
				expired = append(expired, p)
				return true
			}
			return false
		})
		s.mu.Unlock()
		if len(expired) > 0 {
			s.noteManifest()
		}
		for _, p := range expired {
			s.opts.Logf("storage: part %s is past the %s retention of %v; removed", p.dir, t, s.opts.Retention[t])
			if err := os.RemoveAll(p.dir); err != nil {
				s.opts.Logf("storage: cannot remove %s: %v", p.dir, err)
			}
			p.decRef()
		}
	}
}

// While ingest runs, merges keep parts of like sizes few and compress at a
// middle level. Once no batch has come for idleAfter, the store compacts:
// each tier's smallest parts, up to compactRows rows in all, become one
// part compressed at zstd's strongest level. Its encoder is made for the
// compaction and dropped after, so its 34 MiB of match tables are held only
// while the store is idle.
const (
	idleAfter   = 10 * time.Second
	compactRows = 64 << 20
)

// idle reports whether no batch has been applied for idleAfter.
func (s *Store) idle() bool {
	return s.opts.Now().Sub(time.Unix(0, s.lastIngest.Load())) >= idleAfter
}

// pickCompaction chooses the parts of a compaction: the smallest, while
// their rows add up to at most compactRows; one alone only if no
// compaction wrote it (the ordinary merges may have brought a tier down
// to one part at the middle level before ingest went idle, and how many
// parts a tier holds then is a matter of timing); nil for none.
func pickCompaction(parts []*part) []*part {
	ps := slices.Clone(parts)
	slices.SortFunc(ps, func(a, b *part) int { return cmp.Compare(a.meta.Rows, b.meta.Rows) })
	var rows uint64
	n := 0
	for ; n < len(ps) && rows+ps[n].meta.Rows <= compactRows; n++ {
		rows += ps[n].meta.Rows
	}
	if n == 0 || n == 1 && ps[0].meta.Compacted {
		return nil
	}
	return ps[:n]
}

// compactTier merges the parts pickCompaction chooses into one.
func (s *Store) compactTier(t Tier) error {
	s.mu.RLock()
	srcs := pickCompaction(s.parts[t])
	for _, p := range srcs {
		p.incRef()
	}
	s.mu.RUnlock()
	if len(srcs) == 0 {
		return nil
	}
	defer func() {
		for _, p := range srcs {
			p.decRef()
		}
	}()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
	if err != nil {
		return err
	}
	defer enc.Close()
	start := time.Now()
	err = s.mergeWith(t, srcs, enc, true)
	s.metrics.merged(t, len(srcs), start, err)
	return err
}
