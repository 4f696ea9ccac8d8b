package remote

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Scanner reads buckets back from the local store (storage.Store), for the
// new totals of late buckets.
type Scanner interface {
	ScanSub(t storage.Tier, metric string, ranges []vocab.CellRange, from, to int64, fn func(cell, sub uint64, minute, value int64)) error
}

// cutter turns finished buckets into segments: from the journals as the
// cut moves on, and from the store for late buckets.
type cutter struct {
	o         *Outbox
	store     Scanner
	lab       *labeler
	lateness  int64 // minutes
	now       func() time.Time
	logf      func(format string, args ...any)
	journals  map[string]*journal // decoded, by file name
	cuts      func(samples int)   // counts what each cut wrote
	failpoint func(name string)
}

// step cuts every finished minute, an hour at most a segment, then ships
// the late buckets again.
func (c *cutter) step() error {
	target := c.now().Unix()/60 - c.lateness
	for {
		done, err := c.cutOnce(target)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	if err := c.foldAll(); err != nil {
		return err
	}
	return c.cutLate()
}

// cutOnce cuts the minutes from the cut up to target, at most to the end
// of the cut's hour, and the hour it ends; done is true when the cut
// reached target.
func (c *cutter) cutOnce(target int64) (done bool, err error) {
	o := c.o
	o.mu.Lock()
	defer o.mu.Unlock()
	from := o.cut.Load()
	if target <= from {
		return true, nil
	}
	to := min(target, storage.TierHour.Truncate(from)+60)
	if err := c.loadJournals(); err != nil {
		return false, err
	}
	s := samples{}
	for _, j := range c.journals {
		for _, r := range j.rows {
			end := r.Minute + r.Span
			if j.tier == storage.TierHour {
				if end > from && end <= to {
					s.add(sampleKey{storage.TierHour, r.Metric, r.Cell, r.Sub, r.Minute}, r.Value)
				}
				continue
			}
			for x := max(r.Minute, from); x < min(end, to); x++ {
				v := r.Value
				if r.Span > 1 {
					if v = storage.SpreadShare(r.Value, r.Span, x-r.Minute); v == 0 {
						continue // a minute a run spread nothing over is no bucket
					}
				}
				s.add(sampleKey{storage.TierMinute, r.Metric, r.Cell, r.Sub, x}, v)
			}
		}
	}
	if len(s) > 0 {
		body, err := c.lab.encodeSegment(s)
		if err != nil {
			return false, err
		}
		if err := o.addSegment(body, from, to); err != nil {
			return false, err
		}
		c.failpoint(FailpointCut)
	}
	// The cut is durable in the segment's name; state.json says it when
	// no segment was written.
	if err := o.saveCut(to); err != nil {
		return false, err
	}
	o.cut.Store(to)
	c.cuts(len(s))
	return to == target, c.dropJournals(to)
}

// loadJournals decodes the journals not read yet and forgets the removed
// ones. A damaged journal is set aside, saying which buckets may be short
// in VictoriaMetrics.
func (c *cutter) loadJournals() error {
	dir := filepath.Join(c.o.dir, journalDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, e := range ents {
		if _, _, _, _, ok := parseJournalName(e.Name()); !ok {
			continue
		}
		present[e.Name()] = true
		if c.journals[e.Name()] != nil {
			continue
		}
		j, err := readJournal(filepath.Join(dir, e.Name()))
		if errors.Is(err, errJournal) {
			c.logf("remote: %v; set aside as %s.damaged: the buckets of its flush are shipped without its rows", err, e.Name())
			os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, e.Name()+".damaged"))
			continue
		}
		if err != nil {
			return err
		}
		c.journals[e.Name()] = j
	}
	for name := range c.journals {
		if !present[name] {
			delete(c.journals, name)
		}
	}
	return c.dropFolded()
}

// dropJournals removes the journals all of whose rows are before cut.
func (c *cutter) dropJournals(cut int64) error {
	dir := filepath.Join(c.o.dir, journalDir)
	removed := false
	for name, j := range c.journals {
		if j.end <= cut {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				return err
			}
			delete(c.journals, name)
			removed = true
		}
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// cutLate writes a segment of the new totals of each file of late
// buckets, read from the store, and removes the file.
func (c *cutter) cutLate() error {
	for _, lf := range c.o.lateFiles() {
		data, err := os.ReadFile(lf.path)
		if err != nil {
			return err
		}
		var buckets []lateBucket
		if err := json.Unmarshal(data, &buckets); err != nil {
			return fmt.Errorf("%s: %w", lf.path, err)
		}
		s := samples{}
		from := c.o.Cut()
		for _, b := range coalesce(buckets) {
			from = min(from, b.From)
			err := c.store.ScanSub(b.Tier, b.Metric, []vocab.CellRange{{Lo: b.Cell, Hi: b.Cell}}, b.From, b.To, func(cell, sub uint64, minute, v int64) {
				if vocab.Spreads(b.Metric) {
					sub = 0 // a run's length, in the hour tier
				}
				s.add(sampleKey{b.Tier, b.Metric, cell, sub, minute}, v)
			})
			if err != nil {
				return err
			}
		}
		if len(s) > 0 {
			body, err := c.lab.encodeSegment(s)
			if err != nil {
				return err
			}
			if err := c.o.addSegment(body, from, c.o.Cut()); err != nil {
				return err
			}
		}
		c.cuts(len(s))
		if err := os.Remove(lf.path); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(lf.path)); err != nil {
			return err
		}
	}
	return nil
}

// coalesce joins the overlapping and adjacent ranges of each series'
// late buckets, so that a scan reads each bucket's total once: two runs
// late in one cell share their minutes.
func coalesce(l []lateBucket) []lateBucket {
	slices.SortFunc(l, func(a, b lateBucket) int {
		if c := cmp.Compare(a.Tier, b.Tier); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Cell, b.Cell); c != 0 {
			return c
		}
		return cmp.Compare(a.From, b.From)
	})
	var out []lateBucket
	for _, b := range l {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.Tier == b.Tier && last.Metric == b.Metric && last.Cell == b.Cell && b.From <= last.To {
				last.To = max(last.To, b.To)
				continue
			}
		}
		out = append(out, b)
	}
	return out
}
