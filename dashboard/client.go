package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxClientMessage bounds what a client may send in one message; a
// subscription is well under it.
const maxClientMessage = 4096

// client is one WebSocket connection. What it sends is read by the hub's
// poller when its socket has something (or, for a connection without a
// descriptor of its own, by a goroutine of its own); frames to it are
// written by the hub's pool of writers from its outbox.
type client struct {
	conn  net.Conn
	raw   syscall.RawConn // nil when the connection has no descriptor of its own (TLS)
	fd    int32           // its descriptor, when the poller reads it; -1 otherwise
	in    inbound
	heard atomic.Int64 // unix milliseconds the client last sent a frame
	out   outbox
	exact bool // may see exact figures about people (an admin; privacy.OffLive)
	// deflate says the client agreed to permessage-deflate: it gets cells
	// frames compressed, and may send compressed messages.
	deflate bool

	inMu     sync.Mutex
	inbox    []byte // the newest message not handled yet
	handling bool   // a goroutine is handling c's messages

	// Guarded by the hub's mutex.
	shape     *shape
	needsFull bool
	skips     int
	closed    bool
	pingSlice int // which of the hub's ping slices it is pinged with
}

func newClient(conn net.Conn) *client {
	c := &client{conn: conn, fd: -1}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.out.writable = c.raw != nil
	c.heard.Store(time.Now().UnixMilli())
	return c
}

// subscription is a client's request for a viewport, resolution and metric.
type subscription struct {
	Type   string     `json:"type"`
	BBox   [4]float64 `json:"bbox"`
	Res    int        `json:"res"`
	Metric string     `json:"metric"`
}

// inbound is what a client has sent that is not a whole message yet;
// only the goroutine reading the client touches it.
type inbound struct {
	partial    []byte // the start of a frame the last read cut short
	msg        []byte // the frames so far of a fragmented message
	started    bool   // inside a fragmented message
	compressed bool   // the message is compressed (its first frame's RSV1)
}

// received takes bytes read from c: it answers pings, and hands each whole
// message to handle. An error ends the connection.
func (h *Hub) received(c *client, b []byte) error {
	if len(c.in.partial) > 0 {
		b = append(c.in.partial, b...)
		c.in.partial = nil
	}
	for len(b) > 0 {
		f, n, err := nextFrame(b, maxClientMessage-len(c.in.msg), c.deflate)
		if err != nil {
			return err
		}
		if n == 0 {
			c.in.partial = bytes.Clone(b)
			return nil
		}
		b = b[n:]
		c.heard.Store(time.Now().UnixMilli())
		switch f.op {
		case opPing:
			h.queueControl(c, controlFrame(opPong, f.payload))
			continue
		case opPong:
			continue
		case opClose:
			return errClientClosed
		case opText, opBinary:
			if c.in.started {
				return protocolError("new message inside a fragmented one")
			}
			c.in.compressed = f.compressed
		case opContinuation:
			if !c.in.started {
				return protocolError("continuation frame with no message")
			}
		default:
			return protocolError("unknown opcode %#x", f.op)
		}
		c.in.msg = append(c.in.msg, f.payload...)
		if c.in.started = !f.fin; !f.fin {
			continue
		}
		msg := append(c.in.msg, f.payload[:0]...) // not nil, even when empty
		c.in.msg = nil
		if c.in.compressed {
			// The limit held for the compressed bytes; it holds again
			// for what they inflate to.
			var err error
			if msg, err = inflateMessage(msg, maxClientMessage); errors.Is(err, errTooBig) {
				return &closeError{closeTooBig, fmt.Sprintf("message longer than %d bytes once inflated", maxClientMessage)}
			} else if err != nil {
				return protocolError("%v", err)
			}
		}
		h.deliver(c, msg)
	}
	return nil
}

// read is the goroutine of a connection the poller cannot read (TLS): it
// stays shallow, so its stack stays at the runtime's smallest, 2 KiB.
func (h *Hub) read(c *client) {
	buf := make([]byte, 512)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			if err := h.received(c, buf[:n]); err != nil {
				h.readFailed(c, err)
				return
			}
		}
		if err != nil {
			h.readFailed(c, err)
			return
		}
	}
}

// deliver hands msg to c's handling goroutine, starting one if none runs:
// a subscription covers its bbox there, not on the reader.
func (h *Hub) deliver(c *client, msg []byte) {
	c.inMu.Lock()
	c.inbox = msg
	start := !c.handling
	c.handling = true
	c.inMu.Unlock()
	if start {
		go h.handle(c)
	}
}

// handle handles c's messages, one at a time, until none waits. A
// message that arrives while another is handled replaces any other
// waiting: a client panning the map wants only its latest viewport.
func (h *Hub) handle(c *client) {
	for {
		c.inMu.Lock()
		msg := c.inbox
		c.inbox = nil
		if msg == nil {
			c.handling = false
			c.inMu.Unlock()
			return
		}
		c.inMu.Unlock()
		h.receive(c, msg)
	}
}

// readFailed ends c after reading it failed: a close frame answers a
// client that closed or broke the protocol; a connection that failed is
// simply closed.
func (h *Hub) readFailed(c *client, err error) {
	var ce *closeError
	switch {
	case errors.Is(err, errClientClosed):
		h.hangUp(c, closeNormal, "")
	case errors.As(err, &ce):
		h.hangUp(c, ce.code, ce.reason)
	default:
		h.drop(c, "read: "+err.Error(), false)
	}
}

// receive handles one message from c: a subscription, or an error back.
func (h *Hub) receive(c *client, msg []byte) {
	var sub subscription
	if err := json.Unmarshal(msg, &sub); err != nil {
		h.sendError(c, "message is not JSON: "+err.Error())
		return
	}
	if sub.Type != "subscribe" {
		h.sendError(c, `unknown message type "`+sub.Type+`"; want "subscribe"`)
		return
	}
	if err := h.subscribe(c, sub); err != nil {
		h.sendError(c, "subscribe: "+err.Error())
	}
}

// sendError queues an error message for c alone.
func (h *Hub) sendError(c *client, msg string) {
	data, err := json.Marshal(map[string]string{"type": "error", "error": msg})
	if err != nil {
		panic("BUG: marshal an error message: " + err.Error())
	}
	h.queueControl(c, textFrame(data))
}

// queueControl queues a frame for c behind the ones already waiting.
func (h *Hub) queueControl(c *client, frame []byte) {
	c.out.mu.Lock()
	if c.out.closing {
		c.out.mu.Unlock()
		return
	}
	if len(c.out.control) >= maxControlQueued {
		c.out.mu.Unlock()
		h.drop(c, "not reading: its queue of messages is full", true)
		return
	}
	c.out.control = append(c.out.control, frame)
	ready := c.markReadyLocked(nil)
	c.out.mu.Unlock()
	h.ready.push(ready...)
}

// hangUp removes c and closes its connection once a close frame with code
// has been written after whatever was queued.
func (h *Hub) hangUp(c *client, code int, reason string) {
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
	c.out.mu.Lock()
	if c.out.closing {
		c.out.mu.Unlock()
		return
	}
	c.out.cells = nil
	c.out.control = append(c.out.control, closeFrame(code, reason))
	c.out.closing = true
	ready := c.markReadyLocked(nil)
	c.out.mu.Unlock()
	h.ready.push(ready...)
}

// HangUp ends the live connections among conns with a close frame saying
// their token was revoked: the guard calls it (api.Guard.HangUp) when a
// reload removes a token, and a revoked token's feed must not go on.
func (h *Hub) HangUp(conns []net.Conn) {
	revoked := make(map[net.Conn]bool, len(conns))
	for _, c := range conns {
		revoked[c] = true
	}
	var ending []*client
	h.mu.Lock()
	for c := range h.clients {
		if revoked[c.conn] {
			ending = append(ending, c)
		}
	}
	h.mu.Unlock()
	for _, c := range ending {
		h.hangUp(c, closePolicy, "token revoked")
	}
}

// drop removes c and closes its connection at once, which also ends a
// write or read blocked on it. slow counts it among the clients dropped
// for not keeping up.
func (h *Hub) drop(c *client, why string, slow bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slow {
		h.removeLocked(c)
		c.conn.Close()
		return
	}
	h.dropLocked(c, why)
}

// dropLocked drops c for not keeping up; the caller holds h.mu.
func (h *Hub) dropLocked(c *client, why string) {
	if h.removeLocked(c) {
		h.dropped.Add(1)
		h.opts.Logf("live: dropped client %s: %s", c.conn.RemoteAddr(), why)
	}
	c.conn.Close()
}

// removeLocked takes c out of the hub; it reports false if c was out.
func (h *Hub) removeLocked(c *client) bool {
	if c.closed {
		return false
	}
	c.closed = true
	delete(h.clients, c)
	if c.deflate {
		h.deflating--
	}
	if c.fd >= 0 && h.poller != nil {
		h.poller.remove(c)
	}
	h.leaveShapeLocked(c)
	h.open.Add(-1)
	return true
}

// busy reports whether c still has frames waiting or being written.
func (c *client) busy() bool {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.queued || c.out.stalled
}
