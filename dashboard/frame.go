package dashboard

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WebSocket framing (RFC 6455), as much as the live feed needs. A server
// frame is built once, header and payload in one buffer, and that buffer
// is written as it is to every client that should get it: no copy and no
// write buffer per connection. Client frames are small (subscriptions,
// pongs, a close) and are parsed from whatever a read brought, so that
// reading a connection needs no goroutine waiting on it.

// Opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes the hub sends.
const (
	closeNormal      = 1000
	closeGoingAway   = 1001
	closeProtocol    = 1002
	closePolicy      = 1008
	closeTooBig      = 1009
	maxControlLength = 125
)

// maxFrameHeader is the longest server frame header: FIN and opcode, the
// length marker and a 64-bit length (server frames are not masked).
const maxFrameHeader = 10

// newFrame returns a buffer to append a message's payload to, with room
// in front for the header that sealFrame writes.
func newFrame(payloadCap int) []byte {
	return make([]byte, maxFrameHeader, maxFrameHeader+payloadCap)
}

// sealFrame writes the header of a final, unmasked frame of opcode op in
// front of the payload appended to buf (from newFrame) and returns the
// frame.
func sealFrame(buf []byte, op byte) []byte {
	n := len(buf) - maxFrameHeader
	var h []byte
	switch {
	case n < 126:
		h = buf[maxFrameHeader-2 : maxFrameHeader]
		h[1] = byte(n)
	case n <= 0xffff:
		h = buf[maxFrameHeader-4 : maxFrameHeader]
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = buf[:maxFrameHeader]
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h[0] = 0x80 | op
	return buf[maxFrameHeader-len(h):]
}

// textFrame returns msg as one text frame.
func textFrame(msg []byte) []byte {
	return sealFrame(append(newFrame(len(msg)), msg...), opText)
}

// controlFrame returns a close, ping or pong frame carrying payload.
func controlFrame(op byte, payload []byte) []byte {
	if len(payload) > maxControlLength {
		panic(fmt.Sprintf("BUG: control frame of %d bytes", len(payload)))
	}
	return sealFrame(append(newFrame(len(payload)), payload...), op)
}

// closeFrame returns a close frame with a status code and a reason, cut
// to fit a control frame.
func closeFrame(code int, reason string) []byte {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, maxControlLength), uint16(code))
	if len(reason) > maxControlLength-2 {
		reason = reason[:maxControlLength-2]
	}
	return controlFrame(opClose, append(p, reason...))
}

// pingFrame is the keepalive every client gets; browsers answer it.
var pingFrame = controlFrame(opPing, nil)

// closeError ends a connection with a close frame of its code: the client
// broke the protocol, or said it was leaving.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return fmt.Sprintf("close %d: %s", e.code, e.reason) }

func protocolError(format string, args ...any) error {
	return &closeError{closeProtocol, fmt.Sprintf(format, args...)}
}

// clientFrame is one frame from a client, its payload unmasked.
type clientFrame struct {
	fin        bool
	op         byte
	compressed bool // RSV1: the first frame of a compressed message
	payload    []byte
}

// nextFrame parses the frame at the start of b, unmasking its payload in
// place; n is the bytes it took, 0 when b holds only the start of one.
// Client frames must be masked, and a payload longer than limit is refused
// as soon as its header shows it. deflate says permessage-deflate was
// agreed: RSV1 may then mark a message's first frame as compressed.
func nextFrame(b []byte, limit int, deflate bool) (f clientFrame, n int, err error) {
	if len(b) < 2 {
		return f, 0, nil
	}
	f.fin, f.op, f.compressed = b[0]&0x80 != 0, b[0]&0x0f, b[0]&rsv1 != 0
	switch {
	case b[0]&0x30 != 0 || f.compressed && !deflate:
		return f, 0, protocolError("reserved bits %#x set; no extension was agreed that uses them", b[0]&0x70)
	case f.compressed && f.op != opText && f.op != opBinary:
		return f, 0, protocolError("RSV1 set on a frame of opcode %#x; only a message's first frame may say it is compressed", f.op)
	}
	if b[1]&0x80 == 0 {
		return f, 0, protocolError("client frame not masked")
	}
	size, hl := uint64(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return f, 0, nil
		}
		size, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return f, 0, nil
		}
		size, hl = binary.BigEndian.Uint64(b[2:]), 10
	}
	if f.op >= opClose && (!f.fin || size > maxControlLength) {
		return f, 0, protocolError("control frame %#x: fragmented or longer than %d bytes", f.op, maxControlLength)
	}
	if size > uint64(limit) {
		return f, 0, &closeError{closeTooBig, fmt.Sprintf("message longer than %d bytes", limit)}
	}
	n = hl + 4 + int(size)
	if len(b) < n {
		return f, 0, nil
	}
	mask := b[hl : hl+4]
	f.payload = b[hl+4 : n]
	for i := range f.payload {
		f.payload[i] ^= mask[i&3]
	}
	return f, n, nil
}

// errClientClosed ends a connection whose client sent a close frame.
var errClientClosed = errors.New("client closed the connection")
