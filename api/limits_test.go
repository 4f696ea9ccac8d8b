package api

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowd/flowd/storage"
	"github.com/valyala/fasthttp"
)

func TestCheckCostNamesCostAndLimit(t *testing.T) {
	s := &Server{Guard: NewGuard(Limits{MaxQueryCost: 1000})}
	if err := s.checkCost(queryCost{rows: 900, figures: 100, tiers: storage.TierHour.String()}, "ask less"); err != nil {
		t.Fatalf("cost at the limit refused: %v", err)
	}
	err := s.checkCost(queryCost{rows: 901, figures: 100, tiers: storage.TierHour.String()}, "ask less")
	if err == nil || !strings.Contains(err.Error(), "901 rows of the hour tier + 100 figures = 1001") || !strings.Contains(err.Error(), "limit of 1000 (-max-query-cost): ask less") {
		t.Fatalf("cost over the limit: %v", err)
	}
	if _, ok := err.(*paramError); !ok {
		t.Fatalf("cost error is %T; want a paramError, answered 400", err)
	}
	if err := (&Server{}).checkCost(queryCost{rows: DefaultMaxQueryCost}, ""); err != nil {
		t.Fatalf("default limit refused its own size: %v", err)
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

// TestQuerySlots runs queries that block until released through a guard
// allowing 3 at once and 2 per token: a token's third waits and is
// refused 429, a fourth query of another token while 3 run is refused
// 503, and a slot given back lets the next one in.
func TestQuerySlots(t *testing.T) {
	g := NewGuard(Limits{MaxQueries: 3, MaxQueriesPerToken: 2, QueryWait: 100 * time.Millisecond})
	ts := &Tokens{}
	for _, name := range []string{"a", "b", "c"} {
		ts.Add(Token{Hash: HashToken(name), Role: RoleRead, Name: name})
	}
	g.SetTokens(ts)
	running := make(chan struct{}, 10)
	release := make(chan struct{})
	rt := &Route{Method: "GET", Path: "/q", Role: RoleRead, Limit: LimitQuery, Audit: AuditNever, Handler: func(ctx *fasthttp.RequestCtx) {
		running <- struct{}{}
		<-release
	}}
	query := func(token string) chan int {
		done := make(chan int, 1)
		go func() {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set("Authorization", "Bearer "+token)
			g.Serve(&ctx, rt)
			done <- ctx.Response.StatusCode()
		}()
		return done
	}
	within := func(c chan int) int {
		select {
		case v := <-c:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("a query neither ran nor was refused within 5 s")
			return 0
		}
	}
	a1, a2, b1 := query("a"), query("a"), query("b")
	for range 3 {
		<-running
	}
	if got := within(query("a")); got != 429 {
		t.Errorf("a token's third query: %d; want 429", got)
	}
	if got := within(query("c")); got != 503 {
		t.Errorf("a fourth query in all: %d; want 503", got)
	}
	c1 := query("c")
	release <- struct{}{} // one of the three ends
	<-running             // c1 takes its slot
	close(release)
	for _, done := range []chan int{a1, a2, b1, c1} {
		if got := within(done); got != 200 {
			t.Errorf("a query within the limits: %d; want 200", got)
		}
	}
}
