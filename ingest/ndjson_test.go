package ingest

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanFlatAgrees checks that where the one-pass scanner takes a line, the
// line is valid UTF-8 (decoding checks no further) and the full parser
// takes it too and fills the same fields.
func scanFlatAgrees(t *testing.T, line []byte) {
	for _, sc := range []*schema{&swipeSchema, &countSchema, &footfallSchema} {
		fast := decoder{sc: sc}
		if !fast.scanFlat(line) {
			continue
		}
		if !utf8.Valid(line) {
			t.Fatalf("%q: the scanner took a line that is not UTF-8", line)
		}
		full := decoder{sc: sc, json: jsonParsers.Get()}
		if !full.jsonFields(1, line) {
			t.Fatalf("%q: the scanner took a line the parser refuses: %+v", line, full.errs)
		}
		jsonParsers.Put(full.json)
		for id := range sc.fields {
			if !bytes.Equal(fast.v[id], full.v[id]) || (fast.v[id] == nil) != (full.v[id] == nil) {
				t.Fatalf("%q: field %s: scanner %q, parser %q", line, sc.fields[id], fast.v[id], full.v[id])
			}
		}
	}
}

func TestScanFlatAgreesWithParser(t *testing.T) {
	lines := []string{
		`{"time":"2019-01-07T06:41:33Z","card":"C1","dir":"in","station":"S1"}`,
		`{"time":1546843293,"sensor":"cam-1","class":"car","count":3,"interval":60,"speed":31.5}`,
		` { "time" : 1546843293 , "site" : "west-lake", "in" : 4, "out": null } `,
		`{"time":"","card":null,"card":"C2","dir":"out","lat":30.25,"lng":-120.5e-1}`,
		`{}`,
		`{"count":-0,"speed":0.5E+3,"x":"y"}`,
		`{"count":01}`, `{"count":1.}`, `{"count":-}`, `{"count":1e}`, `{"count":+1}`,
		`{"card":"a\"b"}`, `{"card":"a\u0041"}`, `{"count":true}`, `{"x":{"y":1}}`, `{"x":[1]}`,
		`{"time":1}x`, `{"time":1,}`, `{"time" 1}`, `["time"]`, `{"time":1`, `{"time":"1`,
		"{\"card\":\"a\tb\"}", `{"station":"西湖"}`,
		"{\"station\":\"\xe8\xa5\"}", "{\"station\":\"a\xff\"}", "{\"station\":\"\xed\xa0\x80\"}", "{\"x\":1}\xc3",
	}
	for _, l := range lines {
		scanFlatAgrees(t, []byte(l))
	}
	// The scanner must take the common forms, or it is no fast path.
	for _, l := range append(lines[:6:6], `{"station":"西湖","card":"Ünïcode"}`) {
		d := decoder{sc: &countSchema}
		if !d.scanFlat([]byte(l)) {
			t.Errorf("%s: the scanner left a plain line to the parser", l)
		}
	}
}

func FuzzScanFlat(f *testing.F) {
	f.Add([]byte(`{"time":1546843293,"sensor":"cam-1","class":"car","count":3,"interval":60,"speed":31.5}`))
	f.Add([]byte(`{"time":"2019-01-07T06:41:33Z","card":"C1","dir":"in","station":"S1","lat":null}`))
	f.Add([]byte("{\"station\":\"西湖\",\"card\":\"a\xe8\xa5\"}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		scanFlatAgrees(t, line)
	})
}

// shapeAgrees checks that after the decoder took first (learning its
// shape), a line it then takes by its shape gets the fields scanFlat
// gives it.
func shapeAgrees(t *testing.T, first, line []byte) bool {
	t.Helper()
	d := decoder{sc: &countSchema}
	if !d.scanFlat(first) {
		return false
	}
	taken := d.again(line)
	atAgrees(t, first, line, taken, &d.v)
	if !taken {
		return false
	}
	fresh := decoder{sc: &countSchema}
	if !fresh.scanFlat(line) {
		t.Fatalf("after %q, %q: taken by its shape, refused by scanFlat", first, line)
	}
	for id := range countSchema.fields {
		// lineFields trims what scanFlat gives, an empty value nil;
		// the shape's reader does so itself.
		if fresh.v[id] = trimSpace(fresh.v[id]); len(fresh.v[id]) == 0 {
			fresh.v[id] = nil
		}
		if !bytes.Equal(d.v[id], fresh.v[id]) || (d.v[id] == nil) != (fresh.v[id] == nil) {
			t.Fatalf("after %q, %q: field %s: by shape %q, scanFlat %q", first, line, countSchema.fields[id], d.v[id], fresh.v[id])
		}
	}
	return true
}

// atAgrees checks that againAt, reading line where a body holds it (with
// nothing after it, or more lines, long or short), takes it as again did
// (taken) with the same values (v), so that quick's leaving a line to
// prefix changes nothing.
func atAgrees(t *testing.T, first, line []byte, taken bool, v *fields) {
	t.Helper()
	for _, l := range [][]byte{first, line} {
		if bytes.IndexByte(l, '\n') >= 0 || bytes.HasSuffix(l, []byte("\r")) {
			return // not a line: in a body, a "\r" before a "\n" ends the line
		}
	}
	for _, after := range []string{"", "\n", "\r\n", "\n{}", "\n" + strings.Repeat("x", 40)} {
		d := decoder{sc: &countSchema}
		if !d.scanFlat(first) {
			t.Fatalf("%q: not scanned", first)
		}
		// The body ends where its allocation does (4096 bytes is a size
		// class of Go's allocator), so that checkptr fails a read or a
		// pointer past it.
		body := append(bytes.Clone(line), after...)
		if len(body) <= 4096 {
			body = append(make([]byte, 4096)[:4096-len(body)], body...)[4096-len(body):]
		}
		n, _, ok := d.againAt(body)
		if ok != taken || ok && n != len(line) {
			t.Fatalf("after %q, %q followed by %q: againAt took %v (%d bytes), again %v", first, line, after, ok, n, taken)
		}
		if !ok {
			continue
		}
		for id := range countSchema.fields {
			if !bytes.Equal(d.v[id], v[id]) || (d.v[id] == nil) != (v[id] == nil) {
				t.Fatalf("after %q, %q followed by %q: field %s: againAt %q, again %q", first, line, after, countSchema.fields[id], d.v[id], v[id])
			}
		}
	}
}

func TestShapeAgreesWithScanFlat(t *testing.T) {
	first := `{"time":"2019-01-07T06:41:33Z","sensor":"cam-1","class":"car","count":3,"interval":60,"speed":31.5,"x":1,"count":9}`
	taken := []string{
		`{"time":"2019-01-07T06:42:00Z","sensor":"cam-22","class":"bus","count":-0,"interval":300,"speed":1e3,"x":2,"count":7}`,
		`{"time":"","sensor":" c ","class":"  ","count":0,"interval":1,"speed":0.5E+3,"x":-1,"count":1}`,
		`{"time":"2019-01-07T06:42:00Z","sensor":" c","class":"bus ","count":0,"interval":60,"speed":0.5,"x":1,"count":9}`,
		`{"time":"2019-01-07T06:42:00Z","sensor":"cam-123","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9}`,
	}
	refused := []string{
		`{"time":"2019-01-07T06:42:00Z","sensor":"cam-22","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9} `,
		`{"time":"2019-01-07T06:42:00Z","sensor":"cam-22","class":"bus","count":3,"interval":60,"speed":31.5,"x":1}`,
		`{"time":"2019","sensor":"cam\"22","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"西湖","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":3,"interval":60,"speed":31.5,"x":"y","count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":"3","interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":01,"interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":null,"interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9}}`,
		`{"time":"2019","sensor":"c","class":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9`,
		`{"time":"2019","sensor":"c","clasS":"bus","count":3,"interval":60,"speed":31.5,"x":1,"count":9}`,
		`{"time":"2019","sensor":"c","class":"bus","count":3,"interval":60,"speed":3.,"x":1,"count":9}`,
	}
	for _, l := range taken {
		if !shapeAgrees(t, []byte(first), []byte(l)) {
			t.Errorf("%s: not taken by the shape of %s", l, first)
		}
	}
	for _, l := range refused {
		if shapeAgrees(t, []byte(first), []byte(l)) {
			t.Errorf("%s: taken by the shape of %s", l, first)
		}
	}
	// A line cut anywhere is refused where it stands in a body as well:
	// at a body's end, quick stops short of it (make test runs these
	// tests with checkptr, which fails a pointer past an allocation).
	for _, l := range append(taken, first) {
		for i := range len(l) {
			if shapeAgrees(t, []byte(first), []byte(l[:i])) {
				t.Errorf("%s: taken by the shape of %s", l[:i], first)
			}
		}
	}
	// Bytes before a value longer than two words are compared too.
	long := `{"time":1,"sensor":"a","aaaaaaaaaaaaa12":2,"count":1}`
	if !shapeAgrees(t, []byte(long), []byte(`{"time":2,"sensor":"b","aaaaaaaaaaaaa12":3,"count":4}`)) {
		t.Errorf("a line of the shape of %s not taken", long)
	}
	if shapeAgrees(t, []byte(long), []byte(`{"time":2,"sensor":"b","aaaaaaaaaaaaa13":3,"count":4}`)) {
		t.Errorf("a line of another shape than %s taken", long)
	}
	// quick leaves such a shape to prefix: it compares two words.
	d0 := decoder{sc: &countSchema}
	if !d0.scanFlat([]byte(long)) || d0.shapes[0].n < 1 {
		t.Fatalf("%s: no shape learned", long)
	}
	if _, q := d0.shapes[0].quick([]byte(long+"\n"+long), &d0.v); q != quickSlow {
		t.Errorf("quick on a shape of more than 16 bytes before a value: %d, want quickSlow", q)
	}
	// A line of the form before last is taken too, and the decoder
	// keeps reading either form by its shape.
	d := decoder{sc: &countSchema}
	a := []byte(`{"time":1,"sensor":"a","class":"car","count":1,"interval":60}`)
	b := []byte(`{"time":1,"sensor":"a","class":"car","count":1,"interval":60,"speed":2}`)
	if !d.scanFlat(a) || !d.scanFlat(b) || !d.again(a) || !d.again(b) || !d.again(a) {
		t.Error("the decoder does not keep its last two shapes")
	}
}

func FuzzShapeAgrees(f *testing.F) {
	f.Add([]byte(`{"time":"2019-01-07T06:41:33Z","sensor":"cam-1","class":"car","count":3,"interval":60,"speed":31.5}`),
		[]byte(`{"time":"2019-01-07T06:41:33Z","sensor":"cam-2","class":"bus","count":33,"interval":60,"speed":1.5}`))
	f.Add([]byte(` { "time" : 1546843293 , "sensor" : "west-lake", "count" : 4}`), []byte(` { "time" : 1546843293 , "sensor" : "西湖", "count" : 4}`))
	f.Fuzz(func(t *testing.T, first, line []byte) {
		shapeAgrees(t, first, line)
	})
}

// TestPlainRunStopsWhereTheTableSays checks plainRun, which reads eight
// bytes a step, against the table read a byte at a time: every byte value
// at every place of a word, after plain bytes and after other stops, from
// every start.
func TestPlainRunStopsWhereTheTableSays(t *testing.T) {
	byteAtATime := func(b []byte, i int) int {
		for i < len(b) && !stringStop[b[i]] {
			i++
		}
		return i
	}
	for c := range 256 {
		for at := range 20 {
			for _, fill := range []byte{'a', 0x7f, ' ', '!', '#', '[', ']'} {
				b := bytes.Repeat([]byte{fill}, 20)
				b[at] = byte(c)
				// A stop above the byte under test, where a borrow from
				// it could mark one that is not a stop.
				if at+1 < len(b) {
					b[at+1] = 0x21
				}
				for i := range len(b) + 1 {
					if got, want := plainRun(b, i), byteAtATime(b, i); got != want {
						t.Fatalf("plainRun(%q, %d) = %d, want %d", b, i, got, want)
					}
				}
			}
		}
	}
	// Two stops in a word: the lower is found whichever the upper is.
	for lo := range 256 {
		for _, hi := range []byte{0, 0x1f, '"', '\\', 0x80, 0xff} {
			b := []byte("abcdefghijklmnop")
			b[3], b[4] = byte(lo), hi
			if got, want := plainRun(b, 0), byteAtATime(b, 0); got != want {
				t.Fatalf("plainRun(%q, 0) = %d, want %d", b, got, want)
			}
		}
	}
}

// TestJSONNumberFastPathAgrees checks jsonNumber, whose common cases are
// found without jsonNumberAll, against it on every string of up to six
// bytes of the characters a number is made of, and some others.
func TestJSONNumberFastPathAgrees(t *testing.T) {
	const alphabet = "019.-+eE,x"
	var try func(b []byte)
	try = func(b []byte) {
		if len(b) > 0 {
			if got, want := jsonNumber(b, 0), jsonNumberAll(b, 0); got != want {
				t.Fatalf("jsonNumber(%q) = %d, jsonNumberAll %d", b, got, want)
			}
		}
		if len(b) == 6 {
			return
		}
		for i := range len(alphabet) {
			try(append(b, alphabet[i]))
		}
	}
	try(nil)
}
