package geo

import (
	"container/list"
	"math"
	"strconv"
	"sync"

	"github.com/uber/h3-go/v4"
)

// CorridorCache keeps recently built corridors, least recently used out
// first: building one costs an H3 call per cell, and route planners ask
// about the same candidate paths again and again.
type CorridorCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *corridorEntry, most recent first
	byKey map[string]*list.Element
}

type corridorEntry struct {
	key string
	c   *Corridor
}

// NewCorridorCache returns a cache of at most n corridors.
func NewCorridorCache(n int) *CorridorCache {
	return &CorridorCache{max: max(n, 1), order: list.New(), byKey: map[string]*list.Element{}}
}

// Get returns the corridor of (path, width, res, segLen), building and
// keeping it when absent. Failed builds are not kept.
func (cc *CorridorCache) Get(path []h3.LatLng, width float64, res int, segLen float64) (*Corridor, error) {
	key := make([]byte, 0, 8*(2*len(path)+3))
	for _, v := range [...]float64{width, float64(res), segLen} {
		key = strconv.AppendUint(key, math.Float64bits(v), 36)
		key = append(key, ',')
	}
	for _, p := range path {
		key = strconv.AppendUint(key, math.Float64bits(p.Lat), 36)
		key = append(key, ' ')
		key = strconv.AppendUint(key, math.Float64bits(p.Lng), 36)
		key = append(key, ',')
	}
	cc.mu.Lock()
	if e, ok := cc.byKey[string(key)]; ok {
		cc.order.MoveToFront(e)
		c := e.Value.(*corridorEntry).c
		cc.mu.Unlock()
		return c, nil
	}
	cc.mu.Unlock()
	c, err := NewCorridor(path, width, res, segLen)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.byKey[string(key)]; ok {
		return e.Value.(*corridorEntry).c, nil
	}
	cc.byKey[string(key)] = cc.order.PushFront(&corridorEntry{string(key), c})
	for cc.order.Len() > cc.max {
		e := cc.order.Back()
		cc.order.Remove(e)
		delete(cc.byKey, e.Value.(*corridorEntry).key)
	}
	return c, nil
}

// Len returns how many corridors the cache holds.
func (cc *CorridorCache) Len() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.order.Len()
}
