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

// checkCost refuses a query that would touch more than the cost limit:
// cells × steps, the number of sums it computes.
func (s *Server) checkCost(cells, steps int64) error {
	limit := int64(DefaultMaxQueryCost)
	if s.Guard != nil && s.Guard.Limits.MaxQueryCost > 0 {
		limit = s.Guard.Limits.MaxQueryCost
	}
	if cost := cells * steps; cost > limit {
		return &paramError{"cost", fmt.Sprintf("%d cells × %d steps = %d", cells, steps, cost),
			fmt.Sprintf("over the query cost limit of %d: use a larger step, a coarser res or a smaller area", limit)}
	}
	return nil
}

// TrackConns wraps ln so that the guard learns when a connection closes,
// which is how it counts live WebSocket connections per token after the
// upgrade has taken the connection away from the HTTP server.
func TrackConns(ln net.Listener) net.Listener { return &trackingListener{ln} }

type trackingListener struct{ net.Listener }

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c}, nil
}

// trackedConn runs a callback once when it is closed.
type trackedConn struct {
	net.Conn
	mu      sync.Mutex
	closed  bool
	onClose func()
}

// setOnClose arranges for f to run when the connection closes; false means
// it has closed already.
func (c *trackedConn) setOnClose(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.onClose = f
	return true
}

func (c *trackedConn) Close() error {
	c.mu.Lock()
	f := c.onClose
	c.onClose, c.closed = nil, true
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return c.Conn.Close()
}

// trackedOf finds the trackedConn under c, looking through TLS.
func trackedOf(c net.Conn) *trackedConn {
	for c != nil {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
