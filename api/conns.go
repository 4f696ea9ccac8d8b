package api

import (
	"container/list"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ConnLimits bound the connections the server holds and how long one may
// take to say what it wants. A connection is anonymous until a request on
// it is admitted with a token (with authentication off, until any request
// is admitted); a slow or silent client stays anonymous. Anonymous
// connections give way to new ones: past the cap of one address, or of
// all, the oldest anonymous connection (of that address) is closed, so
// that thousands of slow clients cannot keep a caller with a token, on a
// connection old or new, from being served — not even one behind the same
// address. Zero in a count means no limit.
type ConnLimits struct {
	// MaxConns bounds all open connections, live WebSockets included.
	// Past it a new connection closes the oldest anonymous one, or is
	// closed itself when every open connection has made a request with a
	// token: the room between MaxAnon and MaxConns is kept for them.
	MaxConns int
	// MaxAnon bounds the anonymous connections in all.
	MaxAnon int
	// MaxAnonPerIP bounds the anonymous connections from one address.
	// Past it a new connection closes that address's oldest anonymous one.
	MaxAnonPerIP int

	// HeaderTimeout bounds the time from a connection's opening (or a
	// keep-alive request's first byte) to the end of its request header.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time to read a request's body once its
	// header is in.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no request
	// for that long.
	IdleTimeout time.Duration
}

// Defaults of the connection limits flowd serve starts with; MaxConns
// defaults to what the open-file limit leaves (see cmd/flowd).
const (
	DefaultMaxAnonPerIP  = 1024
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 2 * time.Minute
)

// Conns accounts for the open connections of a listener wrapped by
// Listen: how many, which are anonymous, from which address. It lets the
// guard learn when a connection closes, which is how it counts a token's
// live WebSockets after the upgrade has taken the connection away from
// the HTTP server.
type Conns struct {
	limits ConnLimits
	log    *netLog

	mu     sync.Mutex
	open   int
	anon   list.List // of *trackedConn, oldest first
	byAddr map[netip.Addr]*list.List

	accepted, evicted, refused, acceptErrors atomic.Int64
}

// NewConns returns the accounting of connections under limits l. logf
// receives at most a line a minute about connections closed or refused.
func NewConns(l ConnLimits, logf func(format string, args ...any)) *Conns {
	if l.MaxAnon <= 0 || (l.MaxConns > 0 && l.MaxAnon > l.MaxConns) {
		l.MaxAnon = l.MaxConns
	}
	return &Conns{limits: l, log: newNetLog(logf), byAddr: map[netip.Addr]*list.List{}}
}

// Limits returns the limits the connections are held to.
func (cs *Conns) Limits() ConnLimits { return cs.limits }

// ConnStats are counts of a listener's connections, for /metrics.
type ConnStats struct {
	Open, Anonymous                         int
	Accepted, Evicted, Refused, AcceptError int64
}

// Stats returns the current counts.
func (cs *Conns) Stats() ConnStats {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return ConnStats{
		Open: cs.open, Anonymous: cs.anon.Len(),
		Accepted: cs.accepted.Load(), Evicted: cs.evicted.Load(), Refused: cs.refused.Load(), AcceptError: cs.acceptErrors.Load(),
	}
}

// Listen wraps ln so that its connections are accounted for and held to
// the limits. Put TLS on top of the returned listener, not under it.
func (cs *Conns) Listen(ln net.Listener) net.Listener { return &connListener{ln, cs} }

// TrackConns wraps ln with no limits, only so that the guard sees
// connections close.
func TrackConns(ln net.Listener) net.Listener { return NewConns(ConnLimits{}, nil).Listen(ln) }

type connListener struct {
	net.Listener
	cs *Conns
}

// Accept returns the next connection the limits let in. Running out of
// file descriptors closes the oldest anonymous connection and waits a
// moment instead of failing: an accept error would stop the server.
func (l *connListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporaryAcceptError(err) {
				return nil, err
			}
			l.cs.acceptErrors.Add(1)
			l.cs.log.count("accept failed: " + acceptErrorKind(err))
			if v := l.cs.oldestAnon(); v != nil {
				v.Close()
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc, victims := l.cs.admit(c)
		for _, v := range victims {
			v.Close()
		}
		if tc == nil {
			if t, ok := c.(*net.TCPConn); ok {
				t.SetLinger(0) // a reset: no TIME_WAIT left behind for each refusal
			}
			c.Close()
			continue
		}
		return tc, nil
	}
}

// temporaryAcceptError reports whether an accept error passes: out of
// file descriptors or memory, or a connection aborted before it was taken.
func temporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPROTO)
}

func acceptErrorKind(err error) string {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return "out of file descriptors"
	}
	return "aborted or out of memory"
}

// admit accounts for a new connection: it returns the connection to serve
// (nil when it must be closed) and the anonymous connections to close to
// make room for it.
func (cs *Conns) admit(c net.Conn) (tc *trackedConn, victims []*trackedConn) {
	tc = &trackedConn{Conn: c, cs: cs, addr: addrOf(c)}
	cs.accepted.Add(1)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if l := cs.limits; l.MaxAnonPerIP > 0 {
		if al := cs.byAddr[tc.addr]; al != nil && al.Len() >= l.MaxAnonPerIP {
			victims = append(victims, cs.forgetLocked(al.Front().Value.(*trackedConn)))
		}
	}
	if l := cs.limits; l.MaxAnon > 0 && cs.anon.Len() >= l.MaxAnon {
		victims = append(victims, cs.forgetLocked(cs.anon.Front().Value.(*trackedConn)))
	}
	// The victims are still open until the caller closes them.
	if l := cs.limits; l.MaxConns > 0 && cs.open-len(victims) >= l.MaxConns {
		if cs.anon.Len() == 0 {
			cs.refused.Add(1)
			cs.log.count("refused: every open connection has a token and -max-conns is reached")
			return nil, victims
		}
		victims = append(victims, cs.forgetLocked(cs.anon.Front().Value.(*trackedConn)))
	}
	if len(victims) > 0 {
		cs.evicted.Add(int64(len(victims)))
		cs.log.countN("closed to make room: anonymous connections past their limit", len(victims))
	}
	cs.open++
	tc.anonElem = cs.anon.PushBack(tc)
	al := cs.byAddr[tc.addr]
	if al == nil {
		al = list.New()
		cs.byAddr[tc.addr] = al
	}
	tc.addrElem = al.PushBack(tc)
	return tc, victims
}

// oldestAnon takes the oldest anonymous connection out of the lists for
// its caller to close, or returns nil.
func (cs *Conns) oldestAnon() *trackedConn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.anon.Len() == 0 {
		return nil
	}
	cs.evicted.Add(1)
	return cs.forgetLocked(cs.anon.Front().Value.(*trackedConn))
}

// forgetLocked takes tc out of the anonymous lists and returns it.
func (cs *Conns) forgetLocked(tc *trackedConn) *trackedConn {
	if tc.anonElem == nil {
		return tc
	}
	cs.anon.Remove(tc.anonElem)
	tc.anonElem = nil
	if al := cs.byAddr[tc.addr]; al != nil {
		al.Remove(tc.addrElem)
		if al.Len() == 0 {
			delete(cs.byAddr, tc.addr)
		}
	}
	tc.addrElem = nil
	return tc
}

func addrOf(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

// trackedConn is a connection of a Conns: it leaves the anonymous lists
// once a request on it is admitted, and runs a callback once when closed.
type trackedConn struct {
	net.Conn
	cs   *Conns
	addr netip.Addr

	// anonElem and addrElem are its places in the anonymous lists, nil
	// once it is known; guarded by cs.mu.
	anonElem, addrElem *list.Element
	// known is set once a request on it was admitted, so that later
	// requests need not take cs.mu.
	known atomic.Bool

	mu      sync.Mutex
	closed  bool
	onClose func()
}

// setKnown takes the connection out of the anonymous ones: a request on
// it was admitted with a token.
func (c *trackedConn) setKnown() {
	if c.known.Swap(true) {
		return
	}
	c.cs.mu.Lock()
	c.cs.forgetLocked(c)
	c.cs.mu.Unlock()
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
	f, was := c.onClose, c.closed
	c.onClose, c.closed = nil, true
	c.mu.Unlock()
	if !was {
		c.cs.mu.Lock()
		c.cs.forgetLocked(c)
		c.cs.open--
		c.cs.mu.Unlock()
	}
	if f != nil {
		f()
	}
	return c.Conn.Close()
}

// SyscallConn gives the live map the descriptor under c, for reads and
// writes that never wait; a connection without one (TLS) does not offer it.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no descriptor")
	}
	return sc.SyscallConn()
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
