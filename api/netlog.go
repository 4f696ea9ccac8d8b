package api

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// netLogEvery is how often netLog writes what it counted.
const netLogEvery = time.Minute

// netLog gathers the server's complaints about connections — bad
// requests, timeouts, connections closed to make room — by kind: the first
// after a quiet minute is written at once, the rest as one line a minute of
// counts. It never writes what a client sent: the HTTP library's own
// messages quote request headers, tokens and query strings, and a line per
// bad connection would let anyone grow the log at will.
type netLog struct {
	logf func(format string, args ...any)

	mu      sync.Mutex
	counts  map[string]int
	pending bool // a flush is scheduled
}

func newNetLog(logf func(format string, args ...any)) *netLog {
	return &netLog{logf: logf, counts: map[string]int{}}
}

func (l *netLog) count(kind string) { l.countN(kind, 1) }

func (l *netLog) countN(kind string, n int) {
	if l == nil || l.logf == nil {
		return
	}
	l.mu.Lock()
	if l.pending {
		l.counts[kind] += n
		l.mu.Unlock()
		return
	}
	l.pending = true
	l.mu.Unlock()
	time.AfterFunc(netLogEvery, l.flush)
	l.logf("flowd: connections: %d %s (more are counted and written once a minute)", n, kind)
}

// flush writes the counts gathered since the last line, and stops the
// minutely lines when there were none.
func (l *netLog) flush() {
	l.mu.Lock()
	counts := l.counts
	l.counts = map[string]int{}
	l.pending = len(counts) > 0
	l.mu.Unlock()
	if len(counts) == 0 {
		return
	}
	time.AfterFunc(netLogEvery, l.flush)
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d %s", counts[k], k)
	}
	l.logf("flowd: connections in the last %v: %s", netLogEvery, b.String())
}

// Printf is the HTTP library's logger: the message is counted by its kind,
// never written.
func (l *netLog) Printf(format string, args ...any) {
	kind := "other connection errors"
	for _, a := range args {
		if err, ok := a.(error); ok {
			kind = requestErrorKind(err)
		}
	}
	if strings.Contains(format, "concurrent connections") {
		kind = "refused by the HTTP server's concurrency limit"
	}
	l.count(kind)
}

// requestErrorKind names the kind of a request that could not be read,
// without any of its content.
func requestErrorKind(err error) string {
	var ne net.Error
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "bodies over -max-body"
	case errors.As(err, &small):
		return "headers too large"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return "malformed requests"
}
