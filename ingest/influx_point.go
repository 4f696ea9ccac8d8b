package ingest

import (
	"math"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/protoparser/influx"
	"github.com/flowd/flowd/answer"
)

// count maps a counts point to a Count; false when the line is rejected.
func (d *influxDecoder) count(line int, text string, row *influx.Row, ms int64) bool {
	c := &d.event.Count
	*c = Count{Time: ms, Interval: 60}
	d.event.Kind = measureCounts
	var ok bool
	if c.Sensor, ok = d.tag(line, row, "sensor"); !ok {
		return false
	}
	if c.Class, ok = d.tag(line, row, "class"); !ok {
		return false
	}
	hasCount := false
	for i := range row.Fields {
		f := &row.Fields[i]
		v, ok := d.number(line, text, f.Key, f.Value)
		if !ok {
			return false
		}
		switch f.Key {
		case "count":
			c.Count, ok = d.integer(line, f.Key, v, 0, MaxCount)
			hasCount = true
		case "interval":
			c.Interval, ok = d.integer(line, f.Key, v, 1, maxInterval)
		case "speed":
			if ok = v >= 0 && v <= MaxSpeed; !ok {
				d.reject(line, f.Key, formatValue(v), "must be from 0 to 500 km/h")
			}
			c.Speed, c.HasSpeed = v, true
		default:
			d.reject(line, f.Key, formatValue(v), "unknown field of counts"+answer.DidYouMean(f.Key, countFields)+": want count, interval, speed")
			return false
		}
		if !ok {
			return false
		}
	}
	if !hasCount {
		d.reject(line, "count", "", "required field")
	}
	return hasCount
}

// footfall maps a footfall point to a Footfall reading.
func (d *influxDecoder) footfall(line int, text string, row *influx.Row, ms int64) bool {
	ff := &d.event.Footfall
	*ff = Footfall{Time: ms}
	d.event.Kind = measureFootfall
	var ok bool
	if ff.Site, ok = d.tag(line, row, "site"); !ok {
		return false
	}
	ff.Gate = tagValue(row, "gate")
	given := false
	for i := range row.Fields {
		f := &row.Fields[i]
		v, ok := d.number(line, text, f.Key, f.Value)
		if !ok {
			return false
		}
		switch f.Key {
		case "in":
			ff.In, ok = d.integer(line, f.Key, v, 0, MaxCount)
		case "out":
			ff.Out, ok = d.integer(line, f.Key, v, 0, MaxCount)
		case "occupancy":
			ff.Occupancy, ok = d.integer(line, f.Key, v, 0, MaxOccupancy)
			ff.HasOccupancy = true
		default:
			d.reject(line, f.Key, formatValue(v), "unknown field of footfall"+answer.DidYouMean(f.Key, footfallFields)+": want in, out, occupancy")
			return false
		}
		if !ok {
			return false
		}
		given = true
	}
	if !given {
		d.reject(line, "in", "", "in or out, or occupancy required")
	}
	return given
}

// tag returns a required tag's value, or rejects the line.
func (d *influxDecoder) tag(line int, row *influx.Row, key string) (string, bool) {
	v := tagValue(row, key)
	if v == "" {
		d.reject(line, key, "", "required tag")
		return "", false
	}
	return v, true
}

func tagValue(row *influx.Row, key string) string {
	for _, t := range row.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// number checks that a field's value is written as a number: the parser
// reads what is not one as 0.
func (d *influxDecoder) number(line int, text, key string, v float64) (float64, bool) {
	raw := rawField(text, key)
	s := strings.Trim(raw, `"`)
	if n := len(s); n > 1 && (s[n-1] == 'i' || s[n-1] == 'u') {
		s = s[:n-1]
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.reject(line, key, raw, "must be a number")
		return 0, false
	}
	return v, true
}

// integer checks that v is a whole number in [lo, hi].
func (d *influxDecoder) integer(line int, key string, v float64, lo, hi int64) (int64, bool) {
	if v != math.Trunc(v) || v < float64(lo) || v > float64(hi) {
		d.reject(line, key, formatValue(v), "must be an integer from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10))
		return 0, false
	}
	return int64(v), true
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// rawField returns the text of field key's value in a line protocol line,
// "" when it is not found: the fields follow the first unescaped space,
// separated by commas outside quotes.
func rawField(text, key string) string {
	i := 0
	for i < len(text) && (text[i] != ' ' || (i > 0 && text[i-1] == '\\')) {
		i++
	}
	fields := text[min(i+1, len(text)):]
	for len(fields) > 0 {
		end, quoted := 0, false
		for end < len(fields) {
			c := fields[end]
			if c == '"' && (end == 0 || fields[end-1] != '\\') {
				quoted = !quoted
			} else if !quoted && (c == ',' || c == ' ') {
				break
			}
			end++
		}
		if k, v, ok := strings.Cut(fields[:end], "="); ok && k == key {
			return v
		}
		if end >= len(fields) || fields[end] == ' ' {
			break
		}
		fields = fields[end+1:]
	}
	return ""
}
