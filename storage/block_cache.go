package storage

import (
	"container/list"
	"sync"
)

// blockCache keeps recently decoded blocks of parts, so that a query asked
// again (a dashboard refreshing, a planner stepping through a day) walks
// the rows without reading and decoding them again. Cached blocks are
// immutable and shared by the scans that use them. It is bounded by the
// bytes of the decoded columns, least recently used out first. A block is
// kept from its second read on: a one-off scan of a long history costs no
// copies and does not flush what repeated queries use.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List // of *cachedBlock, most recently used first
	items map[blockKey]*list.Element
	seen  map[blockKey]bool // read once, not cached yet
}

// maxSeen bounds the blocks remembered as read once.
const maxSeen = 1 << 16

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
	return &blockCache{max: maxBytes, ll: list.New(), items: map[blockKey]*list.Element{}, seen: map[blockKey]bool{}}
}

// get returns the cached block k, or nil and whether a block read now
// should be put: true from its second read on.
func (c *blockCache) get(k blockKey) (*block, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		if c.seen[k] {
			delete(c.seen, k)
			return nil, true
		}
		if len(c.seen) >= maxSeen {
			clear(c.seen)
		}
		c.seen[k] = true
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cachedBlock).blk, false
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
