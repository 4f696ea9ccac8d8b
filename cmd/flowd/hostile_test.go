package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// gzipBomb returns a gzip body of n MiB of zero bytes in about n KiB: one
// compressed MiB repeated as gzip members, which readers concatenate.
func gzipBomb(n int) []byte {
	var member bytes.Buffer
	w, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	return bytes.Repeat(member.Bytes(), n)
}

// ingestAs posts an ingest body with a token and returns the status and the
// events the server acknowledged.
func ingestAs(client *http.Client, base, token, kind, ctype, encoding string, body []byte) (int, int, error) {
	req, err := http.NewRequest("POST", base+"/api/v1/ingest/"+kind, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+token)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var a ingestAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
		return resp.StatusCode, 0, fmt.Errorf("429 without Retry-After")
	}
	if resp.StatusCode != 200 {
		return resp.StatusCode, 0, nil
	}
	return resp.StatusCode, a.Accepted, nil
}

// TestHostileLoad runs slow-loris connections, gzip bombs, megabyte lines,
// malformed UTF-8, a request flood from one token and a live-connection
// flood against a real server at once, while a well-behaved reader measures
// its latency and a well-behaved feeder counts what was acknowledged. The
// reader must be answered within bounds throughout, the hostile requests
// must get their documented status codes, and every acknowledged event must
// be in the store, before and after a SIGKILL.
func TestHostileLoad(t *testing.T) {
	data := t.TempDir()
	flags := append(registryFlags(t), "-tokens", writeTokens(t),
		"-rate-limit", "100", "-rate-burst", "50", "-live-max-per-token", "3",
		"-max-events", "5000", "-max-decompressed", "8388608", "-max-body", "4194304", "-max-line", "65536")
	c := startFlowd(t, data, flags...)
	t0 := testT0()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	u, _ := url.Parse(c.url)

	var acked atomic.Int64 // swipes acknowledged with 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 100)
	report := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	// untilStop calls step(0), step(1), … in a goroutine until stop is
	// closed or step returns false.
	untilStop := func(step func(i int) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !step(i) {
					return
				}
			}
		}()
	}
	swipe := func(i int, card string) string {
		return fmt.Sprintf(`{"time":%d,"card":%q,"dir":"in","station":"S1"}`+"\n", t0.Unix()+int64(i%600), card)
	}

	// Slow-loris: connections that send a request a byte at a time and
	// connections that open and say nothing.
	var loris []net.Conn
	for i := range 200 {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatalf("slow-loris connection %d: %v", i, err)
		}
		loris = append(loris, conn)
	}
	defer func() {
		for _, conn := range loris {
			conn.Close()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		head := "POST /api/v1/ingest/swipes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokIngest + "\r\nContent-Length: 1000000\r\n"
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for j, conn := range loris {
				if j%2 == 0 {
					conn.Write([]byte{head[i%len(head)]})
				}
			}
		}
	}()

	// The well-behaved feeder: small batches, all of which must land.
	untilStop(func(i int) bool {
		var b strings.Builder
		for j := range 20 {
			b.WriteString(swipe(i*20+j, fmt.Sprintf("feeder-%d-%d", i, j)))
		}
		status, n, err := ingestAs(client, c.url, tokIngest, "swipes", "application/x-ndjson", "", []byte(b.String()))
		if err != nil || (status != 200 && status != 429) {
			report("feeder batch %d: %d %v", i, status, err)
			return false
		}
		acked.Add(int64(n))
		time.Sleep(20 * time.Millisecond)
		return true
	})

	// The flood: one token, many senders, as fast as they can.
	var floodOK, flood429 atomic.Int64
	for s := range 6 {
		untilStop(func(i int) bool {
			status, n, err := ingestAs(client, c.url, tokFlood, "swipes", "application/x-ndjson", "", []byte(swipe(i, fmt.Sprintf("flood-%d-%d", s, i))))
			if err != nil {
				report("flood: %v", err)
				return false
			}
			switch status {
			case 200:
				floodOK.Add(1)
				acked.Add(int64(n))
			case 429:
				flood429.Add(1)
			default:
				report("flood: status %d", status)
				return false
			}
			return true
		})
	}

	// Hostile bodies, sent over and over by another sender.
	megaLine := `{"time":` + fmt.Sprint(t0.Unix()) + `,"card":"` + strings.Repeat("M", 1<<20) + `","dir":"in","station":"S1"}` + "\n"
	badUTF8 := "{\"time\":" + fmt.Sprint(t0.Unix()) + ",\"card\":\"\xff\xfe\xc3\x28\",\"dir\":\"in\",\"station\":\"S\xed\xa0\x80\"}\n"
	bomb := gzipBomb(64)
	tooMany := bytes.Repeat([]byte(swipe(0, "too-many")), 5002)
	hostile := []struct {
		name, encoding string
		body           []byte
		want           int
		wantAccepted   int
	}{
		{"gzip bomb", "gzip", bomb, 413, 0},
		{"megabyte line", "", []byte(swipe(1, "mega-ok-1") + megaLine + swipe(2, "mega-ok-2")), 200, 2},
		{"malformed UTF-8", "", []byte(swipe(3, "utf8-ok-1") + badUTF8 + "\xff\xff\xff\n" + swipe(4, "utf8-ok-2")), 200, 2},
		{"too many events", "", tooMany, 413, 0},
		{"body over -max-body", "", bytes.Repeat([]byte("x"), 5<<20), 413, 0},
	}
	untilStop(func(i int) bool {
		h := hostile[i%len(hostile)]
		status, n, err := ingestAs(client, c.url, tokAdmin, "swipes", "application/x-ndjson", h.encoding, h.body)
		if err != nil && !strings.Contains(err.Error(), "connection reset") && !strings.Contains(err.Error(), "broken pipe") {
			report("%s: %v", h.name, err)
			return false
		}
		if err == nil && status != 429 && (status != h.want || n != h.wantAccepted) {
			report("%s: status %d, %d accepted; want %d, %d", h.name, status, n, h.want, h.wantAccepted)
			return false
		}
		acked.Add(int64(n))
		return true
	})

	// A degenerate polygon query once crashed H3; it must be a plain answer.
	degenerate := url.QueryEscape(`{"type":"Polygon","coordinates":[[[120.1,30.2],[120.1,30.21],[120.1,30.21]]]}`)
	if r := authDo(t, "GET", c.url+"/api/v1/density?metric=swipes_in&polygon="+degenerate, tokRead, "", nil); r.status >= 500 {
		t.Errorf("degenerate polygon: %s", r)
	}

	// The live connection limit per token: the fourth is refused, and a
	// slot comes back when a connection closes.
	ws := "ws" + strings.TrimPrefix(c.url, "http") + "/api/v1/live?token=" + tokRead
	var lives []*websocket.Conn
	for i := range 3 {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err != nil {
			t.Fatalf("live connection %d of 3: %v", i, err)
		}
		lives = append(lives, conn)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(ws, nil); err == nil || resp == nil || resp.StatusCode != 429 {
		t.Errorf("fourth live connection of one token: %v %v; want 429", resp, err)
	}
	lives[0].Close()
	waitFor(t, 10*time.Second, func() bool {
		conn, _, err := websocket.DefaultDialer.Dial(ws, nil)
		if err == nil {
			lives[0] = conn
		}
		return err == nil
	})
	if _, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.url, "http")+"/api/v1/live?token="+tokAdmin, nil); err != nil {
		t.Errorf("another token's live connection while the first is at its limit: %v", err)
	}

	// The well-behaved reader, measured.
	var lat []time.Duration
	query := fmt.Sprintf("/api/v1/series?metric=swipes_in&bbox=%s&from=%d&to=%d&step=10m", testBBox, t0.Unix(), t0.Add(20*time.Minute).Unix())
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		r := authDo(t, "GET", c.url+query, tokRead, "", nil)
		lat = append(lat, time.Since(start))
		if r.status != 200 {
			t.Errorf("reader during the attack: %s", r)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for _, conn := range lives {
		conn.Close()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("reader: %d queries, p50 %v, p99 %v, max %v; flood: %d served, %d refused with 429; %d events acknowledged",
		len(lat), p50, p99, lat[len(lat)-1], floodOK.Load(), flood429.Load(), acked.Load())
	if p99 > 2*time.Second || p50 > 500*time.Millisecond {
		t.Errorf("reader latency under attack: p50 %v, p99 %v; want p50 ≤ 500ms, p99 ≤ 2s", p50, p99)
	}
	if flood429.Load() == 0 {
		t.Error("the flooding token was never refused with 429")
	}
	if floodOK.Load() > int64(50+100*10) {
		t.Errorf("the flooding token got %d requests through at 100/s for under 10 s", floodOK.Load())
	}

	// Every acknowledged swipe is in the store, and still after SIGKILL;
	// an admin sees the exact count.
	total := func(c *child) int64 {
		// A query refused for load (429, 503: the flood's last requests
		// may still hold the slots) is asked again; any other answer but
		// 200 fails the test with what it said, rather than reading as a
		// total of 0.
		var r response
		for try := 0; ; try++ {
			r = authDo(t, "GET", c.url+fmt.Sprintf("/api/v1/series?metric=swipes_in&bbox=%s&from=%d&to=%d&step=20m", testBBox, t0.Unix(), t0.Add(20*time.Minute).Unix()), tokAdmin, "", nil)
			if (r.status != http.StatusTooManyRequests && r.status != http.StatusServiceUnavailable) || try == 20 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if r.status != http.StatusOK {
			t.Fatalf("the admin's count of swipes: %s", r)
		}
		var a seriesAnswer
		r.json(t, &a)
		return a.Total
	}
	if got := total(c); got != acked.Load() {
		t.Errorf("store holds %d swipes; %d were acknowledged", got, acked.Load())
	}
	c.kill()
	c2 := startFlowd(t, data, flags...)
	if got := total(c2); got != acked.Load() {
		t.Errorf("after SIGKILL the store holds %d swipes; %d were acknowledged", got, acked.Load())
	}
	c2.stop()
}

// TestLimitsAnswerClearly checks each limit's status code and message one
// at a time.
func TestLimitsAnswerClearly(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t),
		"-rate-limit", "1", "-rate-burst", "2", "-max-events", "10", "-max-decompressed", "1000", "-max-query-cost", "1000")...)
	t0 := testT0()
	lines := strings.Repeat(fmt.Sprintf(`{"time":%d,"card":"x","dir":"in","station":"S1"}`+"\n", t0.Unix()), 11)
	for _, tc := range []struct {
		name, encoding, body, token string
		want                        int
		msg                         string
	}{
		{"11 events", "", lines, tokIngest, 413, "more than 10 events"},
		{"11 events gzip", "gzip", lines, tokFlood, 413, "more than 10 events"},
		{"over -max-decompressed", "gzip", strings.Repeat(" ", 2000), tokAdmin, 413, "larger than 1000 bytes after gzip"},
	} {
		body := []byte(tc.body)
		if tc.encoding == "gzip" {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(body)
			w.Close()
			body = b.Bytes()
		}
		r := authDo(t, "POST", c.url+"/api/v1/ingest/swipes", tc.token, "application/x-ndjson", body, tc.encoding)
		if r.status != tc.want || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s: %s; want %d naming %q", tc.name, r, tc.want, tc.msg)
		}
	}
	r := authDo(t, "GET", c.url+fmt.Sprintf("/api/v1/series?metric=footfall_in&bbox=%s&from=%d&to=%d&step=1m", testBBox, t0.Unix(), t0.Add(24*time.Hour).Unix()), tokRead, "", nil)
	if r.status != 400 || !strings.Contains(string(r.body), "query cost limit of 1000") {
		t.Errorf("costly series: %s; want 400 naming the cost limit", r)
	}
	// A polygon's vertices, and a query's body, are bounded before the
	// polygon is covered with cells (one of a million vertices took 10 s).
	var ring strings.Builder
	ring.WriteString(`{"type":"Polygon","coordinates":[[`)
	for i := range 50000 {
		fmt.Fprintf(&ring, "[%.6f,%.6f],", 120.15+0.05*math.Cos(float64(i)/8000), 30.25+0.05*math.Sin(float64(i)/8000))
	}
	ring.WriteString(`[120.2,30.25]]]}`)
	form := []byte("metric=swipes_in&polygon=" + url.QueryEscape(ring.String()))
	start := time.Now()
	r = authDo(t, "POST", c.url+"/api/v1/density", tokAdmin, "application/x-www-form-urlencoded", form)
	if r.status != 400 || !strings.Contains(string(r.body), "50000 vertices; at most 10000 (-max-polygon-vertices)") || time.Since(start) > 2*time.Second {
		t.Errorf("a polygon of 50,000 vertices: %.300s after %v; want 400 naming the vertex limit at once", r, time.Since(start))
	}
	// Refused by its Content-Length before it is sent, as a client
	// waiting for 100-continue would see it.
	u, _ := url.Parse(c.url)
	got := rawExchange(t, u.Host, "POST /api/v1/density HTTP/1.1\r\nHost: "+u.Host+"\r\nAuthorization: Bearer "+tokAdmin+
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 413") || !strings.Contains(got, "larger than 4194304 bytes (-max-query-body)") {
		t.Errorf("a query body of 5,000,000 bytes: %.300q; want 413 naming -max-query-body", got)
	}

	// The rate: at most a burst of two at once, then 429 with Retry-After;
	// the read token has spent one credit on the cost query.
	var refused *http.Response
	for range 3 {
		req, _ := http.NewRequest("GET", c.url+"/api/v1/stations", nil)
		req.Header.Set("Authorization", "Bearer "+tokRead)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			refused = resp
		}
	}
	if refused == nil || refused.Header.Get("Retry-After") != "1" {
		t.Errorf("three quick requests at 1/s with a burst of 2 after one: refused %v; want a 429 with Retry-After 1", refused)
	}
}
