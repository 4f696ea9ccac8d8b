package dashboard

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestNegotiateDeflate(t *testing.T) {
	for _, tc := range []struct {
		offers string
		want   bool
	}{
		{"", false},
		{"permessage-deflate; client_max_window_bits", true},                                 // Chromium, Firefox
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true}, // gorilla
		{"PerMessage-Deflate ; client_max_window_bits=12", true},
		{"permessage-deflate; server_max_window_bits=15", true},
		{`permessage-deflate; server_max_window_bits="15"`, true},
		{"permessage-deflate; server_max_window_bits=10", false}, // a smaller window than deflate's
		{"permessage-deflate; server_max_window_bits", false},
		{"permessage-deflate; client_max_window_bits=16", false},
		{"permessage-deflate; client_max_window_bits=08", false},
		{"permessage-deflate; server_no_context_takeover=1", false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false},
		{"permessage-deflate; x-webkit-whatever", false},
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true}, // the second offer
		{"x-webkit-deflate-frame", false},
		{"permessage-foo, ,;", false},
	} {
		if got := negotiateDeflate(tc.offers); got != tc.want {
			t.Errorf("offers %q: took deflate %v, want %v", tc.offers, got, tc.want)
		}
	}
}

// TestDeflateFrameInflates: a compressed frame has RSV1, the length of its
// payload, and a payload that the standard library's inflater, given the
// tail RFC 7692 says the sender takes off, turns back into the message
// (random bytes here, which deflate may store as they are; what real
// frames save is TestCompressedClientsGetTheSameFrames').
func TestDeflateFrameInflates(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 125, 5000, 70000} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = "0123456789abcdef\",[]"[r.IntN(20)]
		}
		f := deflateFrame(textFrame(msg))
		if f[0] != 0x80|rsv1|opText {
			t.Fatalf("%d bytes: first byte %#x, want FIN, RSV1 and text", n, f[0])
		}
		hl := frameHeaderLen(f)
		size := int(f[1] & 0x7f)
		switch size {
		case 126:
			size = int(f[2])<<8 | int(f[3])
		case 127:
			size = int(f[8])<<8 | int(f[9]) | int(f[7])<<16
		}
		if size != len(f)-hl {
			t.Fatalf("%d bytes: header says %d bytes of payload, %d follow", n, size, len(f)-hl)
		}
		got, err := io.ReadAll(stdflate.NewReader(io.MultiReader(bytes.NewReader(f[hl:]), bytes.NewReader(deflateEnd))))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: inflated %d bytes, %v; want the message", n, len(got), err)
		}
	}
}

// deflateStd compresses msg as a browser does, with the standard library:
// a flushed stream without its empty stored block.
func deflateStd(t *testing.T, msg []byte) []byte {
	var b bytes.Buffer
	w, err := stdflate.NewWriter(&b, stdflate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail)
}

// TestCompressedMessagesAcrossReads: a compressed message in two frames,
// with a ping between them, read in pieces cut at every byte, is
// delivered inflated; one that inflates past the limit ends the
// connection with 1009, though its compressed bytes are far below it;
// and a compressed message from a client that did not agree to deflate
// is a protocol error.
func TestCompressedMessagesAcrossReads(t *testing.T) {
	mask := [4]byte{9, 8, 7, 6}
	msg := []byte(`{"type":"subscribe","bbox":[120.1,30.2,120.2,30.3],"res":9,"metric":"count_car"}`)
	z := deflateStd(t, msg)
	var wire []byte
	wire = append(wire, clientFrameBytes(0x41, z[:len(z)/2], mask)...) // RSV1, text, not final
	wire = append(wire, clientFrameBytes(0x89, []byte("hi"), mask)...)
	wire = append(wire, clientFrameBytes(0x80, z[len(z)/2:], mask)...)
	for cut := 1; cut < len(wire); cut++ {
		h := &Hub{ready: newReadyQueue()}
		c := &client{fd: -1, deflate: true}
		c.handling = true // keep the message in the inbox, unhandled
		for _, piece := range [][]byte{wire[:cut], wire[cut:]} {
			if err := h.received(c, bytes.Clone(piece)); err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
		}
		if !bytes.Equal(c.inbox, msg) || len(c.out.control) != 1 {
			t.Fatalf("cut at %d: message %q, control frames %q", cut, c.inbox, c.out.control)
		}
	}

	bomb := deflateStd(t, bytes.Repeat([]byte(" "), 1<<20))
	if len(bomb) > maxClientMessage/2 {
		t.Fatalf("a megabyte of spaces compressed to %d bytes", len(bomb))
	}
	h := &Hub{ready: newReadyQueue()}
	c := &client{fd: -1, deflate: true}
	var ce *closeError
	if err := h.received(c, clientFrameBytes(0xC1, bomb, mask)); !errors.As(err, &ce) || ce.code != closeTooBig {
		t.Errorf("a %d-byte message inflating to 1 MiB: %v; want close code %d", len(bomb), err, closeTooBig)
	}
	c = &client{fd: -1, deflate: true}
	if err := h.received(c, clientFrameBytes(0xC1, []byte{0xff, 0xff, 0xff}, mask)); !errors.As(err, &ce) || ce.code != closeProtocol {
		t.Errorf("a compressed message that is not deflate: %v; want close code %d", err, closeProtocol)
	}
	c = &client{fd: -1}
	if err := h.received(c, clientFrameBytes(0xC1, z, mask)); !errors.As(err, &ce) || ce.code != closeProtocol {
		t.Errorf("a compressed message without deflate agreed: %v; want close code %d", err, closeProtocol)
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestCompressedClientsGetTheSameFrames: a client that offers
// permessage-deflate (gorilla's, which also compresses its subscription)
// is answered with the extension, follows the same cells as one that
// does not, to the same values as /api/v1/density, and reads far fewer
// bytes for them.
func TestCompressedClientsGetTheSameFrames(t *testing.T) {
	s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 100 * time.Millisecond}})
	var zBytes, plainBytes atomic.Int64
	dialer := func(n *atomic.Int64, compress bool) *websocket.Dialer {
		return &websocket.Dialer{
			EnableCompression: compress,
			NetDial: func(network, addr string) (net.Conn, error) {
				c, err := net.Dial(network, addr)
				return countingConn{c, n}, err
			},
		}
	}
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/live"
	zc, resp, err := dialer(&zBytes, true).Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("an offer of permessage-deflate answered with extensions %q", ext)
	}
	pc, resp, err := dialer(&plainBytes, false).Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("no offer answered with extensions %q", ext)
	}
	if st := s.Dash.Hub.Stats(); st.Clients != 2 || st.Deflate != 1 {
		t.Fatalf("hub counts %d clients, %d with deflate; want 2 and 1", st.Clients, st.Deflate)
	}
	z, plain := &liveClient{conn: zc}, &liveClient{conn: pc}
	z.subscribe(t, testBBox, 9, "swipes_in") // compressed by gorilla
	plain.subscribe(t, testBBox, 9, "swipes_in")
	r := rand.New(rand.NewPCG(1, 2))
	s.post(t, "swipes", swipes(r, 2000, testBBox, "in"))
	want := s.density(t, "swipes_in", testBBox, 9)
	if len(want) < 50 {
		t.Fatalf("the swipes fell in %d cells; want many, for frames worth compressing", len(want))
	}
	zBytes.Store(0)
	plainBytes.Store(0)
	zv, pv := map[string]int64{}, map[string]int64{}
	z.readUntil(t, zv, 5*time.Second, func(message) bool { return maps.Equal(zv, want) })
	plain.readUntil(t, pv, 5*time.Second, func(message) bool { return maps.Equal(pv, want) })
	if zn, pn := zBytes.Load(), plainBytes.Load(); zn*2 > pn {
		t.Errorf("the compressed client read %d bytes, the other %d; want less than half", zn, pn)
	} else {
		t.Logf("%d cells: %d bytes compressed, %d plain", len(want), zn, pn)
	}
	zc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Dash.Hub.Stats().Deflate != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Dash.Hub.Stats(); st.Deflate != 0 || st.Clients != 1 {
		t.Errorf("after the compressed client left: %d clients, %d with deflate; want 1 and 0", st.Clients, st.Deflate)
	}
}
