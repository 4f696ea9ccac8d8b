package freelist

import (
	"runtime"
	"testing"
)

// TestKeepsAcrossCollections puts objects, collects garbage twice (which
// empties a sync.Pool) and gets the same objects back, up to the bound.
func TestKeepsAcrossCollections(t *testing.T) {
	l := New[[]byte](2)
	a, b, c := new([]byte), new([]byte), new([]byte)
	l.Put(a)
	l.Put(b)
	l.Put(c) // over the bound: dropped
	runtime.GC()
	runtime.GC()
	if got := l.Get(); got != b {
		t.Fatalf("first Get = %p, want the last kept %p", got, b)
	}
	if got := l.Get(); got != a {
		t.Fatalf("second Get = %p, want %p", got, a)
	}
	if got := l.Get(); got != nil {
		t.Fatalf("Get of an empty list = %p, want nil", got)
	}
}
