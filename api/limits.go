package api

import (
	"crypto/sha256"
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
	// MaxQueryCost bounds cells × steps of one series query.
	MaxQueryCost int64
}

// Defaults of the limits flowd serve starts with.
const (
	DefaultRate         = 500
	DefaultBurst        = 1000
	DefaultLivePerToken = 20
	DefaultMaxQueryCost = 20_000_000
)

// rateBucket is one token's bucket of request credits.
type rateBucket struct {
	credits float64
	last    time.Time
}

// takeRate spends one request credit of the token with hash h; when none is
// left it returns how long until one is.
func (g *Guard) takeRate(h [sha256.Size]byte) (time.Duration, bool) {
	if g.Limits.Rate <= 0 {
		return 0, true
	}
	burst := float64(max(g.Limits.Burst, 1))
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[h]
	if b == nil {
		b = &rateBucket{credits: burst, last: now}
		g.buckets[h] = b
	}
	b.credits = min(burst, b.credits+now.Sub(b.last).Seconds()*g.Limits.Rate)
	b.last = now
	if b.credits >= 1 {
		b.credits--
		return 0, true
	}
	return time.Duration((1 - b.credits) / g.Limits.Rate * float64(time.Second)), false
}

// acquireLive takes one of tok's live connection slots. The slot is given
// back when the connection closes (when the listener came from TrackConns)
// or by calling release when the upgrade did not happen.
func (g *Guard) acquireLive(ctx *fasthttp.RequestCtx, tok Token) (release func(), ok bool) {
	g.mu.Lock()
	if g.Limits.LivePerToken > 0 && g.live[tok.Hash] >= g.Limits.LivePerToken {
		g.mu.Unlock()
		return nil, false
	}
	g.live[tok.Hash]++
	g.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			g.mu.Lock()
			if g.live[tok.Hash]--; g.live[tok.Hash] <= 0 {
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
