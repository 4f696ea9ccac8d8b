package geo

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// column is one field a registry table reads and the header names it goes
// by in files people have; the first alias present in the header wins.
type column struct {
	aliases  []string
	required bool
}

// table reads a CSV registry file by header name rather than position, so
// columns may come in any order, with extra ones, quoted, after a BOM.
type table struct {
	r      *csv.Reader
	idx    []int    // per column: its position in a record, or -1
	header []string // per column: the header name it was found under
	rec    []string
	line   int
}

// utf8BOM is the byte order mark Excel writes at the start of CSV files.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func newTable(r io.Reader, cols []column) (*table, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
		br.Discard(3)
	}
	t := &table{r: csv.NewReader(br), idx: make([]int, len(cols)), header: make([]string, len(cols))}
	t.r.FieldsPerRecord = -1
	t.r.TrimLeadingSpace = true
	t.r.ReuseRecord = true
	head, err := t.r.Read()
	if err == io.EOF {
		return nil, errors.New("line 1: missing header row")
	}
	if err != nil {
		return nil, err
	}
	pos := make(map[string]int, len(head))
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	for i, c := range cols {
		t.idx[i] = -1
		for _, a := range c.aliases {
			if p, ok := pos[a]; ok {
				t.idx[i], t.header[i] = p, a
				break
			}
		}
		if t.idx[i] < 0 && c.required {
			return nil, fmt.Errorf("line 1: header %q has no column %s", strings.Join(head, ","), strings.Join(c.aliases, " or "))
		}
	}
	return t, nil
}

// next reads the following record; it returns false at the end of input.
func (t *table) next() (bool, error) {
	rec, err := t.r.Read()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t.rec = rec
	t.line, _ = t.r.FieldPos(0)
	return true, nil
}

// has reports whether the header holds column i.
func (t *table) has(i int) bool { return t.idx[i] >= 0 }

// str returns column i of the current record, trimmed; "" when absent.
func (t *table) str(i int) string {
	if p := t.idx[i]; p >= 0 && p < len(t.rec) {
		return strings.TrimSpace(t.rec[p])
	}
	return ""
}

// errorf reports bad input in column i of the current record.
func (t *table) errorf(i int, format string, args ...any) error {
	return fmt.Errorf("line %d: field %s %q: %s", t.line, t.header[i], t.str(i), fmt.Sprintf(format, args...))
}

// required returns column i, present in the header, or an error naming it
// when the record leaves it empty.
func (t *table) required(i int) (string, error) {
	s := t.str(i)
	if s == "" {
		return "", fmt.Errorf("line %d: field %s is empty", t.line, t.header[i])
	}
	return s, nil
}

// latLng parses columns lat and lng of the current record.
func (t *table) latLng(lat, lng int) (float64, float64, error) {
	var v [2]float64
	for k, i := range [2]int{lat, lng} {
		s, err := t.required(i)
		if err != nil {
			return 0, 0, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, t.errorf(i, "not a number")
		}
		v[k] = f
	}
	if err := checkLat(v[0]); err != nil {
		return 0, 0, t.errorf(lat, "%v", err)
	}
	if err := checkLng(v[1]); err != nil {
		return 0, 0, t.errorf(lng, "%v", err)
	}
	return v[0], v[1], nil
}

// each calls row for every record until the end of input or an error.
func (t *table) each(row func() error) error {
	for {
		ok, err := t.next()
		if err != nil || !ok {
			return err
		}
		if err := row(); err != nil {
			return err
		}
	}
}

// firstLines remembers the line each id was first read on, so that an id
// read again is refused naming both lines.
type firstLines map[string]int

func (f firstLines) add(t *table, what, id string) error {
	if l, dup := f[id]; dup {
		return fmt.Errorf("line %d: %s %q already on line %d", t.line, what, id, l)
	}
	f[id] = t.line
	return nil
}

// readRows reads a CSV registry file with columns cols, each record turned
// into a T with its id by row, or skipped when row says keep is false. An
// id read twice is refused, naming both lines and what the id is of.
func readRows[T any](r io.Reader, cols []column, what string, row func(t *table) (v T, id string, keep bool, err error)) ([]T, error) {
	t, err := newTable(r, cols)
	if err != nil {
		return nil, err
	}
	var out []T
	seen := firstLines{}
	err = t.each(func() error {
		v, id, keep, err := row(t)
		if err != nil || !keep {
			return err
		}
		out = append(out, v)
		return seen.add(t, what, id)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// place is the id, name and position of one registry record.
type place struct {
	id, name string
	lat, lng float64
}

// place reads the id (required), name (the id when empty) and position
// columns of the current record.
func (t *table) place() (place, error) {
	p := place{name: t.str(colName)}
	var err error
	if p.id, err = t.required(colID); err != nil {
		return p, err
	}
	if p.name == "" {
		p.name = p.id
	}
	p.lat, p.lng, err = t.latLng(colLat, colLng)
	return p, err
}

// The columns of a registry table, by index into its column list: every
// registry names an id, a name and a position, and one column of its own
// (a sensor's kind, a station's line, a GTFS stop's location type).
const (
	colID = iota
	colName
	colLat
	colLng
	colOwn
)
