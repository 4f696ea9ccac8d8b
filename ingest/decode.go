// Package ingest turns request bodies into events: it decompresses and bounds
// bodies, decodes NDJSON and CSV swipes, counts and footfall readings line by
// line, and replaces card ids with a keyed hash.
package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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
// application/jsonl, application/json and an absent header mean NDJSON,
// text/csv means CSV. Parameters such as charset are ignored; bodies are
// always read as UTF-8.
func FormatOf(contentType string) (Format, error) {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "",
		strings.EqualFold(mt, "application/x-ndjson"),
		strings.EqualFold(mt, "application/jsonl"),
		strings.EqualFold(mt, "application/json"):
		return NDJSON, nil
	case strings.EqualFold(mt, "text/csv"):
		return CSV, nil
	default:
		return 0, fmt.Errorf("%w: content type %q; want application/x-ndjson, application/json, application/jsonl or text/csv", ErrUnsupportedMediaType, mt)
	}
}

// Limits on a zstd frame, so that a hostile body cannot make the decoder
// allocate more than a few window sizes. 8 MiB is the window the zstd format
// asks every decoder to support and what `zstd -19` uses.
const (
	zstdMaxWindow = 8 << 20
	zstdMaxMemory = 64 << 20
)

var (
	gzipReaders  sync.Pool // *gzip.Reader
	zstdDecoders sync.Pool // *zstd.Decoder
)

// Body returns the decompressed stream of a request body with the given
// Content-Encoding ("", "identity", "gzip", "x-gzip" or "zstd"), cut at
// maxBytes decompressed bytes: a read past the limit fails with ErrTooLarge,
// so a compression bomb costs a bounded amount of memory and time.
//
// Decompressors are pooled; they return to their pool when the stream ends
// or fails, or when Close is called, which the caller should defer.
// Decompression errors are wrapped and reported by Read. maxBytes must be
// positive.
func Body(r io.Reader, contentEncoding string, maxBytes int64) (io.ReadCloser, error) {
	if maxBytes <= 0 {
		panic(fmt.Sprintf("BUG: ingest.Body: maxBytes must be positive, got %d", maxBytes))
	}
	enc := strings.TrimSpace(contentEncoding)
	switch {
	case enc == "" || strings.EqualFold(enc, "identity"):
		return &body{r: r, left: maxBytes, limit: maxBytes}, nil
	case strings.EqualFold(enc, "gzip") || strings.EqualFold(enc, "x-gzip"):
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r)
		} else {
			err = zr.Reset(r)
		}
		if err != nil {
			if zr != nil {
				gzipReaders.Put(zr)
			}
			return nil, fmt.Errorf("ingest: gzip body: %w", err)
		}
		return &body{r: zr, left: maxBytes, limit: maxBytes, encoding: "gzip", release: func() { gzipReaders.Put(zr) }}, nil
	case strings.EqualFold(enc, "zstd"):
		// Hide any Len method of r: the zstd decoder would otherwise decode
		// a small in-memory input whole, up to zstdMaxMemory, before the
		// limit below could stop it.
		src := struct{ io.Reader }{r}
		d, _ := zstdDecoders.Get().(*zstd.Decoder)
		var err error
		if d == nil {
			d, err = zstd.NewReader(src,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow),
				zstd.WithDecoderMaxMemory(zstdMaxMemory))
		} else {
			err = d.Reset(src)
		}
		if err != nil {
			if d != nil {
				releaseZstd(d)
			}
			return nil, fmt.Errorf("ingest: zstd body: %w", err)
		}
		return &body{r: d, left: maxBytes, limit: maxBytes, encoding: "zstd", release: func() { releaseZstd(d) }}, nil
	default:
		return nil, fmt.Errorf("%w: content encoding %q; want gzip, zstd or identity", ErrUnsupportedMediaType, enc)
	}
}

func releaseZstd(d *zstd.Decoder) {
	// Reset(nil) drops the reference to the request body before pooling.
	_ = d.Reset(nil)
	zstdDecoders.Put(d)
}

var errBodyClosed = errors.New("ingest: read from a closed body")

// body cuts a (decompressed) stream at a byte limit and hands its
// decompressor back to the pool once the stream is done.
type body struct {
	r        io.Reader
	left     int64
	limit    int64  // maxBytes, for the message
	encoding string // "" for identity, whose errors are passed on as they are
	release  func()
	err      error
	probe    [1]byte
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// The limit is reached: one more byte means too large, EOF means
		// the body was exactly maxBytes long.
		n, err := io.ReadFull(b.r, b.probe[:])
		if n > 0 {
			err = fmt.Errorf("%w: body larger than %d bytes", ErrTooLarge, b.limit)
			if b.encoding != "" {
				err = fmt.Errorf("%w: body larger than %d bytes after %s decompression", ErrTooLarge, b.limit, b.encoding)
			}
		}
		return 0, b.fail(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil {
		err = b.fail(err)
	}
	return n, err
}

// fail records the stream's final error, wrapping decompression errors with
// the encoding, and releases the decompressor.
func (b *body) fail(err error) error {
	if err != io.EOF && !errors.Is(err, ErrTooLarge) && b.encoding != "" {
		err = fmt.Errorf("ingest: %s body: %w", b.encoding, err)
	}
	b.err = err
	b.done()
	return err
}

func (b *body) done() {
	if b.release != nil {
		b.release()
		b.release = nil
	}
	b.r = nil
}

// Close releases the decompressor; reads after Close fail.
func (b *body) Close() error {
	if b.err == nil {
		b.err = errBodyClosed
	}
	b.done()
	return nil
}

// MaxLineErrors is how many LineErrors a decoder lists; past it, one last
// LineError says how many more invalid lines there were, so that a body of
// garbage cannot make the error list itself unbounded.
const MaxLineErrors = 1000

// maxErrorValueLen bounds the input echoed in a LineError's Value.
const maxErrorValueLen = 64

// redactedField names the field whose value must never be echoed.
const redactedField = "card"

// Field ids of a swipe; swipeFields lists their names in the same order.
const (
	swTime = iota
	swCard
	swDir
	swStation
	swLat
	swLng
	swLine
	swMode
)

// Field ids of a count.
const (
	cnTime = iota
	cnSensor
	cnClass
	cnCount
	cnInterval
	cnSpeed
)

// Field ids of a footfall reading.
const (
	ffTime = iota
	ffSite
	ffGate
	ffIn
	ffOut
	ffOccupancy
)

// maxFields is the largest number of fields of any event type.
const maxFields = 8

var (
	swipeSchema = schema{
		fields: []string{"time", "card", "dir", "station", "lat", "lng", "line", "mode"},
		// The columns of AFC exports such as the 2019 Hangzhou metro data
		// (time,lineID,stationID,deviceID,status,userID,payType; status
		// 1 = entry, 0 = exit) are read as their flowd names.
		aliases: map[string]int{"userid": swCard, "stationid": swStation, "status": swDir, "lineid": swLine},
		header: func(has *[maxFields]bool) (int, string) {
			switch {
			case !has[swTime]:
				return swTime, "missing required column"
			case !has[swCard]:
				return swCard, "missing required column"
			case !has[swDir]:
				return swDir, "missing required column"
			case has[swLat] && !has[swLng]:
				return swLng, "missing column: lat needs lng"
			case has[swLng] && !has[swLat]:
				return swLat, "missing column: lng needs lat"
			case !has[swStation] && !has[swLat]:
				return swStation, "missing column: need station, or lat and lng"
			}
			return -1, ""
		},
	}
	countSchema = schema{
		fields: []string{"time", "sensor", "class", "count", "interval", "speed"},
		header: func(has *[maxFields]bool) (int, string) {
			for _, f := range [...]int{cnTime, cnSensor, cnClass, cnCount} {
				if !has[f] {
					return f, "missing required column"
				}
			}
			return -1, ""
		},
	}
	footfallSchema = schema{
		fields: []string{"time", "site", "gate", "in", "out", "occupancy"},
		header: func(has *[maxFields]bool) (int, string) {
			switch {
			case !has[ffTime]:
				return ffTime, "missing required column"
			case !has[ffSite]:
				return ffSite, "missing required column"
			case !has[ffIn] && !has[ffOut] && !has[ffOccupancy]:
				return ffIn, "missing column: need in and out, or occupancy"
			}
			return -1, ""
		},
	}
)

// schema names the fields of one event type and says which CSV columns a
// header must have.
type schema struct {
	fields []string
	// aliases maps other CSV column names, lower case, to field ids.
	aliases map[string]int
	// header returns the field id and reason of the first missing column
	// among those present per has, or -1.
	header func(has *[maxFields]bool) (int, string)
}

// id returns the id of the field named name, or -1.
func (sc *schema) id(name []byte) int {
	for i, f := range sc.fields {
		if string(name) == f {
			return i
		}
	}
	return -1
}

// fields holds one line's values by field id; nil means absent (also for an
// empty CSV cell, an empty JSON string or a JSON null). The slices alias the
// line or parser buffers and live until the next line.
type fields [maxFields][]byte

// fieldError is a build function's verdict; an empty reason means valid.
type fieldError struct {
	field  int
	reason string
}

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
	return decode(r, f, maxLine, &swipeSchema, buildSwipe, fn)
}

// DecodeCounts decodes detector counts as DecodeSwipes decodes swipes.
//
// Fields: time, sensor, class, count (a non-negative integer), interval
// (positive seconds, 60 when absent), speed (optional, non-negative).
func DecodeCounts(r io.Reader, f Format, maxLine int, fn func(line int, c *Count)) ([]LineError, error) {
	return decode(r, f, maxLine, &countSchema, buildCount, fn)
}

// DecodeFootfall decodes scenic-site gate readings as DecodeSwipes decodes
// swipes.
//
// Fields: time, site, gate (optional), in, out, occupancy (non-negative
// integers); a reading needs in or out, or occupancy.
func DecodeFootfall(r io.Reader, f Format, maxLine int, fn func(line int, ff *Footfall)) ([]LineError, error) {
	return decode(r, f, maxLine, &footfallSchema, buildFootfall, fn)
}

func buildSwipe(v *fields, s *Swipe) fieldError {
	*s = Swipe{}
	var fe fieldError
	if s.Time, fe = requiredTime(v, swTime); fe.reason != "" {
		return fe
	}
	if v[swCard] == nil {
		return fieldError{swCard, "required"}
	}
	s.Card = unsafeString(v[swCard])
	switch dir := v[swDir]; {
	case dir == nil:
		return fieldError{swDir, "required"}
	case len(dir) == 1 && dir[0] == '1', equalFold(dir, "in"), equalFold(dir, "entry"):
		s.In = true
	case len(dir) == 1 && dir[0] == '0', equalFold(dir, "out"), equalFold(dir, "exit"):
		s.In = false
	default:
		return fieldError{swDir, "must be in, out, entry, exit, 1 or 0"}
	}
	s.Station = unsafeString(v[swStation])
	switch lat, lng := v[swLat], v[swLng]; {
	case lat == nil && lng == nil:
		if v[swStation] == nil {
			return fieldError{swStation, "station or lat and lng required"}
		}
	case lat == nil:
		return fieldError{swLat, "required with lng"}
	case lng == nil:
		return fieldError{swLng, "required with lat"}
	default:
		var ok bool
		if s.Lat, ok = parseFloat(lat); !ok {
			return fieldError{swLat, "must be a number"}
		}
		if s.Lat < -90 || s.Lat > 90 {
			return fieldError{swLat, "must be between -90 and 90"}
		}
		if s.Lng, ok = parseFloat(lng); !ok {
			return fieldError{swLng, "must be a number"}
		}
		if s.Lng < -180 || s.Lng > 180 {
			return fieldError{swLng, "must be between -180 and 180"}
		}
		s.HasLatLng = true
	}
	s.Line = unsafeString(v[swLine])
	s.Mode = unsafeString(v[swMode])
	return fieldError{}
}

// maxInterval bounds a count's interval: a day. Longer ones are unit
// mistakes (milliseconds for seconds) that would smear one count over weeks.
const maxInterval = 86400

func buildCount(v *fields, c *Count) fieldError {
	*c = Count{Interval: 60}
	var fe fieldError
	if c.Time, fe = requiredTime(v, cnTime); fe.reason != "" {
		return fe
	}
	if v[cnSensor] == nil {
		return fieldError{cnSensor, "required"}
	}
	c.Sensor = unsafeString(v[cnSensor])
	if v[cnClass] == nil {
		return fieldError{cnClass, "required"}
	}
	c.Class = unsafeString(v[cnClass])
	if v[cnCount] == nil {
		return fieldError{cnCount, "required"}
	}
	if c.Count, fe = nonNegativeInt(v, cnCount); fe.reason != "" {
		return fe
	}
	if iv := v[cnInterval]; iv != nil {
		n, ok := parseInt(iv)
		switch {
		case !ok:
			return fieldError{cnInterval, "must be an integer number of seconds"}
		case n <= 0:
			return fieldError{cnInterval, "must be positive"}
		case n > maxInterval:
			return fieldError{cnInterval, "must be at most 86400 seconds"}
		}
		c.Interval = n
	}
	if sp := v[cnSpeed]; sp != nil {
		x, ok := parseFloat(sp)
		switch {
		case !ok:
			return fieldError{cnSpeed, "must be a number"}
		case x < 0:
			return fieldError{cnSpeed, "must not be negative"}
		}
		c.Speed, c.HasSpeed = x, true
	}
	return fieldError{}
}

func buildFootfall(v *fields, ff *Footfall) fieldError {
	*ff = Footfall{}
	var fe fieldError
	if ff.Time, fe = requiredTime(v, ffTime); fe.reason != "" {
		return fe
	}
	if v[ffSite] == nil {
		return fieldError{ffSite, "required"}
	}
	ff.Site = unsafeString(v[ffSite])
	ff.Gate = unsafeString(v[ffGate])
	if v[ffIn] == nil && v[ffOut] == nil && v[ffOccupancy] == nil {
		return fieldError{ffIn, "in or out, or occupancy required"}
	}
	if v[ffIn] != nil {
		if ff.In, fe = nonNegativeInt(v, ffIn); fe.reason != "" {
			return fe
		}
	}
	if v[ffOut] != nil {
		if ff.Out, fe = nonNegativeInt(v, ffOut); fe.reason != "" {
			return fe
		}
	}
	if v[ffOccupancy] != nil {
		if ff.Occupancy, fe = nonNegativeInt(v, ffOccupancy); fe.reason != "" {
			return fe
		}
		ff.HasOccupancy = true
	}
	return fieldError{}
}

func requiredTime(v *fields, id int) (int64, fieldError) {
	if v[id] == nil {
		return 0, fieldError{id, "required"}
	}
	ms, err := vocab.ParseTime(unsafeString(v[id]))
	if err != nil {
		return 0, fieldError{id, err.Error()}
	}
	return ms, fieldError{}
}

func nonNegativeInt(v *fields, id int) (int64, fieldError) {
	n, ok := parseInt(v[id])
	switch {
	case !ok:
		return 0, fieldError{id, "must be an integer"}
	case n < 0:
		return 0, fieldError{id, "must not be negative"}
	}
	return n, fieldError{}
}

// parseInt parses an optionally signed decimal integer, rejecting overflow.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseFloat parses a finite decimal number.
func parseFloat(b []byte) (float64, bool) {
	// strconv also takes "inf", "nan", hex floats and underscores, none of
	// which a sensor means; allow only digits, sign, point and exponent.
	for _, c := range b {
		if !isDigit(c) && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return 0, false
		}
	}
	x, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}

// equalFold reports whether b equals the lower-case ASCII word w, ignoring case.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// trimSpace trims ASCII blanks, which never belong to an id or a number.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

var (
	lineReaders sync.Pool // *bufio.Reader
	jsonParsers fastjson.ParserPool
)

// decoder is the state of one decode call shared by both formats.
type decoder struct {
	sc      *schema
	errs    []LineError
	omitted int // invalid lines past MaxLineErrors
	firstOm int // line number of the first of them
	v       fields
	numbers []byte            // NDJSON: the text of numeric fields
	numAt   [maxFields][2]int // where each field's number is in numbers
}

// fromJSON fills d.v from the members of obj named like fields; others are
// ignored, and of repeated ones the first counts. It returns the id and
// value of a member that is neither string, number nor null, or -1.
func (d *decoder) fromJSON(obj *fastjson.Object) (int, *fastjson.Value) {
	d.numbers = d.numbers[:0]
	d.numAt = [maxFields][2]int{}
	var seen uint32
	badID, badValue := -1, (*fastjson.Value)(nil)
	obj.Visit(func(key []byte, v *fastjson.Value) {
		id := d.sc.id(key)
		if id < 0 || seen&(1<<id) != 0 || badID >= 0 {
			return
		}
		seen |= 1 << id
		switch v.Type() {
		case fastjson.TypeNull:
		case fastjson.TypeString:
			d.v[id], _ = v.StringBytes()
		case fastjson.TypeNumber:
			start := len(d.numbers)
			d.numbers = v.MarshalTo(d.numbers)
			d.numAt[id] = [2]int{start, len(d.numbers)}
		default:
			badID, badValue = id, v
		}
	})
	if badID >= 0 {
		return badID, badValue
	}
	// Numbers went to one growing buffer; slice it only now that it no
	// longer moves. A number's text is never empty.
	for id, at := range d.numAt {
		if at[1] > 0 {
			d.v[id] = d.numbers[at[0]:at[1]]
		}
	}
	return -1, nil
}

// reject records a LineError, echoing the offending value unless it is a card.
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
		e.Value = errorValue(e.Field, value)
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) result() []LineError {
	if d.omitted > 0 {
		d.errs = append(d.errs, LineError{
			Line:   d.firstOm,
			Reason: fmt.Sprintf("%d more invalid lines from here on are not listed", d.omitted),
		})
	}
	return d.errs
}

// errorValue is what a LineError may echo of a field's value.
func errorValue(field string, value []byte) string {
	if len(value) == 0 {
		return ""
	}
	if field == redactedField {
		return "[redacted]"
	}
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
func decode[E any](r io.Reader, f Format, maxLine int, sc *schema, build func(*fields, *E) fieldError, fn func(int, *E)) ([]LineError, error) {
	if maxLine <= 0 {
		panic(fmt.Sprintf("BUG: ingest: maxLine must be positive, got %d", maxLine))
	}
	if f != NDJSON && f != CSV {
		panic(fmt.Sprintf("BUG: ingest: unknown %s", f))
	}
	br, _ := lineReaders.Get().(*bufio.Reader)
	if br == nil || br.Size() < maxLine+2 {
		// Room for the line, "\r\n", so ReadSlice sees the whole of it.
		br = bufio.NewReaderSize(r, maxLine+2)
	} else {
		br.Reset(r)
	}
	defer func() {
		br.Reset(nil)
		lineReaders.Put(br)
	}()
	var p *fastjson.Parser
	if f == NDJSON {
		p = jsonParsers.Get()
		defer jsonParsers.Put(p)
	}

	d := decoder{sc: sc}
	var (
		e     E
		colOf []int // CSV: field id of each column, -1 for unknown ones
		cells [][]byte
	)
	if f == CSV {
		colOf = make([]int, 0, 16)
		cells = make([][]byte, 0, 16)
	}
	haveHeader := false
	line := 0
	for {
		b, tooLong, err := readLine(br, maxLine, line == 0)
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.result(), err
		}
		line++
		if tooLong {
			reason := fmt.Sprintf("line longer than %d bytes", maxLine)
			if f == CSV && !haveHeader {
				d.reject(line, -1, nil, "header "+reason)
				return d.result(), nil
			}
			d.reject(line, -1, nil, reason)
			continue
		}
		if len(trimSpace(b)) == 0 {
			continue
		}
		if !utf8.Valid(b) {
			if f == CSV && !haveHeader {
				d.reject(line, -1, nil, "header is not valid UTF-8")
				return d.result(), nil
			}
			d.reject(line, -1, nil, "not valid UTF-8")
			continue
		}
		d.v = fields{}
		if f == CSV {
			if cells, err = splitCSV(cells[:0], b); err != nil {
				if !haveHeader {
					d.reject(line, -1, nil, "header: "+err.Error())
					return d.result(), nil
				}
				d.reject(line, -1, nil, err.Error())
				continue
			}
			if !haveHeader {
				var ok bool
				if colOf, ok = d.header(line, cells, colOf[:0]); !ok {
					return d.result(), nil
				}
				haveHeader = true
				continue
			}
			for c, cell := range cells {
				if c < len(colOf) && colOf[c] >= 0 {
					d.v[colOf[c]] = cell
				}
			}
		} else {
			jv, err := p.ParseBytes(b)
			if err != nil {
				// fastjson's message quotes the input, which may hold a card.
				d.reject(line, -1, nil, "malformed JSON")
				continue
			}
			obj, err := jv.Object()
			if err != nil {
				d.reject(line, -1, nil, "must be a JSON object")
				continue
			}
			if id, bad := d.fromJSON(obj); id >= 0 {
				d.reject(line, id, bad.MarshalTo(nil), "must be a string or a number")
				continue
			}
		}
		for id := range sc.fields {
			if t := trimSpace(d.v[id]); len(t) > 0 {
				d.v[id] = t
			} else {
				d.v[id] = nil
			}
		}
		if fe := build(&d.v, &e); fe.reason != "" {
			d.reject(line, fe.field, d.v[fe.field], fe.reason)
			continue
		}
		fn(line, &e)
	}
	return d.result(), nil
}

// header maps the CSV header's column names to field ids.
func (d *decoder) header(line int, cells [][]byte, colOf []int) ([]int, bool) {
	var has [maxFields]bool
	for _, cell := range cells {
		name := trimSpace(cell)
		id := -1
		for i, fname := range d.sc.fields {
			if equalFold(name, fname) {
				id = i
				break
			}
		}
		if id < 0 {
			for alias, i := range d.sc.aliases {
				if equalFold(name, alias) {
					id = i
					break
				}
			}
		}
		if id >= 0 {
			if has[id] {
				d.reject(line, id, nil, "duplicate column")
				return nil, false
			}
			has[id] = true
		}
		colOf = append(colOf, id)
	}
	if id, reason := d.sc.header(&has); id >= 0 {
		d.reject(line, id, nil, reason)
		return nil, false
	}
	return colOf, true
}

var utf8BOM = []byte("\xef\xbb\xbf")

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

var (
	errCSVUnterminated = errors.New("quoted field not closed on its line (fields may not span lines)")
	errCSVBareQuote    = errors.New(`bare " in an unquoted field`)
	errCSVAfterQuote   = errors.New(`unexpected character after a closing "`)
)

// splitCSV appends the fields of one CSV line to dst. Quoted fields are
// unescaped in place, so the fields alias line.
func splitCSV(dst [][]byte, line []byte) ([][]byte, error) {
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			// Quoted: copy down over each doubled quote.
			w := i
			start := i
			i++
			for {
				if i >= len(line) {
					return dst, errCSVUnterminated
				}
				c := line[i]
				if c == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						line[w] = '"'
						w++
						i += 2
						continue
					}
					i++
					break
				}
				line[w] = c
				w++
				i++
			}
			dst = append(dst, line[start:w])
			if i == len(line) {
				return dst, nil
			}
			if line[i] != ',' {
				return dst, errCSVAfterQuote
			}
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ',' {
			if line[j] == '"' {
				return dst, errCSVBareQuote
			}
			j++
		}
		dst = append(dst, line[i:j])
		if j == len(line) {
			return dst, nil
		}
		i = j + 1
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
