package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"syscall"
	"time"
)

// fleetReader waits on many clients' sockets with one epoll instance and
// reads whatever arrives into one buffer: a frame costs a read, not a
// goroutine's wake-up, so the fleet takes little of the machine it shares
// with the server it measures.
type fleetReader struct {
	epfd  int
	start time.Time
	buf   []byte
	mu    sync.Mutex
	byFD  map[int32]*liveClient
}

func newFleetReader(start time.Time) (*fleetReader, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &fleetReader{epfd: epfd, start: start, buf: make([]byte, 256<<10), byFD: map[int32]*liveClient{}}, nil
}

// add hands c's socket to the reader; from then on the reader reads it
// directly, and nothing else may.
func (r *fleetReader) add(c *liveClient) error {
	raw, err := c.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	raw.Control(func(fd uintptr) { c.fd = int(fd) })
	r.mu.Lock()
	r.byFD[int32(c.fd)] = c
	r.mu.Unlock()
	if len(c.carry) > 0 {
		r.consume(c, nil, time.Since(r.start).Nanoseconds())
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	return syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev)
}

func (r *fleetReader) close() { syscall.Close(r.epfd) }

func (r *fleetReader) run() {
	events := make([]syscall.EpollEvent, 512)
	for {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		at := time.Since(r.start).Nanoseconds()
		for _, ev := range events[:n] {
			r.mu.Lock()
			c := r.byFD[ev.Fd]
			r.mu.Unlock()
			if c != nil {
				r.readAll(c, at)
			}
		}
	}
}

// readAll reads what c's socket holds, frame by frame.
func (r *fleetReader) readAll(c *liveClient, at int64) {
	for {
		n, err := syscall.Read(c.fd, r.buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return
		}
		if n <= 0 {
			if err == nil {
				err = io.EOF
			}
			r.drop(c, err)
			return
		}
		r.consume(c, r.buf[:n], at)
		if n < len(r.buf) {
			return
		}
	}
}

func (r *fleetReader) drop(c *liveClient, err error) {
	syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	r.mu.Lock()
	delete(r.byFD, int32(c.fd))
	r.mu.Unlock()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// frameHead is how much of a frame's payload the fleet looks at.
const frameHead = 96

// consume takes the bytes b read from c's socket: it passes over payload
// it does not need, and handles each frame once its header and first
// bytes are in; a frame cut short waits in c.carry for the next read.
func (r *fleetReader) consume(c *liveClient, b []byte, at int64) {
	if len(c.carry) > 0 {
		b = append(c.carry, b...)
		c.carry = nil
	}
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			b, c.skip = b[k:], c.skip-k
			continue
		}
		op, size, hl, ok := serverFrameHeader(b)
		if !ok || len(b) < hl+min(size, frameHead) {
			c.carry = bytes.Clone(b)
			return
		}
		head := b[hl : hl+min(size, frameHead)]
		switch {
		case op == 0x9:
			c.conn.Write(clientFrame(0xA, head))
		case op == 0x8:
			r.drop(c, io.EOF)
			return
		case op == 0x1 && bytes.HasPrefix(head, []byte(`{"type":"cells"`)):
			c.record(head, at)
		}
		k := min(hl+size, len(b))
		b, c.skip = b[k:], hl+size-k
	}
}

// serverFrameHeader reads an unmasked frame header from the start of b.
func serverFrameHeader(b []byte) (op byte, size, headerLen int, ok bool) {
	if len(b) < 2 {
		return 0, 0, 0, false
	}
	op, size, headerLen = b[0]&0x0f, int(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return 0, 0, 0, false
		}
		size, headerLen = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, 0, 0, false
		}
		size, headerLen = int(binary.BigEndian.Uint64(b[2:])), 10
	}
	return op, size, headerLen, true
}
