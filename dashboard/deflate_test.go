package dashboard

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/uber/h3-go/v4"
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

// TestCompressedClientsGetTheSameFrames: clients that offer
// permessage-deflate (gorilla's, which also compresses their
// subscriptions) are answered with the extension and follow the same
// cells as one that does not, to the same values as /api/v1/density.
// Their frames come compressed, a fraction of the bytes, once at least
// DeflateShared of them share the subscription; a lone one's come as
// they are, since compressing a frame costs about what writing it does.
func TestCompressedClientsGetTheSameFrames(t *testing.T) {
	for _, tc := range []struct {
		deflating  int  // clients offering deflate, beside one that does not
		compressed bool // their frames come compressed
	}{{1, false}, {4, true}} {
		t.Run(fmt.Sprintf("deflating=%d", tc.deflating), func(t *testing.T) {
			s := startServer(t, t.TempDir(), Options{Hub: HubOptions{Tick: 100 * time.Millisecond}})
			url := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/live"
			dial := func(n *atomic.Int64, compress bool) *liveClient {
				d := &websocket.Dialer{
					EnableCompression: compress,
					NetDial: func(network, addr string) (net.Conn, error) {
						c, err := net.Dial(network, addr)
						return countingConn{c, n}, err
					},
				}
				conn, resp, err := d.Dial(url, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				if ext := resp.Header.Get("Sec-WebSocket-Extensions"); strings.HasPrefix(ext, "permessage-deflate") != compress {
					t.Fatalf("offered deflate: %v; answered with extensions %q", compress, ext)
				}
				return &liveClient{conn: conn}
			}
			zBytes := make([]atomic.Int64, tc.deflating)
			var zs []*liveClient
			for i := range tc.deflating {
				zs = append(zs, dial(&zBytes[i], true))
			}
			var plainBytes atomic.Int64
			plain := dial(&plainBytes, false)
			if st := s.Dash.Hub.Stats(); st.Clients != tc.deflating+1 || st.Deflate != tc.deflating {
				t.Fatalf("hub counts %d clients, %d with deflate; want %d and %d", st.Clients, st.Deflate, tc.deflating+1, tc.deflating)
			}
			for _, c := range append(zs, plain) {
				c.subscribe(t, testBBox, 9, "swipes_in")
			}
			r := rand.New(rand.NewPCG(1, 2))
			s.post(t, "swipes", swipes(r, 2000, testBBox, "in"))
			want := s.density(t, "swipes_in", testBBox, 9)
			if len(want) < 50 {
				t.Fatalf("the swipes fell in %d cells; want many, for frames worth compressing", len(want))
			}
			// Every client reaches the first batch's state (snapshot and
			// all) before the bytes of the second are counted.
			all := append([]*liveClient{plain}, zs...)
			values := make([]map[string]int64, len(all))
			for i, c := range all {
				values[i] = map[string]int64{}
				c.readUntil(t, values[i], 5*time.Second, func(message) bool { return maps.Equal(values[i], want) })
			}
			for i := range zBytes {
				zBytes[i].Store(0)
			}
			plainBytes.Store(0)
			s.post(t, "swipes", swipes(r, 2000, testBBox, "in"))
			want = s.density(t, "swipes_in", testBBox, 9)
			for i, c := range all {
				c.readUntil(t, values[i], 5*time.Second, func(message) bool { return maps.Equal(values[i], want) })
			}
			for i := range zs {
				zn, pn := zBytes[i].Load(), plainBytes.Load()
				if compressed := zn*2 < pn; compressed != tc.compressed {
					t.Errorf("client %d of %d offering deflate read %d bytes, the plain one %d; want compressed: %v", i+1, tc.deflating, zn, pn, tc.compressed)
				}
				if i == 0 {
					t.Logf("%d cells: %d bytes, %d plain", len(want), zn, pn)
				}
			}
			for _, c := range zs {
				c.conn.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for s.Dash.Hub.Stats().Deflate != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if st := s.Dash.Hub.Stats(); st.Deflate != 0 || st.Clients != 1 {
				t.Errorf("after the compressed clients left: %d clients, %d with deflate; want 1 and 0", st.Clients, st.Deflate)
			}
		})
	}
}

// BenchmarkDeflateFrame is what compressing a tick's cells frame costs,
// once per subscription: frames of the cells around a point (a disk of
// rings 8 and 18 of res-9 cells, 217 and 1027 cells: 5 and 24 KB).
func BenchmarkDeflateFrame(b *testing.B) {
	for _, rings := range []int{8, 18} {
		disk := h3.LatLngToCell(h3.LatLng{Lat: 30.27, Lng: 120.15}, 9).GridDisk(rings)
		s := newShape(shapeKey{metric: "count_car", res: 9}, disk)
		r := rand.New(rand.NewPCG(1, 2))
		for _, c := range disk {
			s.values[c] = int64(r.IntN(400))
		}
		frame := s.fullFrame()
		b.Run(fmt.Sprintf("cells=%d", len(disk)), func(b *testing.B) {
			var z []byte
			for b.Loop() {
				z = deflateFrame(frame)
			}
			b.ReportMetric(float64(len(frame)), "bytes")
			b.ReportMetric(float64(len(z)), "deflated-bytes")
			b.SetBytes(int64(len(frame)))
		})
	}
}
