// Package ingest turns request bodies into events: it decompresses and bounds
// bodies, decodes NDJSON and CSV swipes, counts and footfall readings line by
// line, and replaces card ids with a keyed hash. It matches tap-ins with
// tap-outs (trips.go), infers where legs of tap-in-only lines end
// (infer.go), and maps card categories to rider groups (groups.go).
package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/flowd/flowd/internal/freelist"

	"github.com/valyala/fastjson"
)

// Format is the syntax of a request body.
type Format int

// Body formats; every ingest endpoint accepts both.
const (
	NDJSON Format = iota // one JSON object per line
	CSV                  // a header line naming the fields, then one record per line
)

// String returns the format's name as an operator would write it.
func (f Format) String() string {
	switch f {
	case NDJSON:
		return "ndjson"
	case CSV:
		return "csv"
	default:
		return fmt.Sprintf("Format(%d)", int(f))
	}
}

var (
	// ErrTooLarge is returned while reading a body (after decompression)
	// that is longer than the limit given to Body.
	ErrTooLarge = errors.New("ingest: body exceeds the size limit after decompression")

	// ErrUnsupportedMediaType wraps the errors of FormatOf and Body for a
	// Content-Type or Content-Encoding flowd does not read (HTTP 415).
	ErrUnsupportedMediaType = errors.New("ingest: unsupported media type")
)

// FormatOf maps a Content-Type header to a Format: application/x-ndjson,
// application/jsonl and application/json mean NDJSON, text/csv means CSV.
// Parameters such as charset are ignored; bodies are always read as UTF-8.
// A body without a Content-Type is refused: a web page can send one to
// any site without asking (a "simple" request), and none of the types
// read here can be sent so.
func FormatOf(contentType string) (Format, error) {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "":
		return 0, fmt.Errorf("%w: no Content-Type; send application/x-ndjson, application/json, application/jsonl or text/csv", ErrUnsupportedMediaType)
	case strings.EqualFold(mt, "application/x-ndjson"),
		strings.EqualFold(mt, "application/jsonl"),
		strings.EqualFold(mt, "application/json"):
		return NDJSON, nil
	case strings.EqualFold(mt, "text/csv"):
		return CSV, nil
	default:
		return 0, fmt.Errorf("%w: content type %q; want application/x-ndjson, application/json, application/jsonl or text/csv", ErrUnsupportedMediaType, mt)
	}
}

// MaxLineErrors is how many LineErrors a decoder lists; past it, one last
// LineError says how many more invalid lines there were, so that a body of
// garbage cannot make the error list itself unbounded.
const MaxLineErrors = 1000

// maxErrorValueLen bounds the input echoed in a LineError's Value.
const maxErrorValueLen = 64

// DecodeSwipes decodes transit-card swipes from r, one per line, and calls
// fn with each valid one and its 1-based line number. Invalid lines become
// LineErrors and decoding goes on; a line longer than maxLine bytes is one
// of them. The error is for reading r only (I/O, decompression, ErrTooLarge);
// events before it have been passed to fn.
//
// fn gets one reused value whose strings alias the decoder's buffers: they
// are valid until fn returns, so fn copies (strings.Clone) what it keeps.
//
// Fields: time, card, dir (in/out, entry/exit or 1/0), station, lat, lng,
// line, mode; a swipe needs station or lat and lng. In CSV the first
// non-blank line is the header; in NDJSON numbers may also come as strings.
func DecodeSwipes(r io.Reader, f Format, maxLine int, fn func(line int, s *Swipe)) ([]LineError, error) {
	return decode(r, f, maxLine, &swipeSchema, buildSwipe, nil, fn)
}

// DecodeCounts decodes detector counts as DecodeSwipes decodes swipes.
//
// Fields: time, sensor, class, count (a non-negative integer), interval
// (positive seconds, 60 when absent), speed (optional, non-negative).
func DecodeCounts(r io.Reader, f Format, maxLine int, fn func(line int, c *Count)) ([]LineError, error) {
	return decode(r, f, maxLine, &countSchema, buildCount, nil, fn)
}

// decodeCountsAhead is DecodeCounts that hands warm the counts of up to
// aheadLines lines before fn gets the first of them (see decode).
func decodeCountsAhead(r io.Reader, f Format, maxLine int, warm func([]Count), fn func(line int, c *Count)) ([]LineError, error) {
	return decode(r, f, maxLine, &countSchema, buildCount, warm, fn)
}

// DecodeFootfall decodes scenic-site gate readings as DecodeSwipes decodes
// swipes.
//
// Fields: time, site, gate (optional), in, out, occupancy (non-negative
// integers); a reading needs in or out, or occupancy.
func DecodeFootfall(r io.Reader, f Format, maxLine int, fn func(line int, ff *Footfall)) ([]LineError, error) {
	return decode(r, f, maxLine, &footfallSchema, buildFootfall, nil, fn)
}

// decoder is the state of one decode call shared by both formats.
type decoder struct {
	sc      *schema
	times   timeCache
	json    *fastjson.Parser // NDJSON
	csv     *csvState        // CSV
	errs    []LineError
	omitted int // invalid lines past MaxLineErrors
	firstOm int // line number of the first of them
	v       fields
	numbers []byte            // NDJSON: the text of numeric fields
	numAt   [maxFields][2]int // where each field's number is in numbers
	shapes  [2]flatShape      // NDJSON: the last line forms scanFlat took, the last used first
}

// reject records a LineError, echoing the offending value unless the
// event type's values are never echoed.
func (d *decoder) reject(line, field int, value []byte, reason string) {
	if len(d.errs) >= MaxLineErrors {
		if d.omitted == 0 {
			d.firstOm = line
		}
		d.omitted++
		return
	}
	e := LineError{Line: line, Reason: reason}
	if field >= 0 {
		e.Field = d.sc.fields[field]
		if !d.sc.silent {
			e.Value = errorValue(value)
		}
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) result() []LineError {
	if d.omitted > 0 {
		d.errs = append(d.errs, LineError{
			Line:   d.firstOm,
			Reason: fmt.Sprintf("%d more invalid lines from here on are not listed", d.omitted),
			More:   d.omitted,
		})
	}
	return d.errs
}

// errorValue is what a LineError may echo of a field's value.
func errorValue(value []byte) string {
	if len(value) > maxErrorValueLen {
		// Cut at a rune boundary; the line is valid UTF-8.
		n := maxErrorValueLen
		for n > 0 && !utf8.RuneStart(value[n]) {
			n--
		}
		return string(value[:n]) + "…"
	}
	return string(value)
}

// decode runs the line loop of one body for one event type.
func decode[E any](r io.Reader, f Format, maxLine int, sc *schema, build func(*fields, *timeCache, *E) fieldError, warm func([]E), fn func(int, *E)) ([]LineError, error) {
	if maxLine <= 0 {
		panic(fmt.Sprintf("BUG: ingest: maxLine must be positive, got %d", maxLine))
	}
	if f != NDJSON && f != CSV {
		panic(fmt.Sprintf("BUG: ingest: unknown %s", f))
	}
	src := lineSource{mem: -1}
	if m, ok := r.(*Memory); ok {
		src.b, src.mem = m.b, 0 // lines read in place: no copy into a buffer
	} else {
		br := lineReaders.Get()
		if size := maxLine + len(utf8BOM) + 2; br == nil || br.Size() != size {
			// Room for the line, a byte order mark and "\r\n", so that
			// ReadSlice sees the whole of a line of maxLine bytes, and
			// no more: a line is too long when it is, read in place or
			// through any reader.
			br = bufio.NewReaderSize(r, size)
		} else {
			br.Reset(r)
		}
		defer func() {
			br.Reset(nil)
			lineReaders.Put(br)
		}()
		src.br = br
	}
	d := decoder{sc: sc}
	if f == NDJSON {
		d.json = jsonParsers.Get()
		defer jsonParsers.Put(d.json)
	} else {
		d.csv = &csvState{colOf: make([]int, 0, 16), cells: make([][]byte, 0, 16)}
	}
	// Lines read by their form where they are in a body in memory hold
	// nothing but the body's bytes, which stay put: up to aheadLines of
	// them are held back, so that warm sees them all before fn gets the
	// first (a registry's lookups started together wait for memory once).
	// Any other line, whose fields may lie in buffers the next line
	// reuses, and any rejection first hands fn the lines held, so fn and
	// the rejections see the lines in their order, as without warm.
	var ahead *[aheadLines]E // only with warm: it escapes to warm
	if warm != nil {
		ahead = new([aheadLines]E)
	}
	var aheadLine [aheadLines]int
	held := 0
	release := func() {
		if held > 0 {
			warm(ahead[:held])
			for k := range held {
				fn(aheadLine[k], &ahead[k])
			}
			held = 0
		}
	}
	var e E
	for line := 1; ; line++ {
		// A line of a body in memory is read where it is: an NDJSON line
		// by its form, a plain CSV line by csvAt; the others are cut out
		// first. Only the NDJSON lines are held for warm: holding CSV
		// lines too was measured to gain nothing (BENCH.md, "Twenty-fourth
		// session").
		taken := false
		if src.mem >= 0 && line > 1 {
			var n, span int
			switch {
			case d.csv == nil:
				n, span, taken = d.againAt(src.b[src.mem:])
			case d.csv.haveHeader:
				n, span, taken = d.csvAt(src.b[src.mem:])
			}
			if taken = taken && n <= maxLine; taken {
				src.mem += span
			}
		}
		if taken && warm != nil && d.csv == nil {
			if fe := build(&d.v, &d.times, &ahead[held]); fe.reason != "" {
				release()
				d.reject(line, fe.field, d.v[fe.field], fe.reason)
				continue
			}
			aheadLine[held] = line
			if held++; held == aheadLines {
				release()
			}
			continue
		}
		if warm != nil {
			release()
		}
		if !taken {
			b, tooLong, err := src.line(maxLine, line == 1)
			if err == io.EOF {
				break
			}
			if err != nil {
				return d.result(), err
			}
			if ok, stop := d.lineFields(line, b, tooLong, maxLine); stop {
				return d.result(), nil
			} else if !ok {
				continue
			}
		}
		if fe := build(&d.v, &d.times, &e); fe.reason != "" {
			d.reject(line, fe.field, d.v[fe.field], fe.reason)
			continue
		}
		fn(line, &e)
	}
	return d.result(), nil
}

// aheadLines is how many lines decode holds back for warm.
const aheadLines = 16

// lineFields fills d.v from line number line, trimmed; ok is false for a
// line that holds no event (blank, a CSV header, or rejected), stop true
// when a bad CSV header ends the body.
func (d *decoder) lineFields(line int, b []byte, tooLong bool, maxLine int) (ok, stop bool) {
	header := d.csv != nil && !d.csv.haveHeader
	if tooLong {
		reason := fmt.Sprintf("line longer than %d bytes", maxLine)
		if header {
			d.reject(line, -1, nil, "header "+reason)
			return false, true
		}
		d.reject(line, -1, nil, reason)
		return false, false
	}
	if len(trimSpace(b)) == 0 {
		return false, false
	}
	if d.csv == nil && d.again(b) {
		return true, false // its fields as the loop below leaves them
	}
	// A line scanFlat or scanCSV takes is valid UTF-8 (see plainRun;
	// scanCSV takes ASCII alone); the others are checked here.
	var fast bool
	if d.csv == nil {
		fast = d.scanFlat(b)
	} else {
		fast = d.csv.haveHeader && d.scanCSV(b)
	}
	if !fast {
		if !utf8.Valid(b) {
			if header {
				d.reject(line, -1, nil, "header is not valid UTF-8")
				return false, true
			}
			d.reject(line, -1, nil, "not valid UTF-8")
			return false, false
		}
		d.v = fields{}
		if d.csv != nil {
			if ok, stop = d.csvFields(line, b); !ok {
				return false, stop
			}
		} else if !d.jsonFields(line, b) { // the full parser starts over
			return false, false
		}
	}
	for id := range d.sc.fields {
		if t := trimSpace(d.v[id]); len(t) > 0 {
			d.v[id] = t
		} else {
			d.v[id] = nil
		}
	}
	return true, false
}

// lineReaders keeps the line readers of a few bodies decoding at once.
var lineReaders = freelist.New[bufio.Reader](8)

var utf8BOM = []byte("\xef\xbb\xbf")

// lineSource gives a body's lines: through a bufio.Reader, or, for a body
// already in memory (Memory), slices of it.
type lineSource struct {
	br  *bufio.Reader
	b   []byte
	mem int // the offset of the next line in b, or -1 to read br
}

// line is readLine of the source's next line.
func (s *lineSource) line(maxLine int, first bool) (b []byte, tooLong bool, err error) {
	if s.mem < 0 {
		return readLine(s.br, maxLine, first)
	}
	if s.mem >= len(s.b) {
		return nil, false, io.EOF
	}
	b = s.b[s.mem:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
		s.mem += i + 1
	} else {
		s.mem = len(s.b)
	}
	return cutLine(b, maxLine, first)
}

// Memory is a request body held in memory whole, already checked against
// the limits on its bytes and lines: the decoders read its lines in place
// rather than through a buffer. It is an io.Reader too.
type Memory struct {
	b []byte
	r bytes.Reader
}

// NewMemory returns b as a Memory; b must not change while it is read.
func NewMemory(b []byte) *Memory {
	m := &Memory{b: b}
	m.r.Reset(b)
	return m
}

func (m *Memory) Read(p []byte) (int, error) { return m.r.Read(p) }

// readLine returns the next line without its "\n" or "\r\n" (and without a
// UTF-8 byte order mark on the first line), or tooLong for a line of more
// than maxLine bytes, which it skips. At the end it returns io.EOF.
func readLine(br *bufio.Reader, maxLine int, first bool) (b []byte, tooLong bool, err error) {
	b, err = br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		return nil, true, nil
	}
	if err != nil && (err != io.EOF || len(b) == 0) {
		return nil, false, err
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return cutLine(b, maxLine, first)
}

// cutLine is readLine's line b, its "\n" gone: without "\r" or, first, a
// byte order mark, or tooLong.
func cutLine(b []byte, maxLine int, first bool) ([]byte, bool, error) {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if first {
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	if len(b) > maxLine {
		return nil, true, nil
	}
	return b, false, nil
}
