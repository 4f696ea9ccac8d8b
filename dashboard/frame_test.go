package dashboard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/uber/h3-go/v4"
)

// TestSealFrame: a server frame of every length class has the header RFC
// 6455 gives it (FIN, opcode, no mask, the shortest length form) and the
// payload after it.
func TestSealFrame(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		msg := bytes.Repeat([]byte{'x'}, tc.n)
		f := textFrame(msg)
		if !bytes.Equal(f[:len(tc.head)], tc.head) || !bytes.Equal(f[len(tc.head):], msg) {
			t.Errorf("%d bytes: header % x, %d bytes after it; want % x and the message", tc.n, f[:min(len(f), 10)], len(f)-len(tc.head), tc.head)
		}
	}
	if f := closeFrame(closeGoingAway, "server shutting down"); !bytes.Equal(f[:4], []byte{0x88, 22, 0x03, 0xe9}) {
		t.Errorf("close frame % x; want 88 16 03 e9 and the reason", f)
	}
}

// clientFrameBytes is a masked client frame as a browser sends it.
func clientFrameBytes(b0 byte, payload []byte, mask [4]byte) []byte {
	out := []byte{b0, 0x80}
	switch n := len(payload); {
	case n < 126:
		out[1] |= byte(n)
	case n <= 0xffff:
		out[1] |= 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] |= 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, mask[:]...)
	for i, c := range payload {
		out = append(out, c^mask[i&3])
	}
	return out
}

func TestNextFrame(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	long := bytes.Repeat([]byte("ab"), 200)
	for _, tc := range []struct {
		name    string
		wire    []byte
		want    []byte // payload of the first frame
		code    int    // close code of the error; -1 for "wait for more"
		deflate bool   // permessage-deflate agreed
	}{
		{"short text", clientFrameBytes(0x81, []byte(`{"type":"subscribe"}`), mask), []byte(`{"type":"subscribe"}`), 0, false},
		{"compressed, deflate agreed", clientFrameBytes(0xC1, []byte("x"), mask), []byte("x"), 0, true},
		{"RSV1 on a ping", clientFrameBytes(0xC9, []byte("x"), mask), nil, closeProtocol, true},
		{"RSV1 on a continuation", clientFrameBytes(0xC0, []byte("x"), mask), nil, closeProtocol, true},
		{"RSV2, deflate agreed", clientFrameBytes(0xA1, []byte("x"), mask), nil, closeProtocol, true},
		{"16-bit length", clientFrameBytes(0x81, long, mask), long, 0, false},
		{"unmasked", []byte{0x81, 0x01, 'x'}, nil, closeProtocol, false},
		{"RSV1, no deflate agreed", clientFrameBytes(0xC1, []byte("x"), mask), nil, closeProtocol, false},
		{"fragmented ping", clientFrameBytes(0x09, []byte("x"), mask), nil, closeProtocol, false},
		{"over the limit, refused from its header", clientFrameBytes(0x81, bytes.Repeat([]byte("x"), maxClientMessage+1), mask)[:8], nil, closeTooBig, false},
		{"cut short", clientFrameBytes(0x81, long, mask)[:50], nil, -1, false},
		{"one byte", []byte{0x81}, nil, -1, false},
	} {
		f, n, err := nextFrame(tc.wire, maxClientMessage, tc.deflate)
		var ce *closeError
		switch {
		case tc.code == 0 && (err != nil || n != len(tc.wire) || !bytes.Equal(f.payload, tc.want)):
			t.Errorf("%s: got %q (%d bytes taken), %v; want %q", tc.name, f.payload, n, err, tc.want)
		case tc.code > 0 && (!errors.As(err, &ce) || ce.code != tc.code):
			t.Errorf("%s: error %v; want close code %d", tc.name, err, tc.code)
		case tc.code < 0 && (err != nil || n != 0):
			t.Errorf("%s: took %d bytes, %v; want to wait for more", tc.name, n, err)
		}
	}
}

// TestReceivedAcrossReads: a fragmented message with a ping between its
// frames, read in pieces cut at every byte, is delivered once and whole,
// and the ping answered.
func TestReceivedAcrossReads(t *testing.T) {
	mask := [4]byte{9, 8, 7, 6}
	var wire []byte
	wire = append(wire, clientFrameBytes(0x01, []byte(`{"type":`), mask)...)
	wire = append(wire, clientFrameBytes(0x89, []byte("hi"), mask)...)
	wire = append(wire, clientFrameBytes(0x80, []byte(`"nothing"}`), mask)...)
	for cut := 1; cut < len(wire); cut++ {
		h := &Hub{ready: newReadyQueue()}
		c := &client{fd: -1}
		c.handling = true // keep the message in the inbox, unhandled
		for _, piece := range [][]byte{wire[:cut], wire[cut:]} {
			if err := h.received(c, bytes.Clone(piece)); err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
		}
		if string(c.inbox) != `{"type":"nothing"}` || len(c.out.control) != 1 || !bytes.Equal(c.out.control[0], controlFrame(opPong, []byte("hi"))) {
			t.Fatalf("cut at %d: message %q, control frames %q", cut, c.inbox, c.out.control)
		}
	}
}

// TestParentCell: the parent read from the id's bits is h3's, at every
// coarser resolution.
func TestParentCell(t *testing.T) {
	for _, s := range []string{"89309a4a1dbffff", "8f309a4a1dbd123", "8a1fb46622dffff", "85080003fffffff"} {
		c := h3.Cell(h3.IndexFromString(s))
		for r := 0; r <= c.Resolution(); r++ {
			if got, want := parentCell(uint64(c), r), c.Parent(r); got != want {
				t.Errorf("parent of %s at res %d: %s, want %s", s, r, got, want)
			}
		}
	}
}
