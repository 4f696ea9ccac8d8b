package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooManyEvents is returned while reading a body with more lines than
// the handler's MaxEvents: the request is refused whole, before anything of
// it is kept.
var ErrTooManyEvents = errors.New("too many events in one request")

// eventLimit passes a body through while counting its lines, so the limit on
// events a request holds is checked in the same pass that decodes it (no
// second decompression). Blank lines count: cheap, but not free.
type eventLimit struct {
	r        io.Reader
	max      int64 // lines allowed
	lines    int64
	lastByte byte
	events   int // the limit as configured, for the message
}

// errTooManyEvents is the error of a body of more than events lines.
func errTooManyEvents(events int) error {
	return fmt.Errorf("%w: more than %d events in one request; split it", ErrTooManyEvents, events)
}

// limitEvents wraps r so that it fails with ErrTooManyEvents past
// maxEvents lines (one more for a CSV header). maxEvents <= 0 is no limit.
func limitEvents(r io.Reader, f Format, maxEvents int) io.Reader {
	if maxEvents <= 0 {
		return r
	}
	allowed := int64(maxEvents)
	if f == CSV {
		allowed++
	}
	return &eventLimit{r: r, max: allowed, lastByte: '\n', events: maxEvents}
}

func (l *eventLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
		l.lastByte = p[n-1]
	}
	partial := int64(0)
	if err == io.EOF && l.lastByte != '\n' {
		partial = 1
	}
	if l.lines+partial > l.max {
		return 0, errTooManyEvents(l.events)
	}
	return n, err
}

// memoryBody returns an uncompressed body held in memory as a Memory,
// after the checks that Body's limit and limitEvents make as it is read,
// with the errors they give: too many lines within the bytes allowed,
// else too many bytes.
func memoryBody(b []byte, f Format, maxBytes int64, maxEvents int) (*Memory, error) {
	if maxEvents > 0 {
		allowed := int64(maxEvents)
		if f == CSV {
			allowed++
		}
		read := b[:min(int64(len(b)), maxBytes)]
		lines := int64(bytes.Count(read, []byte{'\n'}))
		if len(read) == len(b) && len(b) > 0 && b[len(b)-1] != '\n' {
			lines++ // the last line, unended
		}
		if lines > allowed {
			return nil, errTooManyEvents(maxEvents)
		}
	}
	if int64(len(b)) > maxBytes {
		return nil, errTooLarge(maxBytes)
	}
	return NewMemory(b), nil
}
