package cityfile

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/answer"
)

// Converter turns the records of one file into flowd CSV event lines.
type Converter interface {
	// Kind is the events written: swipes, counts or footfall.
	Kind() string
	// Header is the flowd CSV header of the lines written, with its newline.
	Header() string
	// Convert appends the events of the record on source line line to dst.
	Convert(line int, rec []string, dst []byte) ([]byte, Result)
}

// Result is what became of one record.
type Result struct {
	Events int // event lines written
	// Blank is a record with no text at all (spreadsheets pad with them):
	// skipped, neither rejected nor missing.
	Blank    bool
	Missing  []Problem // cells that held no reading (empty, -1, undefined…)
	Rejected []Problem // the record or some of its cells could not be read
}

// Problem names a source line, the column and the text that were wrong or
// missing, and why.
type Problem struct {
	Line   int
	Field  string
	Value  string
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("line %d: field %q value %q: %s", p.Line, p.Field, p.Value, p.Reason)
}

// Registry resolves the names a file gives sensors, sites or stations to
// their ids; flowd import fills one from the server's registry.
type Registry struct {
	ids   map[string]bool
	names map[string][]string // lower-case name → ids
}

// NewRegistry returns a registry of the entries given as id, name pairs.
func NewRegistry(pairs [][2]string) *Registry {
	r := &Registry{ids: map[string]bool{}, names: map[string][]string{}}
	for _, p := range pairs {
		r.ids[p[0]] = true
		if p[1] != "" {
			k := strings.ToLower(strings.TrimSpace(p[1]))
			r.names[k] = append(r.names[k], p[0])
		}
	}
	return r
}

// lookup returns the id a column name stands for: an id itself, or the one
// entry of that name; ambiguous lists the ids of a name several entries have.
func (r *Registry) lookup(name string) (id string, ambiguous []string) {
	if r == nil {
		return "", nil
	}
	if r.ids[name] {
		return name, nil
	}
	ids := r.names[strings.ToLower(strings.TrimSpace(name))]
	if len(ids) == 1 {
		return ids[0], nil
	}
	return "", ids
}

// closest returns the registry name nearest to name, for suggestions, or
// "" when even that one differs in more than half of name.
func (r *Registry) closest(name string) string {
	if r == nil {
		return ""
	}
	best := answer.Closest(name, slices.Sorted(maps.Keys(r.names)))
	if best == "" || answer.Distance(name, best) > len(name)/2 {
		return ""
	}
	return best
}

// New returns the converter of spec's layout for a file whose header
// record is header (nil for layouts without one). reg resolves sensor or
// site names of wide tables; nil when the server's could not be read.
func New(sp *Spec, header []string, reg *Registry) (Converter, error) {
	switch sp.Layout {
	case LayoutWide:
		return newWide(sp, header, reg)
	case LayoutRows:
		return newRows(sp, header)
	case LayoutGTFSRide:
		return newGTFSRide(sp, header)
	case LayoutPeMS:
		return newPeMS(sp)
	}
	panic("BUG: cityfile.New of layout " + sp.Layout)
}

// HasHeader reports whether files of the layout start with a header row.
func (sp *Spec) HasHeader() bool { return sp.Layout != LayoutPeMS }

// Fields of flowd's CSV events, per kind, in the order written.
var kindFields = map[string][]string{
	"swipes":   {"time", "card", "dir", "station", "lat", "lng", "line", "mode"},
	"counts":   {"time", "sensor", "class", "count", "interval", "speed"},
	"footfall": {"time", "site", "gate", "in", "out", "occupancy"},
}

func headerOf(kind string) string { return strings.Join(kindFields[kind], ",") + "\n" }

// columns finds header names case-insensitively, ignoring spaces around
// them and a byte-order mark.
type columns map[string]int

func newColumns(header []string) columns {
	c := columns{}
	for i, h := range header {
		k := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := c[k]; !dup {
			c[k] = i
		}
	}
	return c
}

func (c columns) find(name string) int {
	if i, ok := c[strings.ToLower(strings.TrimSpace(name))]; ok {
		return i
	}
	return -1
}

// cell returns field i of rec, "" when the record is short.
func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// blank reports whether every field of rec is empty.
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// timeReader reads a record's time from its columns and zone.
type timeReader struct {
	col, hour         int
	colName, hourName string
	formats           []string
	clock             *Clock
}

// defaultFormats are understood in every time column besides the spec's.
var defaultFormats = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

func newTimeReader(sp *Spec, cols columns, header []string, repeatIsSecond bool) (*timeReader, error) {
	clock, err := NewClock(sp.TZ, repeatIsSecond)
	if err != nil {
		return nil, err
	}
	tr := &timeReader{col: cols.find(sp.Time.Column), hour: -1, colName: sp.Time.Column, hourName: sp.Time.Hour, clock: clock}
	if tr.col < 0 {
		return nil, fmt.Errorf("no time column %q; the header has %s", sp.Time.Column, quoteList(header))
	}
	if sp.Time.Hour != "" {
		if tr.hour = cols.find(sp.Time.Hour); tr.hour < 0 {
			return nil, fmt.Errorf("no hour column %q; the header has %s", sp.Time.Hour, quoteList(header))
		}
	}
	tr.formats = append(append([]string(nil), sp.Time.Formats...), defaultFormats...)
	return tr, nil
}

// read returns the record's instant, or the problem with it.
func (tr *timeReader) read(line int, rec []string) (time.Time, *Problem) {
	text := cell(rec, tr.col)
	if text == "" {
		return time.Time{}, &Problem{line, tr.colName, "", "required: the record's time"}
	}
	t, absolute, ok := tr.parse(text)
	if !ok {
		return time.Time{}, &Problem{line, tr.colName, text, "want a time as " + strings.Join(tr.formats[:len(tr.formats)-len(defaultFormats)+1], " or ") + " (or unix seconds)"}
	}
	if tr.hour >= 0 {
		h := cell(rec, tr.hour)
		n, err := strconv.Atoi(h)
		if err != nil || n < 0 || n > 23 {
			return time.Time{}, &Problem{line, tr.hourName, h, "want an hour of the day from 0 to 23"}
		}
		t = t.Add(time.Duration(n) * time.Hour)
	}
	if absolute {
		return t.UTC(), nil
	}
	inst, err := tr.clock.Instant(t)
	if err != nil {
		return time.Time{}, &Problem{line, tr.colName, text, err.Error()}
	}
	return inst, nil
}

// parse reads text by the formats; absolute says it carried its offset.
func (tr *timeReader) parse(text string) (t time.Time, absolute, ok bool) {
	if n, err := strconv.ParseInt(text, 10, 64); err == nil && len(text) >= 9 && len(text) <= 11 {
		return time.Unix(n, 0).UTC(), true, true
	}
	for _, f := range tr.formats {
		if t, err := time.Parse(f, text); err == nil {
			return t, hasOffset(f), true
		}
	}
	return time.Time{}, false, false
}

// hasOffset reports whether a Go layout reads a zone or offset.
func hasOffset(layout string) bool {
	return strings.Contains(layout, "Z07") || strings.Contains(layout, "-07") || strings.Contains(layout, "MST")
}

// appendTime writes an instant as flowd reads it.
func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05Z")
}

// appendField writes one CSV field, quoted when it must be.
func appendField(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(dst, s...)
	}
	// flowd's CSV fields may not span lines: a line break becomes a space.
	s = strings.NewReplacer("\r", " ", "\n", " ", `"`, `""`).Replace(s)
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(strings.TrimPrefix(n, "\ufeff"))
	}
	return strings.Join(q, ", ")
}
