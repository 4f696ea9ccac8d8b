package dashboard

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// writersOnly is a hub with its writers running and nothing else: one
// writer, so that a writer waiting on a client would hold up the others.
func writersOnly(t *testing.T) *Hub {
	h := &Hub{clients: map[*client]struct{}{}, shapes: map[shapeKey]*shape{}, ready: newReadyQueue()}
	h.opts.Writers = 1
	h.opts.setDefaults()
	h.writers.Go(h.runWriter)
	t.Cleanup(func() {
		h.ready.close()
		h.writers.Wait()
	})
	return h
}

// giveCells puts a cells frame in c's outbox, as the tick does.
func (h *Hub) giveCells(c *client, frame []byte) {
	c.out.mu.Lock()
	c.out.cells = frame
	ready := c.markReadyLocked(nil)
	c.out.mu.Unlock()
	h.ready.push(ready...)
}

// readServerFrame reads one unmasked frame.
func readServerFrame(r io.Reader) (op byte, payload []byte, err error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		_, err = io.ReadFull(r, h[2:4])
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		_, err = io.ReadFull(r, h[2:10])
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return h[0] & 0x0f, payload, err
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestStalledClientDoesNotHoldTheWriter: a frame larger than the socket
// buffers goes to a client that is not reading. The one pool writer hands
// it to a drain goroutine and goes on: another client gets its frame at
// once. When the slow client reads, it gets every byte, the rest of the
// big frame before anything queued after it began.
func TestStalledClientDoesNotHoldTheWriter(t *testing.T) {
	h := writersOnly(t)
	slowServer, slowClient := tcpPair(t)
	fastServer, fastClient := tcpPair(t)
	slow, fast := newClient(slowServer), newClient(fastServer)
	if slow.raw == nil {
		t.Fatal("a TCP connection has no raw descriptor")
	}
	big := textFrame(bytes.Repeat([]byte("0123456789"), 1<<20)) // 10 MiB
	h.giveCells(slow, big)
	time.Sleep(100 * time.Millisecond) // the writer has begun the big frame
	h.queueControl(slow, textFrame([]byte("after")))

	start := time.Now()
	h.giveCells(fast, textFrame([]byte("fast")))
	fastClient.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, p, err := readServerFrame(fastClient); err != nil || string(p) != "fast" {
		t.Fatalf("fast client read %q, %v", p, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the fast client waited %v behind the stalled one", d)
	}
	slow.out.mu.Lock()
	stalled := slow.out.stalled
	slow.out.mu.Unlock()
	if !stalled {
		t.Errorf("10 MiB to a client that does not read did not stall it")
	}

	r := bufio.NewReader(slowClient)
	slowClient.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range [][]byte{big, textFrame([]byte("after"))} {
		op, p, err := readServerFrame(r)
		if err != nil || op != opText || !bytes.HasSuffix(want, p) || len(want)-len(p) > maxFrameHeader {
			t.Fatalf("slow client read op %d, %d bytes, %v; want the %d-byte frame", op, len(p), err, len(want))
		}
	}
}

// TestClientWithoutDescriptor: a connection with no descriptor of its own
// (TLS is one; a pipe here) is written by a drain goroutine, frames in
// the order queued: control frames before the cells frame.
func TestClientWithoutDescriptor(t *testing.T) {
	h := writersOnly(t)
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := newClient(server)
	if c.raw != nil {
		t.Fatal("a pipe has a raw descriptor")
	}
	h.giveCells(c, textFrame([]byte("cells")))
	h.queueControl(c, textFrame([]byte("site")))
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []string
	for range 2 {
		_, p, err := readServerFrame(client)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(p))
	}
	if got[0] != "site" && got[0] != "cells" || got[0] == got[1] {
		t.Errorf("read %q; want both frames", got)
	}
}

// TestClientWithoutDescriptorIsRead: a connection the poller cannot read
// gets a goroutine of its own, which answers a ping through the writers.
func TestClientWithoutDescriptorIsRead(t *testing.T) {
	h := writersOnly(t)
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	c := newClient(server)
	h.clients[c] = struct{}{}
	go h.read(c)
	client.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := client.Write(clientFrameBytes(0x89, []byte("are you there"), [4]byte{5, 6, 7, 8})); err != nil {
		t.Fatal(err)
	}
	if op, p, err := readServerFrame(client); err != nil || op != opPong || string(p) != "are you there" {
		t.Fatalf("answer op %#x %q, %v; want the pong", op, p, err)
	}
}

// TestYieldWaitsForABurst: ingest's Yield returns at once with a few
// clients waiting for frames, waits while a burst of them does until the
// writers are through it, and never longer than it is allowed.
func TestYieldWaitsForABurst(t *testing.T) {
	q := newReadyQueue()
	few := make([]*client, burstClients-1)
	for i := range few {
		few[i] = &client{}
	}
	q.push(few...)
	start := time.Now()
	if q.yield(time.Second) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("waited with %d clients waiting", len(few))
	}
	q.push(&client{}) // a burst now
	go func() {
		time.Sleep(30 * time.Millisecond)
		q.unwritten.Add(-burstClients) // the writers are through
	}()
	start = time.Now()
	if !q.yield(time.Second) {
		t.Fatal("did not wait for a burst")
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("waited %v for a burst written in 30ms", d)
	}
	q.push(make([]*client, burstClients)...) // a burst no writer takes
	start = time.Now()
	q.yield(40 * time.Millisecond)
	if d := time.Since(start); d < 40*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("waited %v, allowed 40ms", d)
	}
}
