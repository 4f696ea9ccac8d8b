package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowd/flowd/internal/testlock"
)

// raiseOpenFiles lifts this process's soft limit on open files to n, or
// skips the test when the hard limit is lower.
func raiseOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("the open-file limit is %d; this test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot raise the open-file limit to %d: %v", n, err)
	}
}

// slowConns is an attacker holding n connections from one address, each
// sending a request header a byte a second; as slowloris does, a
// connection the server closed is opened again (after a second or two).
type slowConns struct {
	open, dialed, lost atomic.Int64
	stop               chan struct{}
	stopOnce           sync.Once
	wg                 sync.WaitGroup
}

func startSlowConns(t *testing.T, host string, from []net.IP, n int) *slowConns {
	t.Helper()
	a := &slowConns{stop: make(chan struct{})}
	head := "GET /api/v1/stations?token=" + tokRead + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tokAdmin + "\r\nX-Padding: " + strings.Repeat("p", 200) + "\r\n"
	var ready sync.WaitGroup
	ready.Add(n)
	for i := range n {
		a.wg.Add(1)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from[i%len(from)]}, Timeout: 5 * time.Second}
		go func() {
			defer a.wg.Done()
			pause := func() bool {
				select {
				case <-a.stop:
					return false
				case <-time.After(time.Second + time.Duration(i%1000)*time.Millisecond):
					return true
				}
			}
			for first := true; ; first = false {
				conn, err := d.Dial("tcp", host)
				if first {
					ready.Done()
				}
				if err == nil {
					a.dialed.Add(1)
					a.open.Add(1)
					for j := i; err == nil; j++ {
						if !pause() {
							conn.Close()
							a.open.Add(-1)
							return
						}
						_, err = conn.Write([]byte{head[j%len(head)]})
					}
					conn.Close()
					a.open.Add(-1)
					a.lost.Add(1)
				}
				if !pause() {
					return
				}
			}
		}()
	}
	ready.Wait()
	return a
}

// Stop closes every connection and waits for the attacker to end.
func (a *slowConns) Stop() {
	a.stopOnce.Do(func() { close(a.stop) })
	a.wg.Wait()
}

// slowConnCount is how many slow connections the suite's test opens:
// FLOWD_SLOW_CONNS, 10,000 by default.
func slowConnCount(t *testing.T) int {
	if s := os.Getenv("FLOWD_SLOW_CONNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("FLOWD_SLOW_CONNS=%q: want a positive number", s)
		}
		return n
	}
	return 10000
}

// TestSlowConnectionsDoNotStarveReaders opens 10,000 connections that
// send their headers a byte a second, from one address and then from a
// hundred, while a reader with a token queries from 127.0.0.1, half of its
// requests on new connections: every request must be answered 200, with
// p99 under a second. The attack must not reach the log but as a few
// lines of counts, none quoting a token or a query string.
func TestSlowConnectionsDoNotStarveReaders(t *testing.T) {
	testlock.Alone(t) // not beside the browser drawing 20,000 hexagons
	n := slowConnCount(t)
	raiseOpenFiles(t, uint64(n)+1024)
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("this machine has no 127.0.0.2 to attack from: %v", err)
	} else {
		ln.Close()
	}
	for _, addrs := range []int{1, 100} {
		t.Run(fmt.Sprintf("from %d addresses", addrs), func(t *testing.T) {
			var from []net.IP
			for i := range addrs {
				from = append(from, net.IPv4(127, 0, 1+byte(i/250), 2+byte(i%250)))
			}
			c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t))...)
			u, _ := url.Parse(c.url)
			logsBefore := strings.Count(c.Logs(), "\n")

			start := time.Now()
			a := startSlowConns(t, u.Host, from, n)
			defer a.Stop()
			t.Logf("%d slow connections dialled in %v", n, time.Since(start).Round(time.Millisecond))
			lat, failures := readUnderAttack(c.url, 8*time.Second)
			open, dialed, lost := a.open.Load(), a.dialed.Load(), a.lost.Load()
			a.Stop()
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			t.Logf("reader: %d requests, p50 %v, p99 %v, max %v; attacker: %d open at the end, %d dialled, %d found closed by the server",
				len(lat), p50, p99, lat[len(lat)-1], open, dialed, lost)
			if len(failures) > 0 {
				t.Errorf("%d of %d reader requests failed, first: %s", len(failures), len(lat), failures[0])
			}
			if p99 > time.Second {
				t.Errorf("reader p99 %v under %d slow connections; want under 1s", p99, n)
			}
			if r := authDo(t, "GET", c.url+"/healthz", "", "", nil); r.status != 200 {
				t.Errorf("after the attack: /healthz %s", r)
			}
			logs := c.Logs()
			if grown := strings.Count(logs, "\n") - logsBefore; grown > 5 {
				t.Errorf("the log grew by %d lines during the attack:\n%.2000s", grown, logs)
			}
			for _, secret := range []string{tokRead, tokAdmin, "token=", "Bearer", "X-Padding"} {
				if strings.Contains(logs, secret) {
					t.Errorf("the log quotes %q:\n%.2000s", secret, logs)
				}
			}
		})
	}
}

// readUnderAttack sends authenticated reads for d, every other one on a
// new connection, and returns their latencies, sorted, and the failures.
func readUnderAttack(base string, d time.Duration) ([]time.Duration, []string) {
	kept := &http.Client{Timeout: 10 * time.Second}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	var failures []string
	for i, deadline := 0, time.Now().Add(d); time.Now().Before(deadline); i++ {
		client := kept
		if i%2 == 1 {
			client = fresh
		}
		req, _ := http.NewRequest("GET", base+"/api/v1/stations", nil)
		req.Header.Set("Authorization", "Bearer "+tokRead)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			failures = append(failures, err.Error())
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
			}
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	slices.Sort(lat)
	return lat, failures
}

// rawExchange sends req on a new connection and returns all the server
// wrote back before closing it or going quiet for a second.
func rawExchange(t *testing.T, host, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(req))
	conn.SetReadDeadline(time.Now().Add(time.Second))
	out, _ := io.ReadAll(conn)
	return string(out)
}

// TestBadRequestsEchoNothing sends requests the HTTP layer cannot take,
// each carrying a token in its header and its query string: the answer
// names what was wrong and quotes nothing of the request, and hundreds of
// them add a line or two to the log, quoting nothing either.
func TestBadRequestsEchoNothing(t *testing.T) {
	c := startFlowd(t, t.TempDir(), "-tokens", writeTokens(t))
	u, _ := url.Parse(c.url)
	logsBefore := strings.Count(c.Logs(), "\n")
	secretHead := "GET /api/v1/stations?token=" + tokRead + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + tokAdmin + "\r\n"
	for _, tc := range []struct {
		name, req, want string
	}{
		{"a header line without a colon", secretHead + "this is no header\r\n\r\n", "400 Bad Request"},
		{"a header larger than the read buffer", secretHead + "X-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", "431 Request Header Fields Too Large"},
		{"a garbled request line", "GET /?token=" + tokRead + " HTTP/1.1 extra\r\nAuthorization: Bearer " + tokAdmin + "\r\n\r\n", "400 Bad Request"},
		{"Content-Length and Transfer-Encoding together",
			"POST /api/v1/ingest/swipes?token=" + tokRead + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + tokAdmin +
				"\r\nContent-Type: application/x-ndjson\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400 Bad Request"},
	} {
		got := rawExchange(t, u.Host, tc.req)
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.want) {
			t.Errorf("%s: answered %.300q; want %s", tc.name, got, tc.want)
		}
		for _, secret := range []string{tokRead, tokAdmin, "Bearer", "token="} {
			if strings.Contains(got, secret) {
				t.Errorf("%s: the answer quotes %q: %.300q", tc.name, secret, got)
			}
		}
	}
	for range 300 {
		rawExchange(t, u.Host, secretHead+"this is no header\r\n\r\n")
	}
	logs := c.Logs()
	if grown := strings.Count(logs, "\n") - logsBefore; grown > 3 {
		t.Errorf("the log grew by %d lines for 304 bad requests:\n%.2000s", grown, logs)
	}
	for _, secret := range []string{tokRead, tokAdmin, "Bearer", "token="} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log quotes %q:\n%.2000s", secret, logs)
		}
	}
}

// TestErrorsQuoteShortPrefixes sends huge bad parameters to the queries
// that take them: each answer names the parameter and quotes at most a
// short prefix of what was sent.
func TestErrorsQuoteShortPrefixes(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t))...)
	var ring strings.Builder
	ring.WriteString(`{"type":"Polygon","coordinates":[[`)
	for i := range 100000 {
		fmt.Fprintf(&ring, "[120.%06d,30.%06d],", i, i)
	}
	ring.WriteString(`[120.1,30.1]]]}`)
	polygon := ring.String() // 2.4 MB
	longBBox := strings.Repeat("1", 40000)
	badPath := `{"path":[[30.1,120.1],[` + strings.Repeat("9", 2<<20) + `]],"metric":"swipes_in"}`
	for _, tc := range []struct {
		name, method, path, ctype, body, param string
	}{
		{"a 2 MB polygon", "POST", "/api/v1/density", "application/x-www-form-urlencoded", "metric=swipes_in&polygon=" + url.QueryEscape(polygon), "polygon"},
		{"a 40 kB bbox", "GET", "/api/v1/series?metric=swipes_in&bbox=" + longBBox, "", "", "bbox"},
		{"a 2 MB path", "POST", "/api/v1/corridor", "application/json", badPath, "path"},
		{"a 2 MB JSON body", "POST", "/api/v1/path/density", "application/json", `{"paths":"` + strings.Repeat("p", 2<<20), "body"},
	} {
		r := authDo(t, tc.method, c.url+tc.path, tokRead, tc.ctype, []byte(tc.body))
		if r.status != 400 || !strings.Contains(string(r.body), `\"`+tc.param+`\"`) {
			t.Errorf("%s: %.300s; want 400 naming %q", tc.name, r, tc.param)
		}
		if len(r.body) > 1024 {
			t.Errorf("%s: the answer is %d bytes: %.300s…", tc.name, len(r.body), r.body)
		}
	}
}
