package dashboard

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxControlQueued bounds the site, error and control frames waiting for
// one client. A client that lets this many pile up is not reading, and is
// dropped rather than let a level change go missing silently.
const maxControlQueued = 64

// outbox is what waits to be written to one client, and who writes it.
// Frames are shared, read-only buffers: queueing one costs a slice header.
type outbox struct {
	mu       sync.Mutex
	cells    []byte   // the newest cells frame; an unwritten one is replaced
	control  [][]byte // site, error, ping, pong and close frames, in order
	partial  []byte   // the unwritten tail of a frame a write cut short
	queued   bool     // on the ready queue or in a pool writer's hands
	stalled  bool     // a drain goroutine owns the writing
	closing  bool     // a close frame is queued: nothing more goes after it
	writable bool     // the connection can take a write that never waits
}

// next takes the next bytes to write out of o, or returns nil; cells
// reports a cells frame.
func (o *outbox) next() (b []byte, cells bool) {
	switch {
	case len(o.partial) > 0:
		b, o.partial = o.partial, nil
	case len(o.control) > 0:
		b = o.control[0]
		o.control[0] = nil
		if o.control = o.control[1:]; len(o.control) == 0 {
			o.control = nil
		}
	case o.cells != nil:
		b, o.cells, cells = o.cells, nil, true
	}
	return b, cells
}

// readyQueue holds the clients that have something to write, for the
// pool of writers; each client is on it at most once (outbox.queued).
type readyQueue struct {
	mu     sync.Mutex
	wake   sync.Cond
	ready  []*client
	closed bool
	// unwritten counts the clients pushed that no writer has finished
	// with yet: a tick's burst lasts while it is large (see Hub.Yield).
	unwritten atomic.Int64
}

func newReadyQueue() *readyQueue {
	q := &readyQueue{}
	q.wake.L = &q.mu
	return q
}

func (q *readyQueue) push(cs ...*client) {
	if len(cs) == 0 {
		return
	}
	q.unwritten.Add(int64(len(cs)))
	q.mu.Lock()
	q.ready = append(q.ready, cs...)
	q.mu.Unlock()
	q.wake.Broadcast()
}

// take waits for ready clients and moves up to len(dst) of them into dst;
// it returns 0 once the queue is closed.
func (q *readyQueue) take(dst []*client) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.closed {
		q.wake.Wait()
	}
	n := copy(dst, q.ready)
	rest := copy(q.ready, q.ready[n:])
	clear(q.ready[rest:])
	q.ready = q.ready[:rest]
	return n
}

func (q *readyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake.Broadcast()
}

// markReadyLocked puts c on the ready queue batch unless a writer already
// has it; the caller holds c.out.mu and pushes the batch.
func (c *client) markReadyLocked(batch []*client) []*client {
	if c.out.queued || c.out.stalled {
		return batch
	}
	c.out.queued = true
	return append(batch, c)
}

// writer is one goroutine of the pool. Its write callback is made once,
// so that a write through the connection's raw descriptor allocates
// nothing.
type writer struct {
	h     *Hub
	buf   []byte
	n     int
	errno error
	write func(fd uintptr) bool
}

func (h *Hub) runWriter() {
	w := &writer{h: h}
	w.write = w.writeOnce
	batch := make([]*client, 32)
	for {
		n := h.ready.take(batch)
		if n == 0 {
			return
		}
		for i, c := range batch[:n] {
			w.flush(c)
			batch[i] = nil
		}
		h.ready.unwritten.Add(-int64(n))
	}
}

// burstClients is how many clients waiting for their frames make a burst
// that ingest yields to (Yield).
const burstClients = 256

// Yield waits while a burst of frames goes out — a tick's, or
// snapshots', to at least burstClients clients — for at most max, and
// returns at once otherwise. Ingest calls it before decoding a request:
// a tick's writes to 10,000 viewers take both cores of a small machine
// for 75–100 ms, and every decoder running beside them makes the last
// viewers' frames later. Ingest does the same work, a few milliseconds
// later; its acknowledgements wait, not its data.
func (h *Hub) Yield(max time.Duration) {
	if h.ready.yield(max) {
		h.yields.Add(1)
	}
}

// yield waits while at least burstClients clients wait for their frames,
// for at most max, and reports whether it waited.
func (q *readyQueue) yield(max time.Duration) bool {
	if q.unwritten.Load() < burstClients {
		return false
	}
	deadline := time.Now().Add(max)
	for q.unwritten.Load() >= burstClients && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return true
}

// writeOnce is one write(2) that never waits: a full socket buffer
// returns EAGAIN instead of parking the writer.
func (w *writer) writeOnce(fd uintptr) bool {
	for {
		w.n, w.errno = syscall.Write(int(fd), w.buf)
		if w.errno != syscall.EINTR {
			return true
		}
	}
}

// flush writes c's outbox until it is empty or the socket is full. A
// socket that is full, or a connection with no raw descriptor (TLS), is
// handed to a drain goroutine of its own, so no pool writer ever waits
// for a client.
func (w *writer) flush(c *client) {
	for {
		c.out.mu.Lock()
		b, cells := c.out.next()
		if b == nil || !c.out.writable {
			if b != nil {
				c.out.partial = b
				c.out.stalled = true
				if cells {
					w.h.frames.Add(1)
				}
			}
			c.out.queued = false
			stalled, closing := c.out.stalled, c.out.closing
			c.out.mu.Unlock()
			if stalled {
				go w.h.drain(c)
			} else if closing {
				c.conn.Close()
			}
			return
		}
		c.out.mu.Unlock()
		w.buf = b
		err := c.raw.Write(w.write)
		w.buf = nil
		n := max(w.n, 0)
		switch {
		case err == nil && w.errno == syscall.EAGAIN:
			err = nil
		case err == nil:
			err = w.errno
		}
		if err != nil {
			w.h.drop(c, "write: "+err.Error(), false)
			return
		}
		w.h.bytes.Add(int64(n))
		if cells {
			w.h.frames.Add(1)
		}
		if n < len(b) {
			c.out.mu.Lock()
			c.out.partial, c.out.writable = b[n:], false
			c.out.mu.Unlock()
		}
	}
}

// drain writes c's outbox with writes that wait, each within the write
// timeout, until it is empty; then the pool takes the client back. It
// runs only while a client's socket is full (or always, over TLS).
func (h *Hub) drain(c *client) {
	for {
		c.out.mu.Lock()
		b, cells := c.out.next()
		if b == nil {
			c.out.stalled = false
			c.out.writable = c.raw != nil
			closing := c.out.closing
			c.out.mu.Unlock()
			if closing {
				c.conn.Close()
			}
			return
		}
		c.out.mu.Unlock()
		c.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
		n, err := c.conn.Write(b)
		h.bytes.Add(int64(n))
		if err != nil {
			h.drop(c, "write: "+err.Error(), errors.Is(err, os.ErrDeadlineExceeded))
			return
		}
		if cells {
			h.frames.Add(1)
		}
	}
}
