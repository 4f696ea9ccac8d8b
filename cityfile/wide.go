package cityfile

import (
	"fmt"
	"strconv"
	"strings"
)

// wide reads a table of one row per time and one column per sensor (counts)
// or site (footfall), such as Melbourne's pedestrian counts: each cell is
// one reading of its column's sensor over the spec's interval.
type wide struct {
	sp       *Spec
	tr       *timeReader
	cols     []wideColumn
	interval string // seconds, as written
}

// wideColumn is a column of readings and the id it is the reading of.
type wideColumn struct {
	index int
	name  string
	id    string
}

func newWide(sp *Spec, header []string, reg *Registry) (*wide, error) {
	cols := newColumns(header)
	tr, err := newTimeReader(sp, cols, header, true)
	if err != nil {
		return nil, err
	}
	w := &wide{sp: sp, tr: tr, interval: strconv.FormatInt(int64(sp.interval.Seconds()), 10)}
	what := "sensor"
	if sp.Kind == "footfall" {
		what = "site"
	}
	mapped := map[string]*string{}
	for k, v := range sp.Columns {
		mapped[strings.ToLower(strings.TrimSpace(k))] = v
	}
	var unknown []string
	owner := map[string]string{} // id → the column that reads it
	for i, h := range header {
		name := strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if i == tr.col || i == tr.hour {
			continue
		}
		var id string
		if v, ok := mapped[strings.ToLower(name)]; ok {
			if v == nil {
				continue
			}
			id = *v
		} else {
			var amb []string
			id, amb = reg.lookup(name)
			if len(amb) > 1 {
				return nil, fmt.Errorf("column %q: %d %ss have that name (ids %s); say which in the mapping's \"columns\"", name, len(amb), what, strings.Join(amb, ", "))
			}
		}
		if id == "" {
			u := strconv.Quote(name)
			if c := reg.closest(name); c != "" {
				u += fmt.Sprintf(" (closest %s name: %q)", what, c)
			}
			unknown = append(unknown, u)
			continue
		}
		if prev, dup := owner[id]; dup {
			return nil, fmt.Errorf("columns %q and %q are both %s %q: its readings would be counted twice", prev, name, what, id)
		}
		owner[id] = name
		w.cols = append(w.cols, wideColumn{index: i, name: name, id: id})
	}
	if len(unknown) > 0 {
		how := fmt.Sprintf("the server's %s registry has no such name or id", what)
		if reg == nil {
			how = fmt.Sprintf("the server's %s registry could not be read", what)
		}
		return nil, fmt.Errorf("%d columns name no %s (%s): %s; map each to a %s id in the mapping's \"columns\" (null leaves a column out)",
			len(unknown), what, how, strings.Join(unknown, ", "), what)
	}
	if len(w.cols) == 0 {
		return nil, fmt.Errorf("no column of readings: the header has only %s", quoteList(header))
	}
	return w, nil
}

func (w *wide) Kind() string   { return w.sp.Kind }
func (w *wide) Header() string { return headerOf(w.sp.Kind) }

func (w *wide) Convert(line int, rec []string, dst []byte) ([]byte, Result) {
	var res Result
	if blank(rec) {
		res.Blank = true
		return dst, res
	}
	t, p := w.tr.read(line, rec)
	if p != nil {
		res.Rejected = append(res.Rejected, *p)
		return dst, res
	}
	var ts []byte
	ts = appendTime(ts, t)
	for _, c := range w.cols {
		text := cell(rec, c.index)
		if w.sp.missing(text) {
			res.Missing = append(res.Missing, Problem{line, c.name, text, "missing"})
			continue
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			res.Rejected = append(res.Rejected, Problem{line, c.name, text, "want a reading as a whole number of at least 0, or a missing marker (" + w.markers() + ")"})
			continue
		}
		dst = append(dst, ts...)
		dst = append(dst, ',')
		dst = appendField(dst, c.id)
		dst = append(dst, ',')
		if w.sp.Kind == "counts" {
			// time,sensor,class,count,interval,speed
			dst = append(dst, w.sp.Class...)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, n, 10)
			dst = append(dst, ',')
			dst = append(dst, w.interval...)
			dst = append(dst, ",\n"...)
		} else {
			// time,site,gate,in,out,occupancy
			dst = append(dst, ',')
			for _, f := range [...]string{"in", "out", "occupancy"} {
				if f == w.sp.Value {
					dst = strconv.AppendInt(dst, n, 10)
				}
				if f != "occupancy" {
					dst = append(dst, ',')
				}
			}
			dst = append(dst, '\n')
		}
		res.Events++
	}
	return dst, res
}

func (w *wide) markers() string {
	m := []string{"an empty cell"}
	for _, x := range w.sp.Missing {
		m = append(m, strconv.Quote(x))
	}
	return strings.Join(m, ", ")
}
