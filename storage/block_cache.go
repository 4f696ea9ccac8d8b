package storage

import (
	"container/list"
	"sync"
)

// blockCache keeps recently decoded blocks of parts, so that a query asked
// again (a dashboard refreshing, a planner stepping through a day) walks
// the rows without reading and decoding them again. Cached blocks are
// immutable and shared by the scans that use them. It is bounded by the
// bytes of the decoded columns, least recently used out first.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List // of *cachedBlock, most recently used first
	items map[blockKey]*list.Element
}

// blockKey names a block of one opened part; a merged-away part's blocks
// are never asked for again and age out.
type blockKey struct {
	p     *part
	block int
}

type cachedBlock struct {
	key  blockKey
	blk  *block
	size int64
}

func newBlockCache(maxBytes int64) *blockCache {
	if maxBytes <= 0 {
		return nil
	}
	return &blockCache{max: maxBytes, ll: list.New(), items: map[blockKey]*list.Element{}}
}

func (c *blockCache) get(k blockKey) *block {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cachedBlock).blk
}

func (c *blockCache) put(k blockKey, blk *block) {
	if c == nil {
		return
	}
	size := int64(8 * (cap(blk.metrics) + cap(blk.cells) + cap(blk.subs) + cap(blk.minutes) + cap(blk.values)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok || size > c.max {
		return
	}
	c.items[k] = c.ll.PushFront(&cachedBlock{k, blk, size})
	c.size += size
	for c.size > c.max {
		e := c.ll.Back()
		cb := e.Value.(*cachedBlock)
		c.ll.Remove(e)
		delete(c.items, cb.key)
		c.size -= cb.size
	}
}

// bytes returns the cache's current size.
func (c *blockCache) bytes() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
