package api

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

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
