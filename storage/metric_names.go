package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/flowd/flowd/vocab"
)

// metricNames is the durable dictionary of metric names to the small ids
// that keys carry. A new name is written to disk before any delta using its
// id can reach the WAL, so replay never meets an unknown id.
type metricNames struct {
	path string

	mu    sync.RWMutex
	ids   map[string]uint32
	names []string // index is the id
	isMax []bool   // index is the id
}

func openMetricNames(path string) (*metricNames, error) {
	m := &metricNames{path: path, ids: map[string]uint32{}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &m.names); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	for i, n := range m.names {
		m.ids[n] = uint32(i)
		m.isMax = append(m.isMax, vocab.KindOf(n) == vocab.Sketch)
	}
	return m, nil
}

// ID returns the id of name, creating and persisting it if needed.
func (m *metricNames) ID(name string) (uint32, error) {
	m.mu.RLock()
	id, ok := m.ids[name]
	m.mu.RUnlock()
	if ok {
		return id, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.ids[name]; ok {
		return id, nil
	}
	names := append(m.names[:len(m.names):len(m.names)], name)
	data, err := json.Marshal(names)
	if err != nil {
		return 0, err
	}
	if err := writeFileAtomic(m.path, data); err != nil {
		return 0, fmt.Errorf("cannot persist metric %q: %w", name, err)
	}
	id = uint32(len(m.names))
	m.names = names
	m.ids[name] = id
	m.isMax = append(m.isMax, vocab.KindOf(name) == vocab.Sketch)
	return id, nil
}

// IsMax reports whether metric id keeps maxima (a sketch; see vocab.Kind).
func (m *metricNames) IsMax(id uint32) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int(id) < len(m.isMax) && m.isMax[id]
}

// Lookup returns the id of an existing metric.
func (m *metricNames) Lookup(name string) (uint32, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.ids[name]
	return id, ok
}

// Names returns all metric names, sorted.
func (m *metricNames) Names() []string {
	m.mu.RLock()
	out := append([]string(nil), m.names...)
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}
