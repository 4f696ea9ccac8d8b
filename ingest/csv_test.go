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
