package remote

import (
	"os"
	"path/filepath"

	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// Folding keeps the journals few and small. A journal holds one flush's
// rows, and an hour row waits in it until its hour is cut: an hour of
// flushes, each with a row for every series it touched. Once no flush can
// replace a journal any more (the store's parts hold its WAL segments),
// the cutter sums it with the others of its tier into one folded journal,
// named by the last WAL segment it holds: a row a bucket, whatever the
// number of flushes. A crash after the folded journal is written and
// before the journals it holds are removed leaves them beside it; they
// are recognised by their segment and removed, not counted again.

// foldAll folds the journals of each tier.
func (c *cutter) foldAll() error {
	c.o.mu.Lock()
	defer c.o.mu.Unlock()
	if err := c.loadJournals(); err != nil {
		return err
	}
	for _, t := range []storage.Tier{storage.TierMinute, storage.TierHour} {
		if err := c.fold(t); err != nil {
			return err
		}
	}
	return nil
}

// fold sums the journals of tier t that no flush will replace, and the
// folded journal of t, into a new folded journal, leaving out the rows
// already cut. o.mu must be held.
func (c *cutter) fold(t storage.Tier) error {
	var old *journal
	var final []*journal
	for _, j := range c.journals {
		switch {
		case j.tier != t:
		case j.folded:
			old = j
		case j.seq <= c.o.final[t]:
			final = append(final, j)
		}
	}
	if len(final) == 0 || len(final) == 1 && old == nil {
		return nil
	}
	type rowKey struct {
		metric      string
		cell, sub   uint64
		minute, end int64
	}
	cut := c.o.Cut()
	sums := map[rowKey]int64{}
	var seq uint64
	for _, j := range append(final, old) {
		if j == nil {
			continue
		}
		seq = max(seq, j.seq)
		for _, r := range j.rows {
			if r.Minute+r.Span <= cut {
				continue
			}
			k := rowKey{r.Metric, r.Cell, r.Sub, r.Minute, r.Minute + r.Span}
			v, ok := sums[k]
			switch {
			case !ok:
				v = r.Value
			case vocab.KindOf(r.Metric) == vocab.Sketch:
				v = max(v, r.Value)
			default:
				v = storage.SatAdd(v, r.Value)
			}
			sums[k] = v
		}
	}
	f := &journal{name: foldedName(t, seq), tier: t, seq: seq, folded: true, rows: make([]storage.Row, 0, len(sums))}
	for k, v := range sums {
		f.rows = append(f.rows, storage.Row{Metric: k.metric, Cell: k.cell, Sub: k.sub, Minute: k.minute, Span: k.end - k.minute, Value: v})
		f.end = max(f.end, k.end)
	}
	dir := filepath.Join(c.o.dir, journalDir)
	if err := writeFileAtomic(filepath.Join(dir, f.name), encodeJournal(nil, f.rows)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	c.journals[f.name] = f
	return c.dropFolded()
}

// dropFolded removes the journals a folded journal holds: those of its
// tier up to its WAL segment, and older folded journals.
func (c *cutter) dropFolded() error {
	var latest [2]*journal
	for _, j := range c.journals {
		if j.folded && (latest[j.tier] == nil || j.seq > latest[j.tier].seq) {
			latest[j.tier] = j
		}
	}
	dir := filepath.Join(c.o.dir, journalDir)
	removed := false
	for name, j := range c.journals {
		f := latest[j.tier]
		if f == nil || j == f || j.seq > f.seq {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
		delete(c.journals, name)
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}
