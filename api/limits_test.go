package api

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckCostNamesCostAndLimit(t *testing.T) {
	s := &Server{Guard: NewGuard(Limits{MaxQueryCost: 1000})}
	if err := s.checkCost(10, 100); err != nil {
		t.Fatalf("cost at the limit refused: %v", err)
	}
	err := s.checkCost(10, 101)
	if err == nil || !strings.Contains(err.Error(), "10 cells × 101 steps = 1010") || !strings.Contains(err.Error(), "limit of 1000") {
		t.Fatalf("cost over the limit: %v", err)
	}
	if _, ok := err.(*paramError); !ok {
		t.Fatalf("cost error is %T; want a paramError, answered 400", err)
	}
	if err := (&Server{}).checkCost(1000, 1000); err != nil {
		t.Fatalf("default limit refused a million: %v", err)
	}
}

func TestTrackedConnRunsOnCloseOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := TrackConns(ln)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := trackedOf(c)
	if tc == nil {
		t.Fatal("accepted connection is not tracked")
	}
	var calls atomic.Int32
	if !tc.setOnClose(func() { calls.Add(1) }) {
		t.Fatal("setOnClose on an open connection")
	}
	c.Close()
	c.Close()
	if calls.Load() != 1 {
		t.Fatalf("onClose ran %d times, want 1", calls.Load())
	}
	if tc.setOnClose(func() {}) {
		t.Fatal("setOnClose on a closed connection reported open")
	}
}

func TestRateBucket(t *testing.T) {
	g := NewGuard(Limits{Rate: 10, Burst: 5})
	h := HashToken("x")
	for i := range 5 {
		if _, ok := g.takeRate(h); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	wait, ok := g.takeRate(h)
	if ok || wait <= 0 || wait > 110*time.Millisecond {
		t.Fatalf("past the burst: ok %v, wait %v; want a refusal with a wait of about 100ms", ok, wait)
	}
	if _, ok := g.takeRate(HashToken("y")); !ok {
		t.Fatal("another token is limited by the first one's use")
	}
	time.Sleep(150 * time.Millisecond)
	if _, ok := g.takeRate(h); !ok {
		t.Fatal("no credit back after 150ms at 10/s")
	}
}
