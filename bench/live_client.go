package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LiveFleet is a crowd of light WebSocket clients of flowd's /api/v1/live,
// meant to run in a process of their own so that the figures measure the
// server. A client is a connection and a few bytes of state: two readers
// wait on all of them with epoll and keep of each frame only its first
// bytes (its seq and full fields) and its arrival time.
type LiveFleet struct {
	clients []*liveClient
	readers []*fleetReader
	start   time.Time
}

// LiveFleetConfig says whom a fleet dials and what it asks for.
type LiveFleetConfig struct {
	Addr    string `json:"addr"`    // host:port of flowd
	Clients int    `json:"clients"` // connections
	Sub     string `json:"sub"`     // the subscribe message every client sends
	// Sources spreads the connections over source addresses 127.0.0.1,
	// 127.0.0.2, … (up to Sources of them) so that more than one address's
	// ephemeral ports can be used; 0 or 1 dials from the default address.
	Sources int `json:"sources"`
	// Deflate offers permessage-deflate as browsers do; the server's
	// answer must take it, and cells frames then come compressed.
	Deflate bool `json:"deflate"`
}

// liveClient is one connection of a fleet and what it saw.
type liveClient struct {
	conn   net.Conn
	fd     int
	carry  []byte // the start of a frame whose first bytes have not all come
	skip   int    // payload bytes still to pass over
	ready  bool   // among its reader's sockets to read this round
	mu     sync.Mutex
	last   int64 // seq of the last frame
	frames int64
	fulls  int64 // snapshots after the first
	missed int64 // diffs whose seq did not follow the last one
	noSeq  int64 // cells frames without a seq
	got    []arrival
	err    error
}

// arrival is when a frame of some seq arrived, in ns since the fleet began.
type arrival struct {
	seq  int64
	at   int64
	wire int64 // the frame's bytes, as sent (compressed or not)
}

// DialLiveFleet connects the fleet's clients, 64 at a time, sends each its
// subscription and waits until every one has its first snapshot.
func DialLiveFleet(ctx context.Context, cfg LiveFleetConfig) (*LiveFleet, error) {
	f := &LiveFleet{clients: make([]*liveClient, cfg.Clients), start: time.Now()}
	for range 2 {
		r, err := newFleetReader(f.start)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.readers = append(f.readers, r)
		go r.run()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var errOnce sync.Once
	var dialErr error
	for i := range f.clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dialLive(ctx, cfg, i)
			if err != nil {
				errOnce.Do(func() { dialErr = fmt.Errorf("live client %d: %w", i, err) })
				return
			}
			f.clients[i] = c
			if err := f.readers[i%len(f.readers)].add(c); err != nil {
				errOnce.Do(func() { dialErr = fmt.Errorf("live client %d: %w", i, err) })
			}
		})
	}
	wg.Wait()
	if dialErr == nil {
		dialErr = f.waitSnapshots(ctx, time.Minute)
	}
	if dialErr != nil {
		f.Close()
		return nil, dialErr
	}
	return f, nil
}

// waitSnapshots waits until every client has a frame.
func (f *LiveFleet) waitSnapshots(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; i < len(f.clients); {
		c := f.clients[i]
		c.mu.Lock()
		frames, err := c.frames, c.err
		c.mu.Unlock()
		switch {
		case err != nil:
			return fmt.Errorf("live client %d: %w", i, err)
		case frames > 0:
			i++
		case time.Now().After(deadline):
			return fmt.Errorf("live client %d: no snapshot within %v", i, timeout)
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// dialLive opens client i's connection, completes the handshake and sends
// the subscription.
func dialLive(ctx context.Context, cfg LiveFleetConfig, i int) (*liveClient, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if cfg.Sources > 1 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%cfg.Sources))}
	}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := &liveClient{conn: conn}
	br := bufio.NewReader(conn)
	var key [16]byte
	rand.Read(key[:])
	ext := ""
	if cfg.Deflate {
		ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" // Chromium's offer
	}
	req := "GET /api/v1/live HTTP/1.1\r\nHost: " + cfg.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n" + ext + "\r\n"
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte(req)); err != nil {
		conn.Close()
		return nil, err
	}
	status, err := br.ReadString('\n')
	deflate := false
	for err == nil {
		var line string
		if line, err = br.ReadString('\n'); line == "\r\n" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		if strings.EqualFold(name, "Sec-WebSocket-Extensions") && strings.HasPrefix(strings.TrimSpace(value), "permessage-deflate") {
			deflate = true
		}
	}
	if err == nil && !bytes.HasPrefix([]byte(status), []byte("HTTP/1.1 101 ")) {
		err = fmt.Errorf("handshake answered %q", status)
	}
	if err == nil && deflate != cfg.Deflate {
		err = fmt.Errorf("offered permessage-deflate: %v; the server took it: %v", cfg.Deflate, deflate)
	}
	if err == nil && br.Buffered() > 0 {
		peek, _ := br.Peek(br.Buffered())
		c.carry = bytes.Clone(peek)
	}
	if err == nil {
		_, err = conn.Write(clientFrame(0x1, []byte(cfg.Sub)))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// clientFrame is a final, masked client frame (the mask is zero: the
// server must unmask, and zero is a valid key).
func clientFrame(op byte, payload []byte) []byte {
	b := []byte{0x80 | op, 0x80}
	switch n := len(payload); {
	case n < 126:
		b[1] |= byte(n)
	case n <= 0xffff:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// record notes a cells frame of wire bytes, checking that a diff follows
// the last frame.
func (c *liveClient) record(head []byte, at int64, wire int) {
	seq, ok := jsonInt(head, `"seq":`)
	full := bytes.Contains(head, []byte(`"full":true`))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.noSeq++
		return
	}
	if c.frames > 0 {
		if full {
			c.fulls++
		} else if seq != c.last+1 {
			c.missed++
		}
	}
	c.frames++
	c.last = seq
	c.got = append(c.got, arrival{seq, at, int64(wire)})
}

// LiveFleetReport is what a fleet's clients got.
type LiveFleetReport struct {
	Clients   int   `json:"clients"`
	Failed    int   `json:"failed"` // connections that ended early
	Frames    int64 `json:"frames"`
	Snapshots int64 `json:"snapshots"` // full frames after each client's first
	Missed    int64 `json:"missed"`    // diffs that skipped a seq: a broken protocol
	NoSeq     int64 `json:"no_seq"`    // cells frames without a seq: another server
	// UserClock counts the reads timed by the fleet's clock, for want of
	// the kernel's receive timestamp (see fleetReader).
	UserClock int64 `json:"user_clock"`
	// MinLast and MaxLast are the lowest and highest seq of the clients'
	// last frames: equal when every client reached the same state.
	MinLast int64 `json:"min_last"`
	MaxLast int64 `json:"max_last"`
	// Ticks holds, per seq, when its frame reached the clients.
	Ticks map[int64]*TickArrivals `json:"ticks"`
	Start int64                   `json:"start"` // the fleet's start, unix ns
}

// TickArrivals is when one seq's frame reached a fleet's clients: the
// first arrival and how many arrived each millisecond after it.
type TickArrivals struct {
	First int64   `json:"first"` // unix ns
	Late  []int32 `json:"late"`  // per millisecond after First; the last bucket holds the rest
	Bytes int64   `json:"bytes"` // of its frames, as sent (compressed or not)
}

// maxLateMs is the last bucket of TickArrivals.Late.
const maxLateMs = 10000

// Report summarises what the clients have got so far.
func (f *LiveFleet) Report() LiveFleetReport {
	r := LiveFleetReport{Clients: len(f.clients), Ticks: map[int64]*TickArrivals{}, Start: f.start.UnixNano(), MinLast: -1}
	for _, rd := range f.readers {
		r.UserClock += rd.userClock.Load()
	}
	first := map[int64]int64{}
	for _, c := range f.clients {
		c.mu.Lock()
		for _, a := range c.got {
			if v, ok := first[a.seq]; !ok || a.at < v {
				first[a.seq] = a.at
			}
		}
		c.mu.Unlock()
	}
	for seq, at := range first {
		r.Ticks[seq] = &TickArrivals{First: r.Start + at}
	}
	for _, c := range f.clients {
		c.mu.Lock()
		r.Frames, r.Snapshots, r.Missed, r.NoSeq = r.Frames+c.frames, r.Snapshots+c.fulls, r.Missed+c.missed, r.NoSeq+c.noSeq
		if c.err != nil {
			r.Failed++
		}
		if r.MinLast < 0 || c.last < r.MinLast {
			r.MinLast = c.last
		}
		r.MaxLast = max(r.MaxLast, c.last)
		for _, a := range c.got {
			r.Ticks[a.seq].add(time.Duration(a.at-first[a.seq]), 1)
			r.Ticks[a.seq].Bytes += a.wire
		}
		c.mu.Unlock()
	}
	return r
}

func (t *TickArrivals) add(late time.Duration, n int32) {
	ms := min(int(late/time.Millisecond), maxLateMs)
	if len(t.Late) <= ms {
		t.Late = append(t.Late, make([]int32, ms+1-len(t.Late))...)
	}
	t.Late[ms] += n
}

// Close ends every connection and the readers.
func (f *LiveFleet) Close() {
	for _, r := range f.readers {
		r.close()
	}
	for _, c := range f.clients {
		switch {
		case c == nil:
		case c.conn != nil:
			c.conn.Close()
		default: // its reader's own socket
			syscall.Close(c.fd)
		}
	}
}

// MergeLiveReports adds reports of fleets that ran side by side (in
// several processes): counts add up, and each seq's arrivals are taken
// from the first arrival over all fleets.
func MergeLiveReports(rs []LiveFleetReport) LiveFleetReport {
	out := LiveFleetReport{Ticks: map[int64]*TickArrivals{}, MinLast: -1}
	for _, r := range rs {
		out.Clients, out.Failed, out.Frames = out.Clients+r.Clients, out.Failed+r.Failed, out.Frames+r.Frames
		out.Snapshots, out.Missed, out.NoSeq = out.Snapshots+r.Snapshots, out.Missed+r.Missed, out.NoSeq+r.NoSeq
		out.UserClock += r.UserClock
		if out.MinLast < 0 || r.MinLast < out.MinLast {
			out.MinLast = r.MinLast
		}
		out.MaxLast = max(out.MaxLast, r.MaxLast)
		for seq, t := range r.Ticks {
			if o, ok := out.Ticks[seq]; !ok || t.First < o.First {
				out.Ticks[seq] = &TickArrivals{First: t.First}
			}
		}
	}
	for _, r := range rs {
		for seq, t := range r.Ticks {
			o := out.Ticks[seq]
			o.Bytes += t.Bytes
			shift := time.Duration(t.First - o.First)
			for ms, n := range t.Late {
				o.add(shift+time.Duration(ms)*time.Millisecond, n)
			}
		}
	}
	return out
}

// FramesOf counts the frames of the seqs in [from, to].
func (r LiveFleetReport) FramesOf(from, to int64) int64 {
	var n int64
	for seq, t := range r.Ticks {
		if seq >= from && seq <= to {
			for _, c := range t.Late {
				n += int64(c)
			}
		}
	}
	return n
}

// BytesOf is the bytes of the frames of the seqs in [from, to].
func (r LiveFleetReport) BytesOf(from, to int64) int64 {
	var n int64
	for seq, t := range r.Ticks {
		if seq >= from && seq <= to {
			n += t.Bytes
		}
	}
	return n
}

// LatePercentile is the q-th quantile (0 to 1) of the arrivals' delay
// after each tick's first arrival, over the seqs in [from, to].
func (r LiveFleetReport) LatePercentile(q float64, from, to int64) time.Duration {
	var hist []int64
	var total int64
	for seq, t := range r.Ticks {
		if seq < from || seq > to {
			continue
		}
		for ms, n := range t.Late {
			if len(hist) <= ms {
				hist = append(hist, make([]int64, ms+1-len(hist))...)
			}
			hist[ms] += int64(n)
			total += int64(n)
		}
	}
	want := int64(q * float64(total))
	var seen int64
	for ms, n := range hist {
		if seen += n; seen > want {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return 0
}

// ServeLiveFleet runs a fleet for a parent process: it reads the fleet's
// config as one JSON line from in, dials, writes {"ready":n} (or
// {"error":…}) to out, and when in ends or sends a line, writes the
// report as one JSON line and returns.
func ServeLiveFleet(in io.Reader, out io.Writer) error {
	lines := bufio.NewScanner(in)
	lines.Buffer(nil, 1<<20)
	if !lines.Scan() {
		return fmt.Errorf("live fleet: no config on stdin")
	}
	var cfg LiveFleetConfig
	if err := json.Unmarshal(lines.Bytes(), &cfg); err != nil {
		return fmt.Errorf("live fleet config: %w", err)
	}
	enc := json.NewEncoder(out)
	f, err := DialLiveFleet(context.Background(), cfg)
	if err != nil {
		enc.Encode(map[string]string{"error": err.Error()})
		return err
	}
	defer f.Close()
	if err := enc.Encode(map[string]int{"ready": cfg.Clients}); err != nil {
		return err
	}
	lines.Scan()
	return enc.Encode(f.Report())
}
