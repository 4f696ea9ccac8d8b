package ingest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// The tests here hold the server to what a body streamed into the
// decoder must not change: the body limits, the body timeout, nothing
// kept of a body that did not arrive whole, and no byte of a body left
// to be read as the next request after an early answer.

// countLine is one reading of n cars at sensor C1, now.
func countLine(n int) string {
	return fmt.Sprintf(`{"time":%q,"sensor":"C1","class":"car","count":%d}`+"\n", timeText(time.Now()), n)
}

// carsKept is the cars the store holds.
func carsKept(t *testing.T, fs *flowdtest.Server) int64 {
	t.Helper()
	if err := fs.Store.Flush(); err != nil {
		t.Fatal(err)
	}
	var total int64
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	if err := fs.Store.Scan(storage.TierMinute, "count_car", all, 0, 1<<40, func(_ uint64, _, v int64) { total += v }); err != nil {
		t.Fatal(err)
	}
	return total
}

// head is the request line and header of a POST of NDJSON to path,
// with the given framing header ("Content-Length: n" or
// "Transfer-Encoding: chunked").
func head(path, framing string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: flowd\r\nContent-Type: application/x-ndjson\r\n" + framing + "\r\n\r\n"
}

// withLength is a whole request of body to path, framed by its length.
func withLength(path, body string) string {
	return head(path, fmt.Sprintf("Content-Length: %d", len(body))) + body
}

// chunked frames body in chunks of 4 KiB, with the last chunk when end.
func chunked(body string, end bool) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 4096)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	if end {
		b.WriteString("0\r\n\r\n")
	}
	return b.String()
}

// rawConn is a client connection that writes requests as given and reads
// the answers.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, fs *flowdtest.Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(fs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// answer reads the next answer within d: its status and body, or the
// error when the connection ended first.
func (c *rawConn) answer(d time.Duration) (int, string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// closed reports whether the server closed the connection within d,
// having written nothing more.
func (c *rawConn) closed(d time.Duration) (bool, string) {
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c.br)
	var ne net.Error
	timedOut := errors.As(err, &ne) && ne.Timeout()
	return !timedOut && len(b) == 0, string(b)
}

// TestUploadOverBodyLimitIsRefused: an upload larger than -max-body is
// refused with 413 naming the flag, whether its Content-Length says so
// (before a byte of it is sent) or its chunks grow past the limit, and
// nothing of it is kept.
func TestUploadOverBodyLimitIsRefused(t *testing.T) {
	fs := startIngestWith(t, func(*ingest.Handler) {}, func(fs *flowdtest.Server) { fs.MaxBody = 64 << 10 })
	lines := strings.Repeat(countLine(1), 2000) // about 140 KB
	for _, tc := range []struct{ name, req string }{
		{"Content-Length, the header alone", head("/api/v1/ingest/counts", "Content-Length: 200000")},
		{"chunks past the limit, the last chunk not sent", head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(lines, false)},
		{"chunks past the limit, the whole body", head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(lines, true)},
	} {
		c := dialRaw(t, fs)
		go c.Write([]byte(tc.req))
		status, body, err := c.answer(5 * time.Second)
		if err != nil || status != 413 || !strings.Contains(body, "larger than 65536 bytes (-max-body)") {
			t.Errorf("%s: %d %.300q %v; want 413 naming -max-body", tc.name, status, body, err)
		}
		if ok, more := c.closed(5 * time.Second); !ok {
			t.Errorf("%s: the connection stayed open or went on with %.300q; want it closed", tc.name, more)
		}
	}
	if n := carsKept(t, fs); n != 0 {
		t.Errorf("the store holds %d cars of bodies refused whole", n)
	}
}

// TestQueryBodyOverLimitIsRefused: a query's body is held to the query
// body limit, chunked or not, rather than the upload limit: the answer
// is 413 naming -max-query-body once the limit is passed, without the
// rest of the body.
func TestQueryBodyOverLimitIsRefused(t *testing.T) {
	fs := startIngest(t)
	form := "metric=count_car&polygon=" + strings.Repeat("x", api.DefaultMaxQueryBody)
	for _, tc := range []struct{ name, req string }{
		{"Content-Length, the header alone", "POST /api/v1/density HTTP/1.1\r\nHost: flowd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n"},
		{"multipart, Content-Length, the header alone", "POST /api/v1/density HTTP/1.1\r\nHost: flowd\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000\r\n\r\n--b\r\n"},
		{"chunks past the limit, the rest not sent", "POST /api/v1/density HTTP/1.1\r\nHost: flowd\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(form, false)},
	} {
		c := dialRaw(t, fs)
		go c.Write([]byte(tc.req))
		status, body, err := c.answer(5 * time.Second)
		if err != nil || status != 413 || !strings.Contains(body, fmt.Sprintf("larger than %d bytes (-max-query-body)", api.DefaultMaxQueryBody)) {
			t.Errorf("%s: %d %.300q %v; want 413 naming -max-query-body", tc.name, status, body, err)
		}
		if ok, more := c.closed(5 * time.Second); !ok {
			t.Errorf("%s: the connection stayed open or went on with %.300q; want it closed", tc.name, more)
		}
	}
}

// TestSlowUploadIsCutAtTheBodyTimeout: a body that stops coming, an
// upload's or a query's, ends with its connection at the body timeout,
// answered nothing, and the lines that did come are not kept.
func TestSlowUploadIsCutAtTheBodyTimeout(t *testing.T) {
	fs := startIngestWith(t, func(*ingest.Handler) {}, func(fs *flowdtest.Server) {
		fs.API.Conns = api.NewConns(api.ConnLimits{BodyTimeout: 300 * time.Millisecond}, nil)
	})
	for _, tc := range []struct{ name, req string }{
		{"Content-Length", head("/api/v1/ingest/counts", "Content-Length: 100000") + countLine(1) + countLine(1)},
		{"chunked", head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(countLine(1)+countLine(1), false)},
		{"a query's form", "POST /api/v1/density HTTP/1.1\r\nHost: flowd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nmetric=count_car"},
	} {
		c := dialRaw(t, fs)
		c.Write([]byte(tc.req))
		start := time.Now()
		if ok, more := c.closed(10 * time.Second); !ok {
			t.Errorf("%s: after %v the server wrote %.300q or kept the connection; want it closed with nothing written", tc.name, time.Since(start), more)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: closed after %v; want about the body timeout", tc.name, d)
		}
	}
	if n := carsKept(t, fs); n != 0 {
		t.Errorf("the store holds %d cars of bodies that never ended", n)
	}
}

// TestCutOffUploadKeepsNothing: a client that goes away in the middle of
// its body, after whole lines, has nothing of it kept.
func TestCutOffUploadKeepsNothing(t *testing.T) {
	fs := startIngest(t)
	lines := countLine(1) + countLine(1) + countLine(1)
	for _, tc := range []struct{ name, req string }{
		{"Content-Length", head("/api/v1/ingest/counts", "Content-Length: 100000") + lines},
		{"Content-Length, past the first 8 KiB", head("/api/v1/ingest/counts", "Content-Length: 100000") + strings.Repeat(countLine(1), 200)},
		{"chunked", head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(lines, false)},
		{"chunked, cut inside a chunk", head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + "1000\r\n" + lines},
	} {
		c := dialRaw(t, fs)
		c.Write([]byte(tc.req))
		c.Conn.(*net.TCPConn).CloseWrite()
		if status, body, err := c.answer(5 * time.Second); err == nil && status < 400 {
			t.Errorf("%s: %d %.300q; want an error or no answer", tc.name, status, body)
		}
	}
	if n := carsKept(t, fs); n != 0 {
		t.Errorf("the store holds %d cars of bodies cut off", n)
	}
}

// TestEarlyAnswerLeavesNoBodyBehind is the smuggler's test: a body
// refused before its end carries what looks like a second request. The
// server must not read that as a request on the connection: after the
// refusal the connection is closed, or the next request sent on it is
// answered as itself.
func TestEarlyAnswerLeavesNoBodyBehind(t *testing.T) {
	limited := startIngestWith(t, func(h *ingest.Handler) { h.MaxEvents = 2 }, func(*flowdtest.Server) {})
	plain := startIngest(t)
	smuggled := withLength("/api/v1/ingest/counts", countLine(1000))
	tooMany := countLine(1) + countLine(1) + countLine(1) + smuggled
	padding := strings.Repeat(smuggled, (300<<10)/len(smuggled)) // past what the library drains
	csvHead := func(body string) string {
		return strings.Replace(withLength("/api/v1/ingest/counts", body), "application/x-ndjson", "text/csv", 1)
	}
	for _, tc := range []struct {
		name   string
		fs     *flowdtest.Server
		req    string
		status int
	}{
		{"too many events, Content-Length", limited, withLength("/api/v1/ingest/counts", tooMany), 413},
		{"too many events, Content-Length, long", limited, withLength("/api/v1/ingest/counts", tooMany+padding), 413},
		{"too many events, chunked", limited, head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(tooMany, true), 413},
		{"too many events, chunked, long", limited, head("/api/v1/ingest/counts", "Transfer-Encoding: chunked") + chunked(tooMany+padding, true), 413},
		{"a CSV header naming no time", plain, csvHead("no,such,columns\n" + smuggled), 400},
		{"a CSV header naming no time, long", plain, csvHead("no,such,columns\n" + smuggled + padding), 400},
		{"an unknown media type", plain, strings.Replace(withLength("/api/v1/ingest/counts", smuggled), "application/x-ndjson", "text/html", 1), 415},
		{"an unknown content encoding", plain, strings.Replace(withLength("/api/v1/ingest/counts", smuggled), "\r\n\r\n", "\r\nContent-Encoding: br\r\n\r\n", 1), 415},
		{"corrupt gzip", plain, strings.Replace(withLength("/api/v1/ingest/counts", smuggled), "\r\n\r\n", "\r\nContent-Encoding: gzip\r\n\r\n", 1), 400},
		{"an unknown path", plain, withLength("/api/v1/ingest/nothing", smuggled), 404},
	} {
		fs := tc.fs
		before := carsKept(t, fs)
		c := dialRaw(t, fs)
		go c.Write([]byte(tc.req))
		status, body, err := c.answer(5 * time.Second)
		if err != nil || status != tc.status {
			t.Errorf("%s: %d %.300q %v; want %d", tc.name, status, body, err, tc.status)
			continue
		}
		// The next request on the connection, once the first is answered.
		c.Write([]byte(withLength("/api/v1/ingest/counts", countLine(1))))
		status, body, err = c.answer(5 * time.Second)
		switch {
		case err != nil && status == 0:
			// Closed: the rest of the body is not read at all.
		case status != 200 || !strings.Contains(body, `"accepted":1,`):
			t.Errorf("%s: the next request on the connection was answered %d %.300q %v; want 200 accepting its line", tc.name, status, body, err)
		}
		if ok, more := c.closed(300 * time.Millisecond); !ok && more != "" {
			t.Errorf("%s: the server went on with %.300q", tc.name, more)
		}
		if got := carsKept(t, fs) - before; got != 0 && got != 1 {
			t.Errorf("%s: the store took %d cars; want 1 or none (the smuggled request's 1000 read as a request)", tc.name, got)
		}
	}
}
