package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/flate"
)

// fleetReader waits on many clients' sockets with one epoll instance and
// reads whatever arrives into one buffer: a frame costs a read, not a
// goroutine's wake-up, so the fleet takes little of the machine it shares
// with the server it measures.
//
// A frame's arrival is the kernel's receive timestamp (SO_TIMESTAMPNS),
// taken when the server's write delivered it, not when the reader got to
// it; so the reader need not read while the server writes, and does not:
// once something arrives it waits until sockets stop becoming readable
// (the server's burst of a tick is over), looking every quietPause, and
// only then reads them all. Reading each frame as it came, the fleets
// took the two cores from the server during its burst, each write woke a
// reader (on loopback the writer's system call does the receiving side's
// work, wake-up included), and the arrivals were timed when a reader got
// a core: the figure measured the clients as much as the server. Remote
// clients cost the server's cores nothing of their own.
type fleetReader struct {
	epfd  int
	start time.Time
	buf   []byte
	oob   []byte
	mu    sync.Mutex
	byFD  map[int32]*liveClient
	// userClock counts the reads the kernel gave no timestamp for, timed
	// by the reader's clock instead.
	userClock atomic.Int64
	inflater  io.ReadCloser // for compressed frames, reset for each
	head      [frameHead]byte
	// The last compressed message inflated, and its first bytes.
	lastZ, lastHead []byte
}

// A fleet reader looks every quietPause whether more sockets became
// readable, and reads at the latest maxDefer after the first did.
const (
	quietPause = 5 * time.Millisecond
	maxDefer   = 500 * time.Millisecond
)

func newFleetReader(start time.Time) (*fleetReader, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &fleetReader{epfd: epfd, start: start, buf: make([]byte, 256<<10), oob: make([]byte, 256), byFD: map[int32]*liveClient{}}, nil
}

// add hands c's socket to the reader; from then on the reader reads it
// directly, and nothing else may.
func (r *fleetReader) add(c *liveClient) error {
	raw, err := c.conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	// The reader keeps a duplicate of the socket and the Go conn is
	// closed, which takes the socket out of the runtime's poller: else
	// each frame's arrival woke the fleet's netpoller too (an epoll
	// callback and a thread woken, done on loopback inside flowd's write
	// and so charged to flowd, though no goroutine waited on the conn).
	var derr error
	if err := raw.Control(func(fd uintptr) { c.fd, derr = syscall.Dup(int(fd)) }); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("dup: %w", derr)
	}
	syscall.CloseOnExec(c.fd)
	if err := syscall.SetNonblock(c.fd, true); err != nil {
		syscall.Close(c.fd)
		return err
	}
	c.conn.Close()
	c.conn = nil
	if err := syscall.SetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	r.mu.Lock()
	r.byFD[int32(c.fd)] = c
	r.mu.Unlock()
	if len(c.carry) > 0 {
		r.consume(c, nil, time.Since(r.start).Nanoseconds())
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xffffffff, Fd: int32(c.fd)}
	return syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev)
}

func (r *fleetReader) close() { syscall.Close(r.epfd) }

// run reads the clients' sockets in rounds: it waits for one to have
// something, then until no more become readable, then reads them all.
// The epoll is edge-triggered, so that each look costs the sockets that
// became readable since the last, not all those waiting to be read.
func (r *fleetReader) run() {
	events := make([]syscall.EpollEvent, 1024)
	var ready []*liveClient
	for {
		n, err := r.wait(events, -1)
		if err != nil {
			return
		}
		ready = r.note(ready, events[:n])
		for deadline := time.Now().Add(maxDefer); time.Now().Before(deadline); {
			time.Sleep(quietPause)
			if n, err = r.wait(events, 0); err != nil {
				return
			}
			if n == 0 {
				break
			}
			ready = r.note(ready, events[:n])
		}
		at := time.Since(r.start).Nanoseconds()
		for i, c := range ready {
			c.ready = false
			r.readAll(c, at)
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// note adds the clients of events to ready, each once.
func (r *fleetReader) note(ready []*liveClient, events []syscall.EpollEvent) []*liveClient {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range events {
		if c := r.byFD[ev.Fd]; c != nil && !c.ready {
			c.ready = true
			ready = append(ready, c)
		}
	}
	return ready
}

// wait is epoll_wait: the ready sockets, up to len(events), waiting up to
// timeoutMs (-1: until one is). It fails once the reader is closed.
func (r *fleetReader) wait(events []syscall.EpollEvent, timeoutMs int) (int, error) {
	for {
		n, err := syscall.EpollWait(r.epfd, events, timeoutMs)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// readAll reads what c's socket holds, frame by frame; at is the
// reader's clock, for a read the kernel gives no timestamp.
func (r *fleetReader) readAll(c *liveClient, at int64) {
	for {
		n, oobn, _, _, err := syscall.Recvmsg(c.fd, r.buf, r.oob, 0)
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
		r.consume(c, r.buf[:n], r.received(r.oob[:oobn], at))
		if n < len(r.buf) {
			return
		}
	}
}

// received is when the kernel received the bytes of a read whose control
// messages are oob (of the read's last segment, when it holds more than
// one), in ns since the fleet began; at when it gave no timestamp.
func (r *fleetReader) received(oob []byte, at int64) int64 {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				return sec*1e9 + nsec - r.start.UnixNano()
			}
		}
	}
	r.userClock.Add(1)
	return at
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
		compressed := ok && b[0]&0x40 != 0
		// A compressed frame is inflated from its start, once all of it
		// is in; of another only the first bytes are looked at.
		if need := hl + min(size, frameHead); !ok || compressed && len(b) < hl+size || len(b) < need {
			c.carry = bytes.Clone(b)
			return
		}
		head := b[hl : hl+min(size, frameHead)]
		if compressed {
			var err error
			if head, err = r.inflateHead(b[hl : hl+size]); err != nil {
				r.drop(c, err)
				return
			}
		}
		switch {
		case op == 0x9:
			syscall.Write(c.fd, clientFrame(0xA, head))
		case op == 0x8:
			r.drop(c, io.EOF)
			return
		case op == 0x1 && bytes.HasPrefix(head, []byte(`{"type":"cells"`)):
			c.record(head, at, hl+size)
		}
		k := min(hl+size, len(b))
		b, c.skip = b[k:], hl+size-k
	}
}

// inflateHead returns the first frameHead bytes (or fewer, all there are)
// of a compressed message (RFC 7692: deflate, its final empty block taken
// off). The clients of one subscription get the same bytes each tick, so
// the reader inflates the last message it met once, however many clients
// it reads it from: a browser inflates its own frame on its own machine,
// and inflating each here took the fleet 65 µs a frame, a core's worth at
// 10,000 clients, on the cores flowd is measured on.
func (r *fleetReader) inflateHead(p []byte) ([]byte, error) {
	if r.lastZ != nil && bytes.Equal(p, r.lastZ) {
		return r.lastHead, nil
	}
	head, err := r.inflate(p)
	if err != nil {
		return nil, err
	}
	r.lastZ, r.lastHead = append(r.lastZ[:0], p...), append(r.lastHead[:0], head...)
	return head, nil
}

func (r *fleetReader) inflate(p []byte) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateEnd))
	if r.inflater == nil {
		r.inflater = flate.NewReader(src)
	} else if err := r.inflater.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	n, err := io.ReadFull(r.inflater, r.head[:])
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("inflating a frame: %w", err)
	}
	return r.head[:n], nil
}

// deflateEnd ends a compressed message for the inflater: the empty
// stored block the sender took off, then a final empty block.
var deflateEnd = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

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
