package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/gorilla/websocket"
)

// LiveResult is one run of the live map benchmark: N WebSocket clients
// subscribed to one viewport while detector counts are posted as fast as
// flowd takes them.
type LiveResult struct {
	Clients    int
	Connected  int
	Seconds    float64
	IngestRate float64       // events per second acknowledged meanwhile
	Frames     int64         // cell frames received by all clients
	FrameP50   time.Duration // a frame's arrival after the first client got that tick's frame
	FrameP99   time.Duration
	// EventToFrame is from an ingest request's acknowledgement to the first
	// frame of the next tick at any client: median and 99th percentile.
	EventToFrame, EventToFrameP99 time.Duration
	// Freshness is the longest time, over a few tries, from a batch's
	// acknowledgement until a query answers with it.
	Freshness  time.Duration
	RSSPerConn float64 // bytes of server RSS per connection
}

// FramesPerSecond is the frames delivered per second over the run.
func (r LiveResult) FramesPerSecond() float64 { return float64(r.Frames) / r.Seconds }

// liveSensors is how many of the city's sensors the load posts counts for:
// the first ones, along one road, so that a small viewport holds them.
const liveSensors = 2000

// Live connects clients to p's /api/v1/live, subscribes each to the cells
// around the city's first sensors, posts counts stamped with the current
// time from senders goroutines for d, and measures what the clients get.
// flowd must hold the city's registries and allow that many clients.
func Live(ctx context.Context, p *Proc, c *city.City, clients, senders int, d time.Duration) (LiveResult, error) {
	r := LiveResult{Clients: clients}
	sensors := c.Sensors[:min(liveSensors, len(c.Sensors))]
	bbox := [4]float64{180, 90, -180, -90}
	for _, s := range sensors[:50] {
		bbox[0], bbox[1] = min(bbox[0], s.Pos.Lng), min(bbox[1], s.Pos.Lat)
		bbox[2], bbox[3] = max(bbox[2], s.Pos.Lng), max(bbox[3], s.Pos.Lat)
	}
	bbox[0], bbox[1], bbox[2], bbox[3] = bbox[0]-0.002, bbox[1]-0.002, bbox[2]+0.002, bbox[3]+0.002
	sub := fmt.Sprintf(`{"type":"subscribe","bbox":[%f,%f,%f,%f],"res":9,"metric":"count_car"}`, bbox[0], bbox[1], bbox[2], bbox[3])

	rss0, _ := p.RSS()
	wsURL := "ws" + strings.TrimPrefix(p.URL, "http") + "/api/v1/live"
	conns := make([]*websocket.Conn, 0, clients)
	var mu sync.Mutex
	var wg sync.WaitGroup
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	sem := make(chan struct{}, 64)
	var dialErr atomic.Value
	for range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, _, err := dialer.DialContext(ctx, wsURL, nil)
			if err == nil {
				err = conn.WriteMessage(websocket.TextMessage, []byte(sub))
			}
			if err != nil {
				dialErr.Store(err)
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.Connected = len(conns)
	if r.Connected < clients {
		err, _ := dialErr.Load().(error)
		return r, fmt.Errorf("%d of %d live clients connected: %v", r.Connected, clients, err)
	}
	time.Sleep(2 * time.Second) // snapshots and the first ticks
	if rss1, err := p.RSS(); err == nil && clients > 0 {
		r.RSSPerConn = float64(rss1-rss0) / float64(clients)
	}

	// Arrivals of each tick's frame (keyed by its "t") at every client.
	type arrival struct {
		tick int64
		at   time.Time
	}
	arrivals := make(chan arrival, 1<<16)
	var frames atomic.Int64
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	for _, conn := range conns {
		go func() {
			<-readCtx.Done()
			conn.Close()
		}()
		go func() {
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				if !bytes.HasPrefix(msg, []byte(`{"type":"cells"`)) {
					continue
				}
				frames.Add(1)
				if tick, ok := jsonInt(msg, `"t":`); ok {
					select {
					case arrivals <- arrival{tick, now}:
					default:
					}
				}
			}
		}()
	}
	firstAt := map[int64]time.Time{}
	var gaps []time.Duration
	var collected sync.WaitGroup
	collected.Add(1)
	go func() {
		defer collected.Done()
		var all []arrival
		for a := range arrivals {
			all = append(all, a)
		}
		for _, a := range all {
			if f, ok := firstAt[a.tick]; !ok || a.at.Before(f) {
				firstAt[a.tick] = a.at
			}
		}
		for _, a := range all {
			gaps = append(gaps, a.at.Sub(firstAt[a.tick]))
		}
	}()

	// Load: counts for the sensors, stamped now, as fast as acknowledged.
	loadCtx, stopLoad := context.WithTimeout(ctx, d)
	defer stopLoad()
	client := &http.Client{Timeout: 30 * time.Second}
	var events atomic.Int64
	var ackMu sync.Mutex
	var acks []time.Time
	var loadWG sync.WaitGroup
	start := time.Now()
	for s := range senders {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			var body []byte
			for loadCtx.Err() == nil {
				body = body[:0]
				ts := time.Now().Unix()
				for i, sn := range sensors {
					body = fmt.Appendf(body, `{"time":%d,"sensor":%q,"class":"car","count":%d}`+"\n", ts, sn.ID, 1+(i+s)%7)
				}
				if n, err := postNDJSON(loadCtx, client, p.URL, body); err == nil {
					events.Add(int64(n))
					ackMu.Lock()
					acks = append(acks, time.Now())
					ackMu.Unlock()
				}
			}
		}()
	}
	loadWG.Wait()
	r.Seconds = time.Since(start).Seconds()
	r.IngestRate = float64(events.Load()) / r.Seconds
	fresh, err := freshness(ctx, client, p.URL, sensors[0])
	if err != nil {
		return r, err
	}
	r.Freshness = fresh
	time.Sleep(1500 * time.Millisecond) // the last ticks
	r.Frames = frames.Load()
	stopRead()
	close(arrivals)
	collected.Wait()
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	if len(gaps) > 0 {
		r.FrameP50, r.FrameP99 = gaps[len(gaps)/2], gaps[len(gaps)*99/100]
	}
	// An acknowledged event reaches the clients with the first tick after
	// it: the first arrival of that tick's frame at any client.
	ticks := make([]time.Time, 0, len(firstAt))
	for _, t := range firstAt {
		ticks = append(ticks, t)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Before(ticks[j]) })
	var lat []time.Duration
	for _, a := range acks {
		i := sort.Search(len(ticks), func(i int) bool { return ticks[i].After(a) })
		if i < len(ticks) {
			lat = append(lat, ticks[i].Sub(a))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		r.EventToFrame, r.EventToFrameP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

// freshness posts a bus count for sensor s (a class the load does not
// post) five times and asks /api/v1/series for the sensor's cell right after
// each acknowledgement, until the new total shows; it returns the longest
// wait.
func freshness(ctx context.Context, client *http.Client, base string, s city.Sensor) (time.Duration, error) {
	cell, err := cellOf(s.Pos.Lat, s.Pos.Lng)
	if err != nil {
		return 0, err
	}
	var worst time.Duration
	from := time.Now().Add(-time.Minute).Unix()
	for i := int64(1); i <= 5; i++ {
		body := fmt.Appendf(nil, `{"time":%d,"sensor":%q,"class":"bus","count":1}`+"\n", time.Now().Unix(), s.ID)
		if _, err := postNDJSON(ctx, client, base, body); err != nil {
			return 0, err
		}
		acked := time.Now()
		for {
			q := fmt.Sprintf("%s/api/v1/series?metric=count_bus&cells=%s&from=%d&step=5m", base, cell, from)
			resp, err := client.Get(q)
			if err != nil {
				return 0, err
			}
			var a struct{ Total int64 }
			err = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			if err != nil {
				return 0, err
			}
			if a.Total >= i {
				worst = max(worst, time.Since(acked))
				break
			}
			if time.Since(acked) > 10*time.Second {
				return 0, fmt.Errorf("a count acknowledged 10 s ago is not in /api/v1/series")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return worst, nil
}

// cellOf is the hex id of the res-9 cell of a point, as flowd names it.
func cellOf(lat, lng float64) (string, error) {
	c, err := geo.CellOf(lat, lng, 9)
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// jsonInt reads the integer after the first occurrence of key in msg.
func jsonInt(msg []byte, key string) (int64, bool) {
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '-') {
		j++
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return v, err == nil
}

func postNDJSON(ctx context.Context, client *http.Client, base string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/ingest/counts", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return bytes.Count(body, []byte("\n")), nil
}
