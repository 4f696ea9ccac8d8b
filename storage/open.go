package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// openParts opens every part, finishes interrupted merges, sets damaged
// parts aside and reports the parts the manifest lists and the disk lacks.
func (s *Store) openParts() error {
	var maxID uint64
	setAside := map[string]bool{}
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
			p, err := openPart(path, true)
			if err != nil {
				s.quarantine(t, path, err)
				setAside[t.String()+"/"+name] = true
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
			s.flushed[t] = max(s.flushed[t], p.meta.WALSeq)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	s.nextPartID.Store(maxID)
	if err := s.checkManifest(setAside); err != nil {
		return err
	}
	s.noteManifest()
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
	walDir := filepath.Join(s.dir, "wal")
	err := replayWAL(walDir, func(seq uint64, payload []byte) error {
		records++
		rec.reset()
		err := decodeRecord(payload, &rec, s.names.IsMax, s.names.IsSpread, func(op TripOp) {
			applyTripOps(&s.trips, []TripOp{op})
		}, func() {
			s.trips = TripTable{}
		})
		if err != nil {
			return err
		}
		var need []Tier
		for t := range numTiers {
			if seq > covered[t] {
				need = append(need, t)
			}
		}
		if len(need) == int(numTiers) {
			s.mem.addTable(&rec, numTiers, &scratch)
			return nil
		}
		// After a crash between the parts of one flush: the record goes to
		// each tier that lacks it, apart.
		for _, t := range need {
			s.mem.addTable(&rec, t, &scratch)
		}
		return nil
	}, s.reportSegment)
	if err != nil {
		return err
	}
	if records > 0 {
		s.opts.Logf("storage: replayed %d WAL records (%d minute rows, %d open trips)", records, s.mem.rowCount(TierMinute), s.trips.Len())
	}
	return nil
}

// reportSegment logs what replay found in a segment besides intact records.
// A damaged segment is copied to wal-damaged/ before anything can remove
// it, and counted.
func (s *Store) reportSegment(seq uint64, path string, sc segmentScan) {
	switch {
	case sc.torn > 0 && sc.version == 3:
		// A recycled segment's old contents follow its last write: where
		// the cut write ends cannot be told from them.
		s.opts.Logf("storage: WAL %s: from offset %d, a write cut short by a crash (never acknowledged), then room or what the recycled file held before; ignored", path, sc.tornAt)
	case sc.torn > 0:
		s.opts.Logf("storage: WAL %s: %d bytes from offset %d are a write cut short by a crash (never acknowledged); ignored", path, sc.torn, sc.tornAt)
	}
	if len(sc.damaged) == 0 {
		return
	}
	kept, err := keepSegment(path, filepath.Join(s.dir, walDamagedDir))
	if err != nil {
		kept = fmt.Sprintf("nowhere (cannot copy it: %v)", err)
	}
	for _, d := range sc.damaged {
		msg := fmt.Sprintf("WAL %s: %d damaged bytes at offset %d skipped, at least one record lost; segment kept in %s", path, d.length, d.offset, kept)
		if sc.version == 1 {
			msg = fmt.Sprintf("WAL %s: damaged record at offset %d; the %d bytes to the end of this format 1 segment are skipped; segment kept in %s", path, d.offset, d.length, kept)
		}
		s.opts.Logf("storage: %s", msg)
		s.lastErr.Store(&msg)
	}
	s.walDamaged.Add(int64(len(sc.damaged)))
}
