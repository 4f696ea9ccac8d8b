package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// manifestVersion is written to parts/manifest.json.
const manifestVersion = 1

// manifest is parts/manifest.json: the parts the store serves. It is
// rewritten after a part is installed and before a part's directory is
// removed or set aside, so a part it lists and the disk lacks was taken
// away by other hands (or a backup restored without it), which Open
// reports instead of serving smaller totals without a word.
type manifest struct {
	Version int             `json:"version"`
	Parts   []manifestEntry `json:"parts"`
}

// manifestEntry describes one part, enough to say what its loss costs.
type manifestEntry struct {
	Tier      string `json:"tier"`
	ID        string `json:"id"`
	Rows      uint64 `json:"rows"`
	MinMinute int64  `json:"min_minute"`
	MaxMinute int64  `json:"max_minute"`
}

func (s *Store) manifestPath() string {
	return filepath.Join(s.dir, "parts", "manifest.json")
}

// writeManifest records the parts the store serves now. Writers serialise
// on manifestMu and each writes the state it finds, so the last write
// holds the latest state.
func (s *Store) writeManifest() error {
	s.manifestMu.Lock()
	defer s.manifestMu.Unlock()
	m := manifest{Version: manifestVersion, Parts: []manifestEntry{}}
	s.mu.RLock()
	for t := range numTiers {
		for _, p := range s.parts[t] {
			m.Parts = append(m.Parts, manifestEntry{Tier: t.String(), ID: p.name, Rows: p.meta.Rows, MinMinute: p.meta.MinMinute, MaxMinute: p.meta.MaxMinute})
		}
	}
	s.mu.RUnlock()
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal the part manifest: %v", err))
	}
	if err := writeFileAtomic(s.manifestPath(), data); err != nil {
		return fmt.Errorf("cannot write the part manifest: %w", err)
	}
	return nil
}

// noteManifest writes the manifest after a change to the parts, reporting a
// failure: the change stands, and the next start may report parts as
// missing that were removed on purpose.
func (s *Store) noteManifest() {
	if err := s.writeManifest(); err != nil {
		msg := err.Error()
		s.lastErr.Store(&msg)
		s.opts.Logf("storage: %v", err)
	}
}

// checkManifest compares the manifest of the last run with the parts Open
// found, before it is rewritten, and reports every part that is missing:
// neither on disk, nor merged into a part that is, nor past its tier's
// retention, nor set aside as damaged while opening.
func (s *Store) checkManifest(setAside map[string]bool) error {
	data, err := os.ReadFile(s.manifestPath())
	if os.IsNotExist(err) {
		return nil // a store from before manifests, or a new one
	}
	if err != nil {
		return err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		s.opts.Logf("storage: %s is unreadable (%v); it is rewritten from the parts found", s.manifestPath(), err)
		return nil
	}
	present := map[string]bool{}
	for t := range numTiers {
		for _, p := range s.parts[t] {
			present[t.String()+"/"+p.name] = true
			for _, r := range p.meta.Replaces {
				present[t.String()+"/"+r] = true
			}
		}
	}
	for _, e := range m.Parts {
		key := e.Tier + "/" + e.ID
		if present[key] || setAside[key] {
			continue
		}
		tier, ok := tierNamed(e.Tier)
		if !ok {
			continue // of a later version's tier, which this one neither reads nor lost
		}
		if e.MaxMinute < s.RetentionCutoff(tier) {
			continue
		}
		msg := fmt.Sprintf("part %s listed in %s is missing: its %d rows of minutes %s to %s are gone from the %s tier; restore the directory and restart, or accept the loss",
			filepath.Join(s.tierDir(tier), e.ID), s.manifestPath(), e.Rows, minuteText(e.MinMinute), minuteText(e.MaxMinute), e.Tier)
		s.opts.Logf("storage: %s", msg)
		s.lastErr.Store(&msg)
		s.partsMissing++
	}
	return nil
}

func minuteText(m int64) string {
	return time.Unix(m*60, 0).UTC().Format("2006-01-02T15:04Z")
}
