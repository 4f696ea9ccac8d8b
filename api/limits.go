package api

import (
	"crypto/sha256"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits bound what one caller can make the server do. Zero in a field
// means no limit, except MaxQueryCost, whose zero means the default. The
// limits of an ingest body (events, decompressed bytes) are the ingest
// handler's, checked while it decodes.
type Limits struct {
	// Rate is the sustained requests a second one token may make, Burst how
	// many it may make at once after a quiet spell (a token bucket).
	Rate  float64
	Burst int
	// LivePerToken bounds the live WebSocket connections one token holds.
	LivePerToken int
	// MaxQueryCost bounds the rows one query reads, of the tier that
	// answers it, plus the figures it answers (cost.go).
	MaxQueryCost int64

	// MaxQueries bounds the queries computed at once, MaxQueriesPerToken
	// those of one token (with authentication on). A query waits up to
	// QueryWait for its turn, then is refused.
	MaxQueries         int
	MaxQueriesPerToken int
	QueryWait          time.Duration
	// MaxPolygonVertices bounds the vertices of a query's polygon: covering
	// a polygon with cells costs time in proportion to both.
	MaxPolygonVertices int
	// MaxQueryBody bounds the body of a query (a POST of an area, a
	// path or a form); ingest and registry bodies have the server's
	// larger bound.
	MaxQueryBody int
}

// Defaults of the limits flowd serve starts with; the default of
// MaxQueries is twice the cores (at least 4), of MaxQueriesPerToken half
// of MaxQueries.
const (
	DefaultRate               = 500
	DefaultBurst              = 1000
	DefaultLivePerToken       = 20
	DefaultMaxQueryCost       = 20_000_000
	DefaultQueryWait          = time.Second
	DefaultMaxPolygonVertices = 10_000
	DefaultMaxQueryBody       = 4 << 20
)

// querySlots bound the queries computed at once, in all and per token.
type querySlots struct {
	all     chan struct{}
	perTok  int
	mu      sync.Mutex
	byToken map[[sha256.Size]byte]chan struct{}
}

func newQuerySlots(all, perToken int) *querySlots {
	if all <= 0 {
		return nil
	}
	return &querySlots{all: make(chan struct{}, all), perTok: perToken, byToken: map[[sha256.Size]byte]chan struct{}{}}
}

// acquire waits up to wait for one of the token's slots and one of all
// (tokenless callers, with authentication off, take only the latter). It
// returns the release function, or the status and error of the refusal:
// 429 when the token holds its share, 503 when the server is full.
func (qs *querySlots) acquire(tok *Token, wait time.Duration) (func(), int, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var mine chan struct{}
	if tok != nil && qs.perTok > 0 {
		qs.mu.Lock()
		if mine = qs.byToken[tok.Hash]; mine == nil {
			mine = make(chan struct{}, qs.perTok)
			qs.byToken[tok.Hash] = mine
		}
		qs.mu.Unlock()
		select {
		case mine <- struct{}{}:
		case <-timer.C:
			return nil, fasthttp.StatusTooManyRequests, fmt.Errorf("token %q has %d queries running, its limit (-max-queries-per-token); retry later", tok.Name, qs.perTok)
		}
	}
	select {
	case qs.all <- struct{}{}:
	case <-timer.C:
		if mine != nil {
			<-mine
		}
		return nil, fasthttp.StatusServiceUnavailable, fmt.Errorf("%d queries are running, the server's limit (-max-queries); retry later", cap(qs.all))
	}
	return func() {
		<-qs.all
		if mine != nil {
			<-mine
		}
	}, 0, nil
}

// rateBucket is a bucket of credits refilled at a rate up to a burst: a
// token's requests, or the audit records of refusals.
type rateBucket struct {
	credits float64
	last    time.Time
}

// take spends one credit, the bucket refilled at rate a second up to
// burst; when none is left it returns how long until one is. A new bucket
// is full.
func (b *rateBucket) take(now time.Time, rate, burst float64) (time.Duration, bool) {
	if b.last.IsZero() {
		b.credits = burst
	}
	b.credits = min(burst, b.credits+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.credits >= 1 {
		b.credits--
		return 0, true
	}
	return time.Duration((1 - b.credits) / rate * float64(time.Second)), false
}

// takeRate spends one request credit of the token with hash h; when none is
// left it returns how long until one is.
func (g *Guard) takeRate(h [sha256.Size]byte) (time.Duration, bool) {
	if g.Limits.Rate <= 0 {
		return 0, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[h]
	if b == nil {
		b = &rateBucket{}
		g.buckets[h] = b
	}
	return b.take(time.Now(), g.Limits.Rate, float64(max(g.Limits.Burst, 1)))
}

// liveSlot is one live connection a token holds.
type liveSlot struct{ conn net.Conn }

// acquireLive takes one of tok's live connection slots. The slot is given
// back when the connection closes (when the listener came from TrackConns)
// or by calling release when the upgrade did not happen.
func (g *Guard) acquireLive(ctx *fasthttp.RequestCtx, tok Token) (release func(), ok bool) {
	slot := &liveSlot{conn: ctx.Conn()}
	g.mu.Lock()
	slots := g.live[tok.Hash]
	if g.Limits.LivePerToken > 0 && len(slots) >= g.Limits.LivePerToken {
		g.mu.Unlock()
		return nil, false
	}
	if slots == nil {
		slots = map[*liveSlot]struct{}{}
		g.live[tok.Hash] = slots
	}
	slots[slot] = struct{}{}
	g.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			g.mu.Lock()
			delete(slots, slot)
			if len(g.live[tok.Hash]) == 0 {
				delete(g.live, tok.Hash)
			}
			g.mu.Unlock()
		})
	}
	// Without a tracked connection the slot is held only while the handler
	// runs (Serve releases it); the hub's own global limit still applies.
	if tc := trackedOf(ctx.Conn()); tc != nil && !tc.setOnClose(release) {
		release()
	}
	return release, true
}

// revokedLive returns the live connections held by tokens not in ts.
// Called with g.mu held.
func (g *Guard) revokedLive(ts *Tokens) []net.Conn {
	var conns []net.Conn
	for h, slots := range g.live {
		if _, ok := ts.byHash[h]; ok {
			continue
		}
		for slot := range slots {
			if slot.conn != nil {
				conns = append(conns, slot.conn)
			}
		}
	}
	return conns
}
