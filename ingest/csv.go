package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
)

// csvState is what a CSV body's decoder keeps between lines.
type csvState struct {
	haveHeader bool
	colOf      []int // field id of each column, -1 for unknown ones
	cells      [][]byte
}

// csvFields fills d.v from a CSV line, or takes the header from the first.
func (d *decoder) csvFields(line int, b []byte) (ok, stop bool) {
	cs := d.csv
	var err error
	if cs.cells, err = splitCSV(cs.cells[:0], b); err != nil {
		if !cs.haveHeader {
			d.reject(line, -1, nil, "header: "+err.Error())
			return false, true
		}
		d.reject(line, -1, nil, err.Error())
		return false, false
	}
	if !cs.haveHeader {
		if cs.colOf, ok = d.header(line, cs.cells, cs.colOf[:0]); !ok {
			return false, true
		}
		cs.haveHeader = true
		return false, false
	}
	for c, cell := range cs.cells {
		if c < len(cs.colOf) && cs.colOf[c] >= 0 {
			d.v[cs.colOf[c]] = cell
		}
	}
	return true, false
}

// scanCSV fills d.v from a CSV line after the header that quotes nothing
// and is ASCII — what devices and spreadsheets write — in one pass over
// the line, eight bytes a step, and reports whether it could. A line with
// a quote or a byte of multi-byte UTF-8 is left to csvFields (after
// utf8.Valid), which then decides, so both paths give the same answers.
func (d *decoder) scanCSV(b []byte) bool {
	colOf := d.csv.colOf
	d.v = fields{}
	col, start, i := 0, 0, 0
	for ; i+8 <= len(b); i += 8 {
		for m := csvStopIn(binary.LittleEndian.Uint64(b[i:])); m != 0; m &= m - 1 {
			j := i + bits.TrailingZeros64(m)>>3
			switch c := b[j]; {
			case c == ',':
				d.setCell(colOf, col, b[start:j])
				col, start = col+1, j+1
			case c == '"' || c >= 0x80:
				return false
			} // else a byte marked above the lowest that is neither
		}
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == ',':
			d.setCell(colOf, col, b[start:i])
			col, start = col+1, i+1
		case c == '"' || c >= 0x80:
			return false
		}
	}
	d.setCell(colOf, col, b[start:])
	return true
}

// csvAt reads the CSV line rest starts with, a line after the header of
// a body in memory, in one pass over its bytes, eight a step: its cells
// into d.v, as lineFields would put them, when the line is plain — bytes
// of ASCII above ' ', nothing quoted, at least one, ended by "\n", "\r\n"
// or the body's end. It returns the line's length without its end and
// the bytes it spans with it. Any other line it leaves (ok false, d.v in
// any state) to be read as before: cut out, then split by scanCSV or
// csvFields and trimmed, which blanks, quotes and other bytes need.
func (d *decoder) csvAt(rest []byte) (line, span int, ok bool) {
	colOf := d.csv.colOf
	d.v = fields{}
	col, start, i := 0, 0, 0
	end := -1
	// cut handles the byte at j: a comma ends a cell, an end of line ends
	// the line, and any byte a plain line does not hold refuses it.
	cut := func(j int) bool {
		switch c := rest[j]; {
		case c == ',':
			d.setCell(colOf, col, rest[start:j])
			col, start = col+1, j+1
		case c == '\n':
			end, span = j, j+1
		case c == '\r' && j+1 < len(rest) && rest[j+1] == '\n':
			end, span = j, j+2
		case c <= ' ' || c == '"' || c >= 0x80:
			return false
		} // else a byte marked above the lowest that is none of these
		return true
	}
	for ; end < 0 && i+8 <= len(rest); i += 8 {
		for m := csvPlainStopIn(binary.LittleEndian.Uint64(rest[i:])); m != 0 && end < 0; m &= m - 1 {
			if !cut(i + bits.TrailingZeros64(m)>>3) {
				return 0, 0, false
			}
		}
	}
	for ; end < 0 && i < len(rest); i++ {
		if c := rest[i]; c <= ',' || c >= 0x80 { // ',', '"' and the bytes up to ' ' all lie at or below ',
			if !cut(i) {
				return 0, 0, false
			}
		}
	}
	if end < 0 {
		end, span = len(rest), len(rest)
	}
	if end == 0 {
		return 0, 0, false // an empty line: skipped as before
	}
	d.setCell(colOf, col, rest[start:end])
	for id := range d.sc.fields {
		if len(d.v[id]) == 0 {
			d.v[id] = nil
		}
	}
	return end, span, true
}

// csvPlainStopIn is csvStopIn marking too the bytes up to ' ' (blanks,
// control bytes and line ends), with the same exactness: exact for the
// lowest byte marked, and above it possibly a byte that is none of these.
func csvPlainStopIn(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	c, q := x^','*ones, x^'"'*ones // zero where a comma or a quote is
	return ((c-ones)&^c | (q-ones)&^q | (x-'!'*ones)&^x | x) & highs
}

// setCell puts cell, the line's column col, in its field, if the column
// names one.
func (d *decoder) setCell(colOf []int, col int, cell []byte) {
	if col < len(colOf) && colOf[col] >= 0 {
		d.v[colOf[col]] = cell
	}
}

// csvStopIn marks, in the high bit of each byte of the little-endian word
// x, its commas, quotes and bytes of 0x80 and up, exactly for the lowest
// byte marked; above it a byte may be marked that is none of these (a
// subtraction's borrow), which the caller tells by reading the byte.
func csvStopIn(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	c, q := x^','*ones, x^'"'*ones // zero where a comma or a quote is
	return ((c-ones)&^c | (q-ones)&^q | x) & highs
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
	if id, missing := d.sc.header(&has); id >= 0 {
		d.reject(line, id, nil, "missing column "+strings.Join(missing, ", ")+"; a header names "+d.sc.expect)
		return nil, false
	}
	return colOf, true
}

var (
	errCSVUnterminated = errors.New("quoted field not closed on its line (fields may not span lines)")
	errCSVBareQuote    = errors.New(`bare " in an unquoted field`)
	errCSVAfterQuote   = errors.New(`unexpected character after a closing "`)
)

// splitCSV appends the fields of one CSV line to dst. Quoted fields are
// unescaped in place, so the fields alias line.
func splitCSV(dst [][]byte, line []byte) ([][]byte, error) {
	if bytes.IndexByte(line, '"') < 0 {
		// Most lines quote nothing: their fields end at the commas,
		// found by IndexByte's wide loop rather than byte by byte.
		for {
			j := bytes.IndexByte(line, ',')
			if j < 0 {
				return append(dst, line), nil
			}
			dst = append(dst, line[:j])
			line = line[j+1:]
		}
	}
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
