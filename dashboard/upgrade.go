package dashboard

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/privacy"
	"github.com/valyala/fasthttp"
)

// websocketGUID is the constant RFC 6455 mixes into the accept key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Handler returns the fasthttp handler of GET /api/v1/live. It answers
// the WebSocket handshake itself and takes the connection with
// ctx.Hijack, answering nothing through fasthttp, so that neither
// fasthttp's request context and read buffer nor a goroutine of its stays
// with the connection. The server must keep hijacked connections open
// (fasthttp.Server.KeepHijackedConns, as api.Server sets it).
func (h *Hub) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		accept, status, err := handshake(&ctx.Request.Header)
		if err != nil {
			if status == fasthttp.StatusUpgradeRequired {
				ctx.Response.Header.Set("Sec-WebSocket-Version", "13")
			}
			answer.Error(ctx, status, err)
			return
		}
		if int(h.open.Load()) >= h.opts.MaxClients {
			h.refused.Add(1)
			answer.Error(ctx, fasthttp.StatusServiceUnavailable, errors.New("too many live clients; try again later"))
			return
		}
		h.open.Add(1)
		exact, _ := ctx.UserValue(privacy.ExactKey).(bool)
		deflate := negotiateDeflate(string(ctx.Request.Header.Peek("Sec-WebSocket-Extensions")))
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(conn net.Conn) { h.accept(conn, accept, exact, deflate) })
	}
}

// handshake checks a WebSocket opening handshake and returns the
// Sec-WebSocket-Accept value to answer it with, or the status and error
// to refuse it with.
func handshake(hdr *fasthttp.RequestHeader) (string, int, error) {
	if !headerHasToken(hdr, "Upgrade", "websocket") {
		return "", fasthttp.StatusBadRequest, fmt.Errorf("header \"Upgrade\" is %q; want \"websocket\": this endpoint is a WebSocket", hdr.Peek("Upgrade"))
	}
	if !headerHasToken(hdr, "Connection", "upgrade") {
		return "", fasthttp.StatusBadRequest, fmt.Errorf("header \"Connection\" is %q; want \"Upgrade\"", hdr.Peek("Connection"))
	}
	if v := string(hdr.Peek("Sec-WebSocket-Version")); v != "13" {
		return "", fasthttp.StatusUpgradeRequired, fmt.Errorf("header \"Sec-WebSocket-Version\" is %q; want 13", v)
	}
	key := strings.TrimSpace(string(hdr.Peek("Sec-WebSocket-Key")))
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return "", fasthttp.StatusBadRequest, fmt.Errorf("header \"Sec-WebSocket-Key\" is %q; want 16 bytes in base64", key)
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:]), 0, nil
}

// headerHasToken reports whether the comma-separated header name holds
// token, in any case.
func headerHasToken(hdr *fasthttp.RequestHeader, name, token string) bool {
	for _, v := range strings.Split(string(hdr.Peek(name)), ",") {
		if strings.EqualFold(strings.TrimSpace(v), token) {
			return true
		}
	}
	return false
}

// aLongTimeAgo is a deadline that has passed: a read under it returns at
// once with what is already buffered, if anything.
var aLongTimeAgo = time.Unix(1, 0)

// accept finishes the handshake on the hijacked connection hj and hands it
// to a client of its own. hj reads through fasthttp's buffered reader; the
// client reads the connection under it, so the reader (64 KiB in flowd) is
// left to the garbage collector. A client that sent bytes before the
// handshake's answer (RFC 6455 §4.1 forbids it) would lose them there,
// so it is refused. exact says the caller may see exact figures about
// people (privacy.OffLive); deflate, that the client's offer of
// permessage-deflate is taken.
func (h *Hub) accept(hj net.Conn, accept string, exact, deflate bool) {
	conn := hj
	if u, ok := hj.(interface{ UnsafeConn() net.Conn }); ok {
		conn = u.UnsafeConn()
	}
	var early [1]byte
	conn.SetReadDeadline(aLongTimeAgo)
	n, _ := hj.Read(early[:])
	conn.SetReadDeadline(time.Time{})
	conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	var err error
	if n > 0 {
		_, err = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
	} else {
		ext := ""
		if deflate {
			ext = "Sec-WebSocket-Extensions: " + deflateResponse + "\r\n"
		}
		_, err = conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n" + ext + "\r\n"))
	}
	conn.SetWriteDeadline(time.Time{})
	if n > 0 || err != nil {
		h.open.Add(-1)
		conn.Close()
		return
	}
	c := newClient(conn)
	c.exact, c.deflate = exact, deflate
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		h.open.Add(-1)
		conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	c.pingSlice = h.nextSlice
	h.nextSlice = (h.nextSlice + 1) % h.pingSlices()
	if deflate {
		h.deflating++
	}
	h.mu.Unlock()
	h.rouse()
	if c.raw == nil || h.poller == nil || h.poller.add(c) != nil {
		go h.read(c)
	}
}
