package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/flowd/flowd/vocab"
)

// metricNames is the durable dictionary of metric names to the small ids
// that keys carry. A new name is written to disk before any delta using its
// id can reach the WAL, so replay never meets an unknown id.
type metricNames struct {
	path string
	max  int // names beyond which only fixed ones are created

	mu     sync.RWMutex
	ids    map[string]uint32
	names  []string // index is the id
	isMax  []bool   // index is the id
	spread []bool   // index is the id
}

// ErrTooManyMetrics is returned for a new metric name past Options.MaxMetrics.
var ErrTooManyMetrics = errors.New("too many metrics")

func openMetricNames(path string, max int) (*metricNames, error) {
	m := &metricNames{path: path, max: max, ids: map[string]uint32{}}
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
		m.spread = append(m.spread, vocab.Spreads(n))
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
	ids, err := m.IDs([]string{name})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// IDs returns the ids of names, creating the new ones in one write, all or
// none: past the cap on metrics, new names that are not fixed
// (vocab.IsFixed) are refused with ErrTooManyMetrics.
func (m *metricNames) IDs(names []string) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]uint32, len(names))
	next := m.names[:len(m.names):len(m.names)]
	var added []string
	for i, name := range names {
		if id, ok := m.ids[name]; ok {
			ids[i] = id
			continue
		}
		if j := slices.Index(added, name); j >= 0 {
			ids[i] = uint32(len(m.names) + j)
			continue
		}
		if !vocab.IsFixed(name) && len(next) >= m.max {
			return nil, fmt.Errorf("%w: metric %q would be number %d; this flowd keeps at most %d", ErrTooManyMetrics, name, len(next)+1, m.max)
		}
		ids[i] = uint32(len(next))
		next = append(next, name)
		added = append(added, name)
	}
	if len(added) == 0 {
		return ids, nil
	}
	data, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(m.path, data); err != nil {
		// A full or failing disk: unavailable, as a WAL write that fails
		// is, so that the request is answered 503 and sent again.
		return nil, fmt.Errorf("%w: cannot persist metrics %q: %w", ErrUnavailable, added, err)
	}
	m.names = next
	for _, name := range added {
		m.ids[name] = uint32(len(m.isMax))
		m.isMax = append(m.isMax, vocab.KindOf(name) == vocab.Sketch)
		m.spread = append(m.spread, vocab.Spreads(name))
	}
	return ids, nil
}

// IsMax reports whether metric id keeps maxima (a sketch; see vocab.Kind).
func (m *metricNames) IsMax(id uint32) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int(id) < len(m.isMax) && m.isMax[id]
}

// IsSpread reports whether metric id holds interval readings, whose rows
// with a sub-key of 2 or more are spread over that many minutes (see
// vocab.Spreads).
func (m *metricNames) IsSpread(id uint32) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int(id) < len(m.spread) && m.spread[id]
}

// Lookup returns the id of an existing metric.
func (m *metricNames) Lookup(name string) (uint32, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.ids[name]
	return id, ok
}

// Name returns the name of metric id.
func (m *metricNames) Name(id uint32) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if int(id) >= len(m.names) {
		panic(fmt.Sprintf("BUG: no metric with id %d", id))
	}
	return m.names[id]
}

// Names returns all metric names, sorted.
func (m *metricNames) Names() []string {
	m.mu.RLock()
	out := append([]string(nil), m.names...)
	m.mu.RUnlock()
	sort.Strings(out)
	return out
}
