package dashboard

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// maxClientMessage bounds what a client may send in one message; a
// subscription is well under it.
const maxClientMessage = 4096

// client is one WebSocket connection. Its fields other than conn and send
// are guarded by the hub's mutex.
type client struct {
	conn      *websocket.Conn
	send      chan *websocket.PreparedMessage
	shape     *shape
	needsFull bool
	skips     int
	closed    bool
}

// subscription is a client's request for a viewport, resolution and metric.
type subscription struct {
	Type   string     `json:"type"`
	BBox   [4]float64 `json:"bbox"`
	Res    int        `json:"res"`
	Metric string     `json:"metric"`
}

// Handler returns the fasthttp handler of GET /api/v1/live: a net/http
// WebSocket upgrade served through fasthttp's adaptor, which hands the
// hijacked connection to the hub.
func (h *Hub) Handler() fasthttp.RequestHandler {
	up := &websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 16 << 10,
		// The page is served by flowd itself; tools that dial from
		// elsewhere carry their own Origin or none, and every endpoint is
		// guarded by the same access rules as the rest of the API.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		full := len(h.clients) >= h.opts.MaxClients
		if full {
			h.stats.Refused++
		}
		h.mu.Unlock()
		if full {
			http.Error(w, `{"error":"too many live clients; try again later"}`, http.StatusServiceUnavailable)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the client
		}
		h.serve(conn)
	}))
}

// serve runs one connection: a writer goroutine drains the client's queue
// and pings, and this goroutine reads subscriptions until the connection
// ends.
func (h *Hub) serve(conn *websocket.Conn) {
	c := &client{conn: conn, send: make(chan *websocket.PreparedMessage, h.opts.SendBuffer)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	go h.writeLoop(c)

	conn.SetReadLimit(maxClientMessage)
	pongWait := 2 * h.opts.PingInterval
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			h.drop(c, "read: "+err.Error(), false)
			return
		}
		conn.SetReadDeadline(time.Now().Add(pongWait))
		var sub subscription
		if err := json.Unmarshal(data, &sub); err != nil {
			h.sendError(c, "message is not JSON: "+err.Error())
			continue
		}
		if sub.Type != "subscribe" {
			h.sendError(c, `unknown message type "`+sub.Type+`"; want "subscribe"`)
			continue
		}
		if err := h.subscribe(c, sub); err != nil {
			h.sendError(c, "subscribe: "+err.Error())
		}
	}
}

// sendError queues an error message for c alone.
func (h *Hub) sendError(c *client, msg string) {
	data, err := json.Marshal(map[string]string{"type": "error", "error": msg})
	if err != nil {
		panic("BUG: marshal an error message: " + err.Error())
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		panic("BUG: prepare a text message: " + err.Error())
	}
	h.mu.Lock()
	h.enqueueLocked(c, pm)
	h.mu.Unlock()
}

// writeLoop writes c's queued frames and the keepalive pings, each under
// its own deadline: fasthttp clears deadlines on hijack.
func (h *Hub) writeLoop(c *client) {
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case msg, ok := <-c.send:
			if !ok {
				c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
				c.conn.Close()
				return
			}
			c.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			if err := c.conn.WritePreparedMessage(msg); err != nil {
				h.drop(c, "write: "+err.Error(), true)
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteTimeout)); err != nil {
				h.drop(c, "ping: "+err.Error(), true)
				return
			}
		}
	}
}

func (h *Hub) drop(c *client, why string, slow bool) {
	h.mu.Lock()
	h.dropLocked(c, why, slow)
	h.mu.Unlock()
}

// dropLocked removes c. A slow client's connection is closed at once, which
// also ends a write blocked on it; otherwise its writer sends a close frame.
func (h *Hub) dropLocked(c *client, why string, slow bool) {
	if c.closed {
		return
	}
	c.closed = true
	delete(h.clients, c)
	h.leaveShapeLocked(c)
	if slow {
		h.stats.Dropped++
		h.opts.Logf("live: dropped client %s: %s", c.conn.RemoteAddr(), why)
		c.conn.Close()
	}
	close(c.send)
}
