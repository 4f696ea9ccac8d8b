package dashboard

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
)

// poller reads every client that has a descriptor of its own with one
// epoll instance and one goroutine: an idle connection then costs no
// goroutine at all (no stack, nothing for the collector to scan), only
// its socket and its state. Clients say little — a subscription when the
// map moves, a pong every 20 s — so one reader keeps up with all.
type poller struct {
	h      *Hub
	epfd   int
	closed atomic.Bool
	// A pipe in the epoll set, written by close, so that the poller
	// waits for events without a timeout (no wakeups while nobody
	// talks) and still notices close at once. run owns the read end,
	// close the write end.
	wakeR, wakeW int

	mu   sync.Mutex
	byFD map[int32]*client

	// Owned by the poller's goroutine: a read into buf through the raw
	// connection, with its callback made once so reads allocate nothing.
	buf   []byte
	n     int
	errno error
	read  func(fd uintptr) bool
}

func newPoller(h *Hub) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pipe[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return nil, err
	}
	p := &poller{h: h, epfd: epfd, wakeR: pipe[0], wakeW: pipe[1], byFD: map[int32]*client{}, buf: make([]byte, 16<<10)}
	p.read = p.readOnce
	return p, nil
}

// add has the poller read c from now on.
func (p *poller) add(c *client) error {
	if err := c.raw.Control(func(fd uintptr) { c.fd = int32(fd) }); err != nil {
		return err
	}
	p.mu.Lock()
	p.byFD[c.fd] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: c.fd}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		p.remove(c)
		return err
	}
	return nil
}

// remove stops reading c; call it before c's connection is closed, so
// that its descriptor cannot be another client's yet.
func (p *poller) remove(c *client) {
	p.mu.Lock()
	if p.byFD[c.fd] == c {
		delete(p.byFD, c.fd)
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	}
	p.mu.Unlock()
}

// close stops run. (A write after run has stopped on an error fails with
// EPIPE, which Go reports rather than signals.)
func (p *poller) close() {
	p.closed.Store(true)
	syscall.Write(p.wakeW, []byte{0})
	syscall.Close(p.wakeW)
}

// run reads the clients whose sockets have something until close.
func (p *poller) run() {
	defer syscall.Close(p.epfd)
	defer syscall.Close(p.wakeR)
	events := make([]syscall.EpollEvent, 256)
	for !p.closed.Load() {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			p.h.opts.Logf("live: epoll_wait: %v", err)
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(p.wakeR) {
				continue // close: the loop's condition ends it
			}
			p.mu.Lock()
			c := p.byFD[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				p.drain(c)
			}
		}
	}
}

// drain reads what c's socket holds and hands it to the hub.
func (p *poller) drain(c *client) {
	for {
		err := c.raw.Read(p.read)
		n := max(p.n, 0)
		switch {
		case err == nil && errors.Is(p.errno, syscall.EAGAIN):
			return
		case err == nil && p.errno != nil:
			err = p.errno
		case err == nil && n == 0:
			err = io.EOF
		}
		if err == nil {
			err = p.h.received(c, p.buf[:n])
		}
		if err != nil {
			p.remove(c)
			p.h.readFailed(c, err)
			return
		}
		if n < len(p.buf) {
			return
		}
	}
}

// readOnce is one read(2) that never waits.
func (p *poller) readOnce(fd uintptr) bool {
	for {
		p.n, p.errno = syscall.Read(int(fd), p.buf)
		if p.errno != syscall.EINTR {
			return true
		}
	}
}
