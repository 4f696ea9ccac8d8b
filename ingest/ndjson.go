package ingest

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

var jsonParsers fastjson.ParserPool

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

// jsonFields fills d.v from a JSON line through the full parser.
func (d *decoder) jsonFields(line int, b []byte) bool {
	jv, err := d.json.ParseBytes(b)
	if err != nil {
		// fastjson's message quotes the input, which may hold a card.
		d.reject(line, -1, nil, "malformed JSON")
		return false
	}
	obj, err := jv.Object()
	if err != nil {
		d.reject(line, -1, nil, "must be a JSON object")
		return false
	}
	if id, bad := d.fromJSON(obj); id >= 0 {
		d.reject(line, id, bad.MarshalTo(nil), "must be a string or a number")
		return false
	}
	return true
}

// scanFlat fills d.v from a JSON object whose members are strings without
// escapes, numbers and nulls — what devices and flowd's own tools send — in
// one pass over the line, and reports whether it could. Anything else (an
// escape, a nested value, a boolean, a syntax error) is left to the full
// parser, which then decides, so both paths give the same answers.
func (d *decoder) scanFlat(b []byte) bool {
	d.v = fields{}
	var sh flatShape // learned as the line is scanned; kept if it is taken
	prevEnd := 0     // where the bytes before the next member's value begin
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipJSONSpace(b, i+1) == len(b)
	}
	var seen uint32
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := plainRun(b, i+1) // the member name (see plainRun)
		if end >= len(b) || b[end] != '"' {
			end = utf8String(b, end)
		}
		if end < 0 {
			return false
		}
		key, i0 := b[i+1:end], i+1
		if i = skipJSONSpace(b, end+1); i >= len(b) || b[i] != ':' {
			return false
		}
		if i = skipJSONSpace(b, i+1); i >= len(b) {
			return false
		}
		var val []byte
		valStart, str := i, false
		switch c := b[i]; {
		case c == '"':
			if end = plainRun(b, i+1); end >= len(b) || b[end] != '"' {
				end = utf8String(b, end)
			}
			if end < 0 {
				return false
			}
			val, i = b[i+1:end], end+1
			valStart, str = valStart+1, true
		case c == '-' || isDigit(c):
			if end = jsonNumber(b, i); end < 0 {
				return false
			}
			val, i = b[i:end], end
		case c == 'n' && len(b)-i >= 4 && string(b[i:i+4]) == "null":
			i += 4
			sh.n = -1 // a null's member is not learned
		default:
			return false
		}
		id := d.sc.idAt(b, i0, i0+len(key))
		if id >= 0 && seen&(1<<id) == 0 {
			seen |= 1 << id
			d.v[id] = val
		} else {
			id = -1
		}
		sh.learn(b[prevEnd:valStart], id, str)
		prevEnd = i
		if i = skipJSONSpace(b, i); i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			if skipJSONSpace(b, i+1) != len(b) {
				return false
			}
			if sh.learn(b[prevEnd:], -1, false) {
				d.shapes[1], d.shapes[0] = d.shapes[0], sh
			}
			return true
		default:
			return false
		}
	}
}

// A flatShape is the form of a line scanFlat took: the bytes between its
// values (member names, quotes, colons, commas, spaces), what each value
// is, and the bytes after the last. Devices send line after line of one
// form, so the decoder keeps the last two it saw, and a line of one of
// them is read by again: each value is found where the form says, only
// the values themselves scanned, member names compared as bytes rather
// than looked up. A line that differs anywhere goes to scanFlat, which
// decides; since a line again takes has the same member names, in the
// same order, with values of the same kinds checked the same way, both
// give the same fields.
type flatShape struct {
	n     int // members; 0 for no shape, -1 while scanning a line not to learn
	lits  [maxShapeBytes]byte
	nlits int
	long  bool // the bytes before a value, or the closing bytes, are more than 16
	mem   [maxShapeMembers]struct {
		end uint8 // where the bytes before its value end in lits
		n   uint8 // how many they are
		id  int8  // the field the value goes to, or -1 (unknown, repeated)
		str bool  // a string, whose opening quote ends the bytes before it
		// The bytes before its value as two little-endian words and the
		// masks of their bytes, when they are at most 16: compared as
		// two words where the line has 16 bytes left.
		w, mask [2]uint64
	}
}

// A shape of more members or bytes than these is not learned.
const (
	maxShapeMembers = 12
	maxShapeBytes   = 160
)

// learn appends a member, the bytes before its value being lit, or, with
// id -1 and str false after the last member, the line's closing bytes. It
// reports whether the shape is still one to keep.
func (sh *flatShape) learn(lit []byte, id int, str bool) bool {
	if sh.n < 0 || sh.n >= maxShapeMembers || sh.nlits+len(lit) > maxShapeBytes {
		sh.n = -1
		return false
	}
	sh.nlits += copy(sh.lits[sh.nlits:], lit)
	m := &sh.mem[sh.n]
	m.end, m.n, m.id, m.str = uint8(sh.nlits), uint8(len(lit)), int8(id), str
	m.w, m.mask = [2]uint64{}, [2]uint64{}
	if sh.long = sh.long || len(lit) > 16; len(lit) <= 16 {
		for i, c := range lit {
			m.w[i/8] |= uint64(c) << (8 * (i % 8))
			m.mask[i/8] |= 0xff << (8 * (i % 8))
		}
	}
	sh.n++
	return true
}

// again fills d.v from a line of one of the shapes scanFlat learned, and
// reports whether it could (see flatShape).
func (d *decoder) again(b []byte) bool {
	for k := range d.shapes {
		if d.shapes[k].n > 0 && d.shapes[k].read(b, &d.v) {
			if k > 0 {
				d.shapes[0], d.shapes[1] = d.shapes[1], d.shapes[0]
			}
			return true
		}
	}
	return false
}

// read fills v from b if b has the shape sh; v is left in any state if not.
// Its values are as lineFields makes them: trimmed, an empty one nil (a
// number is never empty, nor has spaces).
func (sh *flatShape) read(b []byte, v *fields) bool {
	n, ok := sh.prefix(b, v)
	return ok && n == len(b)
}

// againAt is again for the line that starts rest, a body's bytes from a
// line's start on: it reports the length of the line it took (without its
// "\n" or "\r\n") and the bytes it spans (with them). A line never holds
// a "\n", and the form cannot read one (its bytes between values come from
// a line; a string stops at control characters, a number at anything not
// of a number), so the form is read where the line is, before the line's
// end is known.
func (d *decoder) againAt(rest []byte) (line, span int, ok bool) {
	for k := range d.shapes {
		if d.shapes[k].n == 0 {
			continue
		}
		n, q := d.shapes[k].quick(rest, &d.v)
		ok := q == quickTaken
		if q == quickSlow {
			n, ok = d.shapes[k].prefix(rest, &d.v)
		}
		if !ok {
			continue
		}
		switch {
		case n == len(rest):
			line, span = n, n
		case rest[n] == '\n':
			line, span = n, n+1
		case rest[n] == '\r' && n+1 < len(rest) && rest[n+1] == '\n':
			line, span = n, n+2
		default:
			continue
		}
		if k > 0 {
			d.shapes[0], d.shapes[1] = d.shapes[1], d.shapes[0]
		}
		return line, span, true
	}
	return 0, 0, false
}

// What quick made of a line.
const (
	quickTaken   = iota // the line has the shape
	quickRefused        // it has not
	quickSlow           // it needs prefix's care
)

// quick is prefix for the lines nearly all are, where every value is
// followed by at least 16 bytes of the body: it finds the same values
// and the same end, or refuses the same lines, or reports quickSlow for
// a line it leaves to prefix (bytes before a value longer than 16, a
// value with blanks around it, a number other than digits with an
// optional fraction, 16 bytes left or fewer). It calls nothing and
// reads the body through a pointer, each read after a check that the
// bytes are there, so that the compiler keeps what it needs in
// registers: prefix, inlined into againAt with its calls around,
// reloaded most of it from the stack at every member, and slicing the
// line cost a quarter of quick's instructions in bounds checks.
func (sh *flatShape) quick(b []byte, v *fields) (int, int) {
	*v = fields{}
	if sh.n < 1 || sh.long {
		return 0, quickSlow
	}
	mem := sh.mem[:sh.n]
	// p is the next byte to read and left the bytes from there on. p never
	// moves to the body's end: a pointer past an allocation is not a Go
	// pointer. A line that would take it there is left to prefix.
	p, left := unsafe.Pointer(unsafe.SliceData(b)), len(b)
	for j := range mem {
		m := &mem[j]
		if left <= 16 {
			return 0, quickSlow
		}
		if (wordAt(p, 0)^m.w[0])&m.mask[0]|(wordAt(p, 8)^m.w[1])&m.mask[1] != 0 {
			return 0, quickRefused
		}
		n := int(m.n) // at most 16: sh.long is false
		if j == len(mem)-1 {
			return len(b) - left + n, quickTaken // the closing bytes
		}
		p, left = unsafe.Add(p, n), left-n
		if m.str {
			k := 0 // where the string stops
			for {
				if left-k < 8 {
					return 0, quickSlow
				}
				if x := stopIn(wordAt(p, k)); x != 0 {
					k += bits.TrailingZeros64(x) / 8
					break
				}
				k += 8
			}
			if byteAt(p, k) != '"' {
				return 0, quickRefused
			}
			if k > 0 {
				if byteAt(p, 0) <= ' ' || byteAt(p, k-1) <= ' ' {
					return 0, quickSlow
				}
				if m.id >= 0 {
					v[m.id] = unsafe.Slice((*byte)(p), k)
				}
			}
			if k+1 >= left {
				return 0, quickSlow
			}
			p, left = unsafe.Add(p, k+1), left-k-1
			continue
		}
		k := 0 // where the number ends
		for k < left && byteAt(p, k)-'0' < 10 {
			k++
		}
		if k == 0 || k > 1 && byteAt(p, 0) == '0' || k >= left {
			return 0, quickSlow
		}
		if byteAt(p, k) == '.' {
			f := k + 1
			for f < left && byteAt(p, f)-'0' < 10 {
				f++
			}
			if f == k+1 {
				return 0, quickRefused // a point without digits after it
			}
			if k = f; k >= left {
				return 0, quickSlow
			}
		}
		if byteAt(p, k)|0x20 == 'e' {
			return 0, quickSlow
		}
		if m.id >= 0 {
			v[m.id] = unsafe.Slice((*byte)(p), k)
		}
		p, left = unsafe.Add(p, k), left-k
	}
	panic("BUG: a shape without its closing bytes")
}

// wordAt is the little-endian word of the 8 bytes at p+off; the caller
// knows they are there.
func wordAt(p unsafe.Pointer, off int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(p, off)), 8))
}

// byteAt is the byte at p+off; the caller knows it is there.
func byteAt(p unsafe.Pointer, off int) byte { return *(*byte)(unsafe.Add(p, off)) }

// prefix is read of the line b starts with: it reports where the line's
// form ends in b.
func (sh *flatShape) prefix(b []byte, v *fields) (int, bool) {
	*v = fields{}
	pos, lo := 0, 0
	last := sh.n - 1 // the closing bytes
	for j := range sh.mem[:last] {
		m := &sh.mem[j]
		n := int(m.end) - lo
		switch {
		case n <= 16 && len(b)-pos >= 16:
			if (binary.LittleEndian.Uint64(b[pos:])^m.w[0])&m.mask[0]|(binary.LittleEndian.Uint64(b[pos+8:])^m.w[1])&m.mask[1] != 0 {
				return 0, false
			}
		case len(b)-pos < n || string(b[pos:pos+n]) != string(sh.lits[lo:m.end]):
			return 0, false
		}
		lo = int(m.end)
		pos += n
		var end int
		if m.str {
			if end = plainRun(b, pos); end >= len(b) || b[end] != '"' {
				return 0, false
			}
			if t := trimSpace(b[pos:end]); m.id >= 0 && len(t) > 0 {
				v[m.id] = t // trimmed, an empty one nil: as lineFields leaves them
			}
			pos = end + 1
			continue
		}
		if pos >= len(b) || b[pos] != '-' && !isDigit(b[pos]) {
			return 0, false
		}
		if end = jsonNumber(b, pos); end < 0 {
			return 0, false
		}
		if m.id >= 0 {
			v[m.id] = b[pos:end]
		}
		pos = end
	}
	closing := sh.lits[lo:sh.mem[last].end]
	if len(b)-pos < len(closing) || string(b[pos:pos+len(closing)]) != string(closing) {
		return 0, false
	}
	return pos + len(closing), true
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringStop marks the bytes that end the plain part of a JSON string, or
// that utf8String must look at more closely: the closing quote, a
// backslash, the control characters and the bytes of multi-byte UTF-8.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// plainRun returns the index of the first byte from i that stringStop
// marks, or len(b). A JSON string that starts at i ends at the quote
// there, or where utf8String says from there: -1 if the string holds an
// escape, a control character or bytes that are not UTF-8, or is not
// closed. Since scanFlat takes nothing but ASCII outside strings, a line
// it accepts is valid UTF-8. utf8String is called only for what is not
// ASCII.
//
// plainRun reads eight bytes a step where the line has them (see
// stopIn), and the last few one by one.
func plainRun(b []byte, i int) int {
	for ; len(b)-i >= 8; i += 8 {
		if m := stopIn(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	return plainTail(b, i)
}

// plainTail is plainRun a byte at a time, for a line's last few bytes: a
// call of its own so that plainRun is inlined.
func plainTail(b []byte, i int) int {
	for i < len(b) && !stringStop[b[i]] {
		i++
	}
	return i
}

// stopIn marks, in the high bit of each byte of the little-endian word x,
// the bytes stringStop marks — a control character (below 0x20), a quote,
// a backslash or a byte of multi-byte UTF-8 (0x80 and up) — exactly for
// the lowest byte marked; above it a byte may be marked that is not (a
// subtraction's borrow), which the caller, taking the lowest, never sees.
func stopIn(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, s := x^'"'*ones, x^'\\'*ones // zero where a quote or a backslash is
	ctl := (x - 0x20*ones) &^ x     // below 0x20
	quote := (q - ones) &^ q
	bs := (s - ones) &^ s
	return (ctl | quote | bs | x) & highs
}

// utf8String finds the end of a string from its byte i, one that
// stringStop marks (or len(b)): see plainRun.
func utf8String(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		switch {
		case !stringStop[c]:
			i++
		case c == '"':
			return i
		case c < utf8.RuneSelf:
			return -1
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return -1
			}
			i += size
		}
	}
	return -1
}

// jsonNumber returns the end of the JSON number that starts at i, or -1 if
// it is not one by the JSON grammar. Most are digits, perhaps with a
// fraction, without a sign or an exponent, and a leading zero only as "0"
// or "0.": those are found here, inlined, the others by jsonNumberAll.
func jsonNumber(b []byte, i int) int {
	j := i
	for j < len(b) && b[j]-'0' < 10 {
		j++
	}
	if j == i || b[i] == '0' && j > i+1 {
		return jsonNumberAll(b, i)
	}
	if j < len(b) && b[j] == '.' {
		k := j + 1
		for k < len(b) && b[k]-'0' < 10 {
			k++
		}
		if k == j+1 {
			return -1 // a point without digits after it
		}
		j = k
	}
	if j < len(b) && b[j]|0x20 == 'e' {
		return jsonNumberAll(b, i)
	}
	return j
}

// jsonNumberAll is jsonNumber for any number.
func jsonNumberAll(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}
