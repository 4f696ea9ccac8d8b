package remote

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Outbox is the remote tier's durable state under the data directory:
// the journals of rows not yet cut, the late buckets flushes reported,
// the segments waiting to be shipped and the cut. It is the store's
// storage.FlushWatch.
type Outbox struct {
	dir string

	// mu is held by Flushed and by a cut, so that no flush splits its rows
	// at a cut that moves meanwhile.
	mu    sync.Mutex
	cut   atomic.Int64  // the first minute not yet cut
	first int64         // the cut the outbox began at
	next  atomic.Uint64 // the number of the next late file or segment
	// sketches says the tiers of sketches shipped (guarded by mu).
	sketches Sketches
	// final is, by tier, the last WAL segment whose journals no flush
	// will replace (guarded by mu).
	final [2]uint64

	segmentAdded chan struct{} // wakes the sender
}

// The outbox's folders.
const (
	journalDir = "journal"
	lateDir    = "late"
	segmentDir = "segments"
	shippedDir = "shipped"
	stateFile  = "state.json"
)

// outboxState is state.json.
type outboxState struct {
	// Cut is the first minute not yet cut: every bucket before it was
	// written to a segment (and later changes to it go as late buckets).
	Cut int64 `json:"cut"`
	// First is the cut the outbox began at: buckets before it were never
	// shipped, unless they changed later.
	First int64 `json:"first"`
}

// OpenOutbox opens or creates the outbox in dir. A new outbox starts its
// cut at firstCut: buckets before it are never shipped.
func OpenOutbox(dir string, firstCut int64) (*Outbox, error) {
	for _, sub := range []string{journalDir, lateDir, segmentDir, shippedDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	o := &Outbox{dir: dir, segmentAdded: make(chan struct{}, 1)}
	st := outboxState{Cut: firstCut, First: firstCut}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
		}
	case os.IsNotExist(err):
		o.first = firstCut
		if err := o.saveCut(firstCut); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	// A crash between a segment and state.json: the segment's name holds
	// the cut it made.
	for _, s := range o.segments() {
		st.Cut = max(st.Cut, s.cut)
		o.next.Store(max(o.next.Load(), s.n+1))
	}
	for _, l := range o.lateFiles() {
		o.next.Store(max(o.next.Load(), l.n+1))
	}
	o.cut.Store(st.Cut)
	o.first = st.First
	return o, nil
}

// First returns the cut the outbox began at: VictoriaMetrics holds no
// bucket of this flowd's before it, but those that changed later.
func (o *Outbox) First() int64 { return o.first }

// Cut returns the first minute not yet cut.
func (o *Outbox) Cut() int64 { return o.cut.Load() }

func (o *Outbox) saveCut(cut int64) error {
	data, _ := json.Marshal(outboxState{Cut: cut, First: o.first})
	if err := writeFileAtomic(filepath.Join(o.dir, stateFile), data); err != nil {
		return err
	}
	return syncDir(o.dir)
}

// Sketches says which tiers of the distinct-card sketches' registers are
// shipped. A register is a series of its own in VictoriaMetrics (up to
// 16,384 a cell), by far the most series a city makes there; hourly only,
// a day makes 24 samples of each instead of 1,440.
type Sketches int

// The choices of -remote-sketches.
const (
	SketchesMinute Sketches = iota // both tiers
	SketchesHour                   // the hourly rollups only
	SketchesOff                    // none
)

// ParseSketches reads -remote-sketches: minute, hour or off.
func ParseSketches(v string) (Sketches, error) {
	switch v {
	case "minute":
		return SketchesMinute, nil
	case "hour":
		return SketchesHour, nil
	case "off":
		return SketchesOff, nil
	}
	return 0, fmt.Errorf("-remote-sketches %q: want minute, hour or off", v)
}

// ShipSketches sets which tiers of sketches Flushed keeps; set it before
// the store flushes.
func (o *Outbox) ShipSketches(s Sketches) {
	o.mu.Lock()
	o.sketches = s
	o.mu.Unlock()
}

// Flushed keeps the rows of a flush of tier t: those of buckets not yet
// cut in a journal (replacing the journal of an earlier attempt at the
// same WAL segments), and the buckets already cut, which the rows change,
// as late buckets. A minute row whose span runs across the cut is both.
func (o *Outbox) Flushed(t storage.Tier, afterSeq, seq uint64, rows []storage.Row) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cut := o.cut.Load()
	// The store's parts of tier t hold the WAL segments up to afterSeq:
	// the journals up to it are never replaced, and may be folded.
	o.final[t] = max(o.final[t], afterSeq)
	var pending []storage.Row
	var late []lateBucket
	skipSketches := o.sketches == SketchesOff || o.sketches == SketchesHour && t == storage.TierMinute
	for _, r := range rows {
		if skipSketches && vocab.KindOf(r.Metric) == vocab.Sketch {
			continue
		}
		end := r.Minute + r.Span
		if t == storage.TierHour {
			if end <= cut {
				late = append(late, lateBucket{Tier: t, Metric: r.Metric, Cell: r.Cell, From: r.Minute, To: end})
			} else {
				pending = append(pending, r)
			}
			continue
		}
		if r.Minute < cut {
			late = append(late, lateBucket{Tier: t, Metric: r.Metric, Cell: r.Cell, From: r.Minute, To: min(end, cut)})
		}
		if end > cut {
			pending = append(pending, r)
		}
	}
	jdir := filepath.Join(o.dir, journalDir)
	name := journalName(t, afterSeq, seq)
	if len(pending) > 0 {
		if err := writeFileAtomic(filepath.Join(jdir, name), encodeJournal(nil, pending)); err != nil {
			return err
		}
	}
	// Journals of earlier attempts at these WAL segments: their rows are
	// all in this flush again.
	ents, err := os.ReadDir(jdir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		jt, a, _, folded, ok := parseJournalName(e.Name())
		if ok && !folded && jt == t && a >= afterSeq && e.Name() != name {
			if err := os.Remove(filepath.Join(jdir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syncDir(jdir); err != nil {
		return err
	}
	if len(late) == 0 {
		return nil
	}
	return o.writeLate(dedupLate(late))
}

// lateBucket is a bucket range that changed after it was cut.
type lateBucket struct {
	Tier   storage.Tier `json:"tier"`
	Metric string       `json:"metric"`
	Cell   uint64       `json:"cell"`
	From   int64        `json:"from"`
	To     int64        `json:"to"`
}

// dedupLate leaves one entry per bucket range (a sketch's registers or a
// trip's destinations make many rows of one).
func dedupLate(l []lateBucket) []lateBucket {
	seen := make(map[lateBucket]bool, len(l))
	out := l[:0]
	for _, b := range l {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}

func (o *Outbox) writeLate(l []lateBucket) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	from := l[0].From
	for _, b := range l {
		from = min(from, b.From)
	}
	dir := filepath.Join(o.dir, lateDir)
	if err := writeFileAtomic(filepath.Join(dir, fmt.Sprintf("%016x-%d.json", o.next.Add(1)-1, from)), data); err != nil {
		return err
	}
	return syncDir(dir)
}

// lateFile is a file of late buckets, numbered in the order written,
// the earliest of which begins at minute from.
type lateFile struct {
	n    uint64
	from int64
	path string
}

func (o *Outbox) lateFiles() []lateFile {
	dir := filepath.Join(o.dir, lateDir)
	ents, _ := os.ReadDir(dir)
	var out []lateFile
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".json")
		num, from, ok2 := strings.Cut(base, "-")
		n, err1 := strconv.ParseUint(num, 16, 64)
		m, err2 := strconv.ParseInt(from, 10, 64)
		if ok && ok2 && err1 == nil && err2 == nil {
			out = append(out, lateFile{n, m, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(out, func(a, b lateFile) int { return compareUint(a.n, b.n) })
	return out
}

// segment is a file of final values ready to POST: number n, holding
// buckets from minute from on, written when the cut reached cut.
type segment struct {
	n         uint64
	from, cut int64
	path      string
}

func segmentName(n uint64, from, cut int64) string {
	return fmt.Sprintf("%016x-%d-%d.json.gz", n, from, cut)
}

// segments lists the segments waiting, oldest first.
func (o *Outbox) segments() []segment {
	dir := filepath.Join(o.dir, segmentDir)
	ents, _ := os.ReadDir(dir)
	var out []segment
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".json.gz")
		f := strings.Split(base, "-")
		if !ok || len(f) != 3 {
			continue
		}
		n, err1 := strconv.ParseUint(f[0], 16, 64)
		from, err2 := strconv.ParseInt(f[1], 10, 64)
		cut, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			out = append(out, segment{n, from, cut, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(out, func(a, b segment) int { return compareUint(a.n, b.n) })
	return out
}

// addSegment writes an encoded segment durably and wakes the sender.
func (o *Outbox) addSegment(body []byte, from, cut int64) error {
	dir := filepath.Join(o.dir, segmentDir)
	if err := writeFileAtomic(filepath.Join(dir, segmentName(o.next.Add(1)-1, from, cut)), body); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	select {
	case o.segmentAdded <- struct{}{}:
	default:
	}
	return nil
}

// markShipped moves a segment VictoriaMetrics took to shipped/, stamped
// with the time, where it is kept for a while (see sender).
func (o *Outbox) markShipped(s segment) error {
	dst := filepath.Join(o.dir, shippedDir, filepath.Base(s.path))
	if err := os.Rename(s.path, dst); err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(dst, now, now); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// pruneShipped removes the shipped segments kept since before t.
func (o *Outbox) pruneShipped(t time.Time) {
	dir := filepath.Join(o.dir, shippedDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.ModTime().Before(t) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// reshipKept moves the kept shipped segments back to be shipped again,
// in their order, before the segments waiting.
func (o *Outbox) reshipKept() (int, error) {
	dir := filepath.Join(o.dir, shippedDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(o.dir, segmentDir, e.Name())); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := syncDir(dir); err != nil {
		return n, err
	}
	return n, syncDir(filepath.Join(o.dir, segmentDir))
}

// Size returns the files and bytes the outbox holds: segments waiting to
// be shipped, and journals and late buckets waiting to be cut.
func (o *Outbox) Size() (segments int, segmentBytes, otherBytes int64) {
	segments, segmentBytes = dirBytes(filepath.Join(o.dir, segmentDir))
	_, j := dirBytes(filepath.Join(o.dir, journalDir))
	_, l := dirBytes(filepath.Join(o.dir, lateDir))
	return segments, segmentBytes, j + l
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
