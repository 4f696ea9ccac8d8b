// Package freelist keeps a bounded number of released objects for reuse.
//
// Unlike a sync.Pool, which every garbage collection empties, a List keeps
// its objects across collections. flowd collects often (-gogc), so buffers
// grown to a request's size — a batch's tables, a WAL record, a line
// reader — would otherwise be allocated anew after
// each collection, and the allocating request pays the collector's assist.
package freelist

import "sync"

// List holds up to a fixed number of *T.
type List[T any] struct {
	mu    sync.Mutex
	items []*T
	max   int
}

// New returns a List that keeps at most max objects.
func New[T any](max int) *List[T] {
	return &List[T]{items: make([]*T, 0, max), max: max}
}

// Get takes an object out of the list, or returns nil when it is empty.
func (l *List[T]) Get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.items)
	if n == 0 {
		return nil
	}
	x := l.items[n-1]
	l.items[n-1] = nil
	l.items = l.items[:n-1]
	return x
}

// Put keeps x for a later Get, unless the list is full: then x is left to
// the garbage collector.
func (l *List[T]) Put(x *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) < l.max {
		l.items = append(l.items, x)
	}
}
