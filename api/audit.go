package api

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Audit is an append-only NDJSON log of what admins do, registry changes
// and configuration reloads. Each record is one write(2) on a file opened
// with O_APPEND, so records from concurrent requests never interleave.
type Audit struct {
	mu sync.Mutex
	f  *os.File
}

// OpenAudit opens (or creates, mode 0600) the audit log at path.
func OpenAudit(path string) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Audit{f: f}, nil
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time    time.Time      `json:"time"`
	Who     string         `json:"who"`
	What    string         `json:"what"`
	Details map[string]any `json:"details,omitempty"`
}

// Record appends one record. A nil Audit records nothing. Details must not
// hold request bodies or query strings: they may carry card ids or tokens.
func (a *Audit) Record(who, what string, details map[string]any) error {
	if a == nil {
		return nil
	}
	line, err := json.Marshal(auditRecord{Time: time.Now().UTC(), Who: who, What: what, Details: details})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(line); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return a.f.Sync()
}

// Close closes the audit log.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	return a.f.Close()
}
