package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/protoparser/influx"
	"github.com/flowd/flowd/answer"
	"github.com/flowd/flowd/vocab"
)

// The line protocol's measurements flowd reads, and what their tags and
// fields mean (docs/api.md, "InfluxDB line protocol"):
//
//	counts,sensor=<id>,class=<class> count=<n>[,interval=<s>][,speed=<km/h>] [time]
//	footfall,site=<id>[,gate=<gate>] [in=<n>][,out=<n>][,occupancy=<n>] [time]
//
// Other tags (Telegraf adds host) are ignored; another field is a line
// error naming it.
const (
	measureCounts   = "counts"
	measureFootfall = "footfall"
)

var (
	influxMeasurements = []string{measureCounts, measureFootfall}
	countFields        = []string{"count", "interval", "speed"}
	footfallFields     = []string{"in", "out", "occupancy"}
)

// Precision is the unit of a line protocol timestamp, in nanoseconds.
type Precision int64

// ParsePrecision reads the precision parameter of InfluxDB's write
// endpoints: ns (the default), us, ms, s, and v1's n, u, µ, m and h.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "", "n", "ns":
		return 1, nil
	case "u", "us", "µ":
		return 1e3, nil
	case "ms":
		return 1e6, nil
	case "s":
		return 1e9, nil
	case "m":
		return 60e9, nil
	case "h":
		return 3600e9, nil
	}
	return 0, fmt.Errorf("unknown precision %q: want ns, us, ms, s, m or h", s)
}

// InfluxEvent is one line protocol point: a Count or a Footfall reading,
// by Kind.
type InfluxEvent struct {
	Kind     string // measureCounts or measureFootfall
	Count    Count
	Footfall Footfall
}

// DecodeInflux decodes InfluxDB line protocol from r with VictoriaMetrics'
// parser, one line at a time so that each bad line becomes a LineError
// naming its line, field (or tag) and value, and calls fn with each valid
// point. A point without a timestamp takes now (unix milliseconds). As
// with DecodeSwipes, fn's value is reused and its strings alias the
// decoder's buffers.
func DecodeInflux(r io.Reader, prec Precision, now int64, maxLine int, fn func(line int, e *InfluxEvent)) ([]LineError, error) {
	br := bufio.NewReaderSize(r, maxLine+2)
	d := &influxDecoder{prec: prec, now: now}
	var rows influx.Rows
	for line := 1; ; line++ {
		b, tooLong, err := readLine(br, maxLine, line == 1)
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.errs, err
		}
		if tooLong {
			d.reject(line, "", "", fmt.Sprintf("line longer than %d bytes", maxLine))
			continue
		}
		text := strings.TrimSpace(string(b))
		if text == "" || text[0] == '#' {
			continue
		}
		if err := rows.Unmarshal(text, false); err != nil {
			d.reject(line, "", "", syntaxError(err))
			continue
		}
		for i := range rows.Rows {
			if d.point(line, text, &rows.Rows[i]) {
				fn(line, &d.event)
			}
		}
	}
	return d.errs, nil
}

// syntaxError is the parser's complaint without the line it quotes, which
// may be long: the LineError already names the line.
func syntaxError(err error) string {
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	msg := err.Error()
	if len(msg) > maxSyntaxError {
		n := maxSyntaxError
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n] + "…"
	}
	return msg
}

// maxSyntaxError bounds the parser's message in a LineError: it may quote
// a part of the line.
const maxSyntaxError = 200

// influxDecoder is the state of one DecodeInflux call.
type influxDecoder struct {
	prec  Precision
	now   int64
	event InfluxEvent
	errs  []LineError
	more  int
}

func (d *influxDecoder) reject(line int, field, value, reason string) {
	if len(d.errs) >= MaxLineErrors {
		d.more++
		if d.more == 1 {
			d.errs = append(d.errs, LineError{Line: line})
		}
		last := &d.errs[len(d.errs)-1]
		last.More, last.Reason = d.more, fmt.Sprintf("%d more invalid lines from here on are not listed", d.more)
		return
	}
	d.errs = append(d.errs, LineError{Line: line, Field: field, Value: errorValue([]byte(value)), Reason: reason})
}

// point maps a parsed row to d.event, or rejects its line.
func (d *influxDecoder) point(line int, text string, row *influx.Row) bool {
	ms := d.now
	if row.Timestamp != 0 {
		if row.Timestamp > math.MaxInt64/int64(d.prec) || row.Timestamp < math.MinInt64/int64(d.prec) {
			d.reject(line, "time", strconv.FormatInt(row.Timestamp, 10), "out of range for the precision")
			return false
		}
		ms = row.Timestamp * int64(d.prec) / 1e6
	}
	if ms < vocab.MinTimeMs || ms >= vocab.MaxTimeMs {
		d.reject(line, "time", strconv.FormatInt(row.Timestamp, 10), "must be within the years 2000 to 2100 (check the precision parameter)")
		return false
	}
	switch row.Measurement {
	case measureCounts:
		return d.count(line, text, row, ms)
	case measureFootfall:
		return d.footfall(line, text, row, ms)
	case "swipes":
		d.reject(line, "measurement", row.Measurement, "card swipes are not taken as line protocol: post them to /api/v1/ingest/swipes")
	default:
		d.reject(line, "measurement", row.Measurement, "unknown measurement"+answer.DidYouMean(row.Measurement, influxMeasurements)+": flowd takes counts and footfall")
	}
	return false
}
