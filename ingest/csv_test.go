package ingest

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestScanCSVAgreesWithSplit checks scanCSV, which reads eight bytes a
// step, against splitCSV's fields: every byte value at every place of a
// line, beside commas (a comma's borrow can mark the byte above it), and
// random lines of the bytes that matter. A line scanCSV declines must hold
// a quote or a byte of 0x80 and up; one it takes must give csvFields'
// fields.
func TestScanCSVAgreesWithSplit(t *testing.T) {
	colOf := []int{0, -1, 2, 1, 4, 3}
	check := func(line []byte) {
		t.Helper()
		d := &decoder{csv: &csvState{haveHeader: true, colOf: colOf}}
		d.v[5] = []byte("stale") // a field the line does not set must be cleared
		took := d.scanCSV(line)
		fast := d.v
		decline := bytes.IndexByte(line, '"') >= 0 || slices.ContainsFunc(line, func(c byte) bool { return c >= 0x80 })
		if took == decline {
			t.Fatalf("scanCSV(%q) took it: %v", line, took)
		}
		if !took {
			return
		}
		d.v = fields{}
		if ok, _ := d.csvFields(1, slices.Clone(line)); !ok {
			t.Fatalf("csvFields(%q) declined a line without quotes", line)
		}
		for i := range fast {
			if !bytes.Equal(fast[i], d.v[i]) || (fast[i] == nil) != (d.v[i] == nil) {
				t.Fatalf("scanCSV(%q): field %d is %q, csvFields gives %q", line, i, fast[i], d.v[i])
			}
		}
	}
	for c := range 256 {
		for at := range 20 {
			for _, fill := range []byte{'a', ',', '-', '#', ' '} {
				b := bytes.Repeat([]byte{fill}, 20)
				b[at] = byte(c)
				if at > 0 {
					b[at-1] = ','
				}
				check(b)
				check(b[:at+1])
			}
		}
	}
	alphabet := []byte{',', ',', '-', '+', '#', '"', 'a', '0', ' ', '\t', 0x80, 0xc3, 0xa9}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
			if r.IntN(4) == 0 {
				b[i] = 'x' // mostly plain bytes, as real lines are
			}
		}
		check(b)
	}
}

// csvAtAgrees fails t unless csvAt, reading line followed by after in a
// body in memory after header, takes the line exactly when it is one that
// must be (want), or else one that lineFields takes too, with the same
// span and the same fields.
func csvAtAgrees(t *testing.T, header, line, after string, want bool) {
	t.Helper()
	newDecoder := func() *decoder {
		d := &decoder{sc: &countSchema, csv: &csvState{}}
		if ok, stop := d.lineFields(1, []byte(header), false, testMaxLine); ok || stop || !d.csv.haveHeader {
			t.Fatalf("header %q not taken", header)
		}
		return d
	}
	body := line + after
	fast := newDecoder()
	// A line read before, every field set: none of it may be left in the
	// fields of the line read next (a reader that did not clear them
	// first would have to write every field a column names).
	if _, _, ok := fast.csvAt([]byte("2019-01-07T08:00:00Z,cam-9,bus,7,60,1.5,y,z,w\n")); !ok {
		t.Fatal("csvAt did not take the line before")
	}
	n, span, ok := fast.csvAt([]byte(body))
	ok = ok && n <= testMaxLine // as decode takes it
	if want && !ok {
		t.Fatalf("%q followed by %q: csvAt did not take it", line, after)
	}
	if !ok {
		return
	}
	slow := newDecoder()
	src := lineSource{b: []byte(body)}
	b, tooLong, err := src.line(testMaxLine, false)
	if err != nil {
		t.Fatal(err)
	}
	taken, _ := slow.lineFields(2, b, tooLong, testMaxLine)
	if !taken || len(slow.errs) > 0 {
		t.Fatalf("%q followed by %q: csvAt took it, lineFields did not (%+v)", line, after, slow.errs)
	}
	if n != len(b) || span != src.mem {
		t.Fatalf("%q followed by %q: csvAt line %d span %d, lineFields line %d span %d", line, after, n, span, len(b), src.mem)
	}
	for id := range countSchema.fields {
		if !bytes.Equal(fast.v[id], slow.v[id]) || (fast.v[id] == nil) != (slow.v[id] == nil) {
			t.Fatalf("%q followed by %q: field %s: csvAt %q, lineFields %q", line, after, countSchema.fields[id], fast.v[id], slow.v[id])
		}
	}
}

// TestCSVAtAgrees: csvAt, which reads a plain CSV line in one pass, takes
// the lines it should and gives for them what cutting the line out and
// lineFields give, whatever follows the line; the others it leaves.
func TestCSVAtAgrees(t *testing.T) {
	header := "time,sensor,class,count,interval,speed,x"
	plain := []string{
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5,x",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,,,",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5,x,extra,columns",
		",,,,,,",
		",",
		"a",
		"1546819200000,a!#$%&'()*+-./:;<=>?@[]^_`{|}~,bus,0,1,0",
		"!#$%&'(", // all in the bytes after the last whole word
		")*+-./:",
		"2019-01-07T08:00:00Z,cam-0001,car,12,60,35.5,x1234567",
		"2019-01-07T08:00:00Z,cam-0001,car,12,60,35.5,x12345678",
	}
	left := []string{
		"",
		" ",
		"2019-01-07T08:00:00+08:00, cam-0001,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam-0001 ,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5\t",
		"2019-01-07T08:00:00+08:00,\"cam-0001\",car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam\"0001,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,détecteur,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam\r0001,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam\x000001,car,12,60,35.5",
		"2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5\xff",
	}
	afters := []string{"", "\n", "\r\n", "\n2019-01-07T08:00:00Z,b,car,1", "\r\n\n", "\n\"q\",", "\r", "\r\r\n"}
	for _, after := range afters {
		for _, line := range plain {
			// A lone "\r" ends no line: that one is left, as "\r" is.
			csvAtAgrees(t, header, line, after, after != "\r" && after != "\r\r\n")
			// Every cut of it, and of it with what follows.
			for k := range len(line + after) {
				csvAtAgrees(t, header, (line + after)[:k], "", false)
			}
		}
		for _, line := range left {
			if _, _, ok := (&decoder{sc: &countSchema, csv: &csvState{colOf: []int{0}}}).csvAt([]byte(line + after)); ok {
				t.Fatalf("%q followed by %q: csvAt took it", line, after)
			}
		}
	}
}

// FuzzCSVAtAgrees is TestCSVAtAgrees over any bytes: whatever csvAt takes,
// lineFields takes too, the same.
func FuzzCSVAtAgrees(f *testing.F) {
	f.Add("2019-01-07T08:00:00+08:00,cam-0001,car,12,60,35.5", "\r\n")
	f.Add(",,\r", "\n")
	f.Add("a,\"b\"", "")
	f.Fuzz(func(t *testing.T, line, after string) {
		csvAtAgrees(t, "time,sensor,class,count,interval,speed", line, after, false)
	})
}
