package cityfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// naiveLayout is the one time format flowd reads without an offset (and
// takes as UTC): with a zone given, import rewrites it as that zone's time.
const naiveLayout = "2006-01-02 15:04:05"

// Localize returns a flowd time text with its wall time read in the
// clock's zone, as RFC 3339 UTC; texts that carry an offset or are unix
// times are absolute already and come back as they are.
func (c *Clock) Localize(text string) (string, error) {
	if len(text) < len(naiveLayout) || text[10] != ' ' || strings.ContainsAny(text[19:], "Zz+-") {
		return text, nil
	}
	w, err := time.Parse(naiveLayout, text[:19])
	if err != nil {
		return text, nil // the server says what is wrong with it
	}
	if rest := text[19:]; rest != "" {
		frac, err := time.ParseDuration("0" + rest + "s")
		if err != nil || rest[0] != '.' {
			return text, nil
		}
		w = w.Add(frac)
	}
	t, err := c.Instant(w)
	if err != nil {
		return "", err
	}
	return t.Format(time.RFC3339Nano), nil
}

// retimeCSV passes flowd's own CSV through, its time column read in a zone.
type retimeCSV struct {
	kind, header string
	col          int
	clock        *Clock
}

// NewRetime returns the converter of flowd's own CSV whose times without an
// offset are wall times of zone tz.
func NewRetime(kind, tz string, header []string) (Converter, error) {
	clock, err := NewClock(tz, false)
	if err != nil {
		return nil, err
	}
	col := newColumns(header).find("time")
	if col < 0 {
		return nil, fmt.Errorf("no column \"time\" to read in %s; the header has %s", tz, quoteList(header))
	}
	var h []byte
	for i, name := range header {
		if i > 0 {
			h = append(h, ',')
		}
		h = appendField(h, strings.TrimPrefix(name, "\ufeff"))
	}
	return &retimeCSV{kind: kind, header: string(h) + "\n", col: col, clock: clock}, nil
}

func (r *retimeCSV) Kind() string   { return r.kind }
func (r *retimeCSV) Header() string { return r.header }

func (r *retimeCSV) Convert(line int, rec []string, dst []byte) ([]byte, Result) {
	var res Result
	if blank(rec) {
		res.Blank = true
		return dst, res
	}
	for i, f := range rec {
		if i == r.col {
			t, err := r.clock.Localize(strings.TrimSpace(f))
			if err != nil {
				res.Rejected = append(res.Rejected, Problem{line, "time", f, err.Error()})
				return dst, res
			}
			f = t
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendField(dst, f)
	}
	dst = append(dst, '\n')
	res.Events = 1
	return dst, res
}

// RetimeJSON rewrites an NDJSON line's "time" read in the clock's zone; a
// line that is not an object with a string time comes back as it is, for
// the server to judge.
func (c *Clock) RetimeJSON(p *fastjson.Parser, line []byte) ([]byte, error) {
	v, err := p.ParseBytes(line)
	if err != nil || v.Type() != fastjson.TypeObject {
		return line, nil
	}
	tv := v.Get("time")
	if tv == nil || tv.Type() != fastjson.TypeString {
		return line, nil
	}
	text := string(tv.GetStringBytes())
	t, err := c.Localize(text)
	if err != nil || t == text {
		return line, err
	}
	var a fastjson.Arena
	v.Set("time", a.NewString(t))
	return v.MarshalTo(nil), nil
}
