package ingest

import (
	"encoding/binary"
	"strconv"

	"github.com/flowd/flowd/vocab"
)

// Field ids of a swipe; swipeFields lists their names in the same order.
const (
	swTime = iota
	swCard
	swDir
	swStation
	swLat
	swLng
	swLine
	swMode
	swGroup
)

// Field ids of a count.
const (
	cnTime = iota
	cnSensor
	cnClass
	cnCount
	cnInterval
	cnSpeed
)

// Field ids of a footfall reading.
const (
	ffTime = iota
	ffSite
	ffGate
	ffIn
	ffOut
	ffOccupancy
)

// maxFields is the largest number of fields of any event type.
const maxFields = 9

var (
	swipeSchema = schema{
		fields: []string{"time", "card", "dir", "station", "lat", "lng", "line", "mode", "group"},
		silent: true,
		// The columns of AFC exports such as the 2019 Hangzhou metro data
		// (time,lineID,stationID,deviceID,status,userID,payType; status
		// 1 = entry, 0 = exit) are read as their flowd names, payType as
		// the card's group.
		aliases: map[string]int{"userid": swCard, "stationid": swStation, "status": swDir, "lineid": swLine, "paytype": swGroup},
		expect:  "time, card, dir, and station or lat and lng (optional: line, mode; an AFC export's userID, stationID, status and lineID are read as card, station, dir and line)",
		header: func(has *[maxFields]bool) (int, []string) {
			first, missing := -1, []string(nil)
			need := func(ok bool, id int, what string) {
				if !ok {
					if first < 0 {
						first = id
					}
					missing = append(missing, what)
				}
			}
			need(has[swTime], swTime, "time")
			need(has[swCard], swCard, "card")
			need(has[swDir], swDir, "dir")
			need(!has[swLat] || has[swLng], swLng, "lng (lat needs it)")
			need(!has[swLng] || has[swLat], swLat, "lat (lng needs it)")
			need(has[swStation] || has[swLat] || has[swLng], swStation, "station (or lat and lng)")
			return first, missing
		},
	}
	countSchema = schema{
		fields: []string{"time", "sensor", "class", "count", "interval", "speed"},
		expect: "time, sensor, class, count (optional: interval, speed)",
		header: func(has *[maxFields]bool) (int, []string) {
			first, missing := -1, []string(nil)
			for f, name := range [...]string{cnTime: "time", cnSensor: "sensor", cnClass: "class", cnCount: "count"} {
				if !has[f] {
					if first < 0 {
						first = f
					}
					missing = append(missing, name)
				}
			}
			return first, missing
		},
	}
	footfallSchema = schema{
		fields: []string{"time", "site", "gate", "in", "out", "occupancy"},
		expect: "time, site, and in and out or occupancy (optional: gate)",
		header: func(has *[maxFields]bool) (int, []string) {
			first, missing := -1, []string(nil)
			need := func(ok bool, id int, what string) {
				if !ok {
					if first < 0 {
						first = id
					}
					missing = append(missing, what)
				}
			}
			need(has[ffTime], ffTime, "time")
			need(has[ffSite], ffSite, "site")
			need(has[ffIn] || has[ffOut] || has[ffOccupancy], ffIn, "in and out (or occupancy)")
			return first, missing
		},
	}
)

// schema names the fields of one event type and says which CSV columns a
// header must have.
type schema struct {
	fields []string
	// silent keeps a rejected line's values out of its LineError: the
	// line holds a card id, and a shifted column can put it in any field.
	silent bool
	// aliases maps other CSV column names, lower case, to field ids.
	aliases map[string]int
	// header returns the field id of the first missing column among
	// those present per has (or -1) and every missing one, by name.
	header func(has *[maxFields]bool) (int, []string)
	// expect says which columns a header must name, for its errors: all
	// of them at once, not one per attempt.
	expect string
	shapes fieldShapes // built by init
	// words holds each field name of up to 8 bytes as a little-endian
	// word, for idAt; built by init.
	words [maxFields]uint64
}

// id returns the id of the field named name, or -1. It is asked once per
// member of every JSON line, so it compares a name only with the fields of
// its length and first letter.
func (sc *schema) id(name []byte) int {
	if len(name) == 0 || len(name) > maxFieldName {
		return -1
	}
	for _, i := range sc.shapes[len(name)][name[0]&0x1f] {
		if string(name) == sc.fields[i] {
			return int(i)
		}
	}
	return -1
}

// idAt is id of the name b[start:end] that a JSON line holds at start,
// compared as one word when it is at most 8 bytes and the line has 8
// bytes from start (the closing quote and more follow a member's name).
func (sc *schema) idAt(b []byte, start, end int) int {
	n := end - start
	if n < 1 || n > 8 || len(b)-start < 8 {
		return sc.id(b[start:end])
	}
	w := binary.LittleEndian.Uint64(b[start:]) & (uint64(1)<<(8*n) - 1)
	for _, i := range sc.shapes[n][b[start]&0x1f] {
		if sc.words[i] == w {
			return int(i)
		}
	}
	return -1
}

// maxFieldName is the longest field name of any schema.
const maxFieldName = 15

// fieldShapes lists a schema's field ids by name length and first letter.
type fieldShapes [maxFieldName + 1][32][]int8

func init() {
	for _, sc := range []*schema{&swipeSchema, &countSchema, &footfallSchema} {
		for i, f := range sc.fields {
			if len(f) == 0 || len(f) > maxFieldName {
				panic("BUG: field name " + f + " is empty or longer than maxFieldName")
			}
			sc.shapes[len(f)][f[0]&0x1f] = append(sc.shapes[len(f)][f[0]&0x1f], int8(i))
			var w [8]byte
			copy(w[:], f)
			sc.words[i] = binary.LittleEndian.Uint64(w[:])
		}
	}
}

// fields holds one line's values by field id; nil means absent (also for an
// empty CSV cell, an empty JSON string or a JSON null). The slices alias the
// line or parser buffers and live until the next line.
type fields [maxFields][]byte

// fieldError is a build function's verdict; an empty reason means valid.
type fieldError struct {
	field  int
	reason string
}

func buildSwipe(v *fields, tc *timeCache, s *Swipe) fieldError {
	*s = Swipe{}
	var fe fieldError
	if s.Time, fe = requiredTime(v, tc, swTime); fe.reason != "" {
		return fe
	}
	if s.Card, fe = requiredText(v, swCard); fe.reason != "" {
		return fe
	}
	switch dir := v[swDir]; {
	case dir == nil:
		return fieldError{swDir, "required"}
	case len(dir) == 1 && dir[0] == '1', equalFold(dir, "in"), equalFold(dir, "entry"):
		s.In = true
	case len(dir) == 1 && dir[0] == '0', equalFold(dir, "out"), equalFold(dir, "exit"):
		s.In = false
	default:
		return fieldError{swDir, "must be in, out, entry, exit, 1 or 0"}
	}
	s.Station = unsafeString(v[swStation])
	switch lat, lng := v[swLat], v[swLng]; {
	case lat == nil && lng == nil:
		if v[swStation] == nil {
			return fieldError{swStation, "station or lat and lng required"}
		}
	case lat == nil:
		return fieldError{swLat, "required with lng"}
	case lng == nil:
		return fieldError{swLng, "required with lat"}
	default:
		var ok bool
		if s.Lat, ok = parseFloat(lat); !ok {
			return fieldError{swLat, "must be a number"}
		}
		if s.Lat < -90 || s.Lat > 90 {
			return fieldError{swLat, "must be between -90 and 90"}
		}
		if s.Lng, ok = parseFloat(lng); !ok {
			return fieldError{swLng, "must be a number"}
		}
		if s.Lng < -180 || s.Lng > 180 {
			return fieldError{swLng, "must be between -180 and 180"}
		}
		s.HasLatLng = true
	}
	s.Line = unsafeString(v[swLine])
	s.Mode = unsafeString(v[swMode])
	s.Group = unsafeString(v[swGroup])
	return fieldError{}
}

// The largest values one line may carry. Beyond them a reading is a unit
// or device error, refused with a line error rather than summed: sums of
// bounded values cannot overflow, and the store saturates besides.
const (
	// MaxCount bounds a detector count and a gate's entries or exits over
	// one line's interval (at most a day).
	MaxCount = 1_000_000
	// MaxOccupancy bounds a site's occupancy reading.
	MaxOccupancy = 10_000_000
	// MaxSpeed bounds a mean speed, in km/h.
	MaxSpeed = 500
)

// maxInterval bounds a count's interval: a day. Longer ones are unit
// mistakes (milliseconds for seconds) that would smear one count over weeks.
const maxInterval = 86400

func buildCount(v *fields, tc *timeCache, c *Count) fieldError {
	*c = Count{Interval: 60}
	var fe fieldError
	if c.Time, fe = requiredTime(v, tc, cnTime); fe.reason != "" {
		return fe
	}
	if c.Sensor, fe = requiredText(v, cnSensor); fe.reason != "" {
		return fe
	}
	if c.Class, fe = requiredText(v, cnClass); fe.reason != "" {
		return fe
	}
	if v[cnCount] == nil {
		return fieldError{cnCount, "required"}
	}
	if c.Count, fe = boundedInt(v, cnCount, MaxCount); fe.reason != "" {
		return fe
	}
	if iv := v[cnInterval]; iv != nil {
		n, ok := parseInt(iv)
		switch {
		case !ok:
			return fieldError{cnInterval, "must be an integer number of seconds"}
		case n <= 0:
			return fieldError{cnInterval, "must be positive"}
		case n > maxInterval:
			return fieldError{cnInterval, "must be at most 86400 seconds"}
		}
		c.Interval = n
	}
	if sp := v[cnSpeed]; sp != nil {
		x, ok := parseFloat(sp)
		switch {
		case !ok:
			return fieldError{cnSpeed, "must be a number"}
		case x < 0:
			return fieldError{cnSpeed, "must not be negative"}
		case x > MaxSpeed:
			return fieldError{cnSpeed, "must be at most 500 km/h"}
		}
		c.Speed, c.HasSpeed = x, true
	}
	return fieldError{}
}

func buildFootfall(v *fields, tc *timeCache, ff *Footfall) fieldError {
	*ff = Footfall{}
	var fe fieldError
	if ff.Time, fe = requiredTime(v, tc, ffTime); fe.reason != "" {
		return fe
	}
	if ff.Site, fe = requiredText(v, ffSite); fe.reason != "" {
		return fe
	}
	ff.Gate = unsafeString(v[ffGate])
	if v[ffIn] == nil && v[ffOut] == nil && v[ffOccupancy] == nil {
		return fieldError{ffIn, "in or out, or occupancy required"}
	}
	if v[ffIn] != nil {
		if ff.In, fe = boundedInt(v, ffIn, MaxCount); fe.reason != "" {
			return fe
		}
	}
	if v[ffOut] != nil {
		if ff.Out, fe = boundedInt(v, ffOut, MaxCount); fe.reason != "" {
			return fe
		}
	}
	if v[ffOccupancy] != nil {
		if ff.Occupancy, fe = boundedInt(v, ffOccupancy, MaxOccupancy); fe.reason != "" {
			return fe
		}
		ff.HasOccupancy = true
	}
	return fieldError{}
}

// timeCache remembers the last time text parsed: the lines of a request
// mostly repeat the time of the line before, or, from devices that stamp
// to the second (fare gates), its minute.
type timeCache struct {
	text []byte
	ms   int64
	// sec is the seconds of text when it is a date and time
	// ("2006-01-02T15:04:05…"), else -1.
	sec int64
}

// sameMinute returns the time of b when b is the remembered text but for
// its seconds, two digits from 00 to 59: the same date, hour, minute,
// fraction and offset, so the same checks pass and the time is the
// remembered one moved by the seconds' difference.
func (tc *timeCache) sameMinute(b []byte) (int64, bool) {
	if tc.sec < 0 || len(b) != len(tc.text) {
		return 0, false
	}
	d1, d2 := b[17]-'0', b[18]-'0'
	if d1 > 5 || d2 > 9 || string(b[:17]) != string(tc.text[:17]) || string(b[19:]) != string(tc.text[19:]) {
		return 0, false
	}
	return tc.ms + (int64(d1)*10+int64(d2)-tc.sec)*1000, true
}

// remember keeps text and its time ms.
func (tc *timeCache) remember(text []byte, ms int64) {
	tc.text = append(tc.text[:0], text...)
	tc.ms, tc.sec = ms, -1
	if len(text) >= 19 && text[4] == '-' && text[13] == ':' && text[16] == ':' {
		tc.sec = int64(text[17]-'0')*10 + int64(text[18]-'0')
	}
}

// requiredText returns field id's text, which aliases the line.
func requiredText(v *fields, id int) (string, fieldError) {
	if v[id] == nil {
		return "", fieldError{id, "required"}
	}
	return unsafeString(v[id]), fieldError{}
}

func requiredTime(v *fields, tc *timeCache, id int) (int64, fieldError) {
	if v[id] == nil {
		return 0, fieldError{id, "required"}
	}
	if len(tc.text) > 0 {
		if string(tc.text) == unsafeString(v[id]) {
			return tc.ms, fieldError{}
		}
		if ms, ok := tc.sameMinute(v[id]); ok && ms >= vocab.MinTimeMs && ms < vocab.MaxTimeMs {
			tc.remember(v[id], ms)
			return ms, fieldError{}
		}
	}
	ms, err := vocab.ParseTime(unsafeString(v[id]))
	if err != nil {
		return 0, fieldError{id, err.Error()}
	}
	tc.remember(v[id], ms)
	return ms, fieldError{}
}

// boundedInt parses field id as an integer in [0, most].
func boundedInt(v *fields, id int, most int64) (int64, fieldError) {
	n, ok := parseInt(v[id])
	switch {
	case !ok:
		return 0, fieldError{id, "must be an integer"}
	case n < 0:
		return 0, fieldError{id, "must not be negative"}
	case n > most:
		return 0, fieldError{id, "must be at most " + strconv.FormatInt(most, 10)}
	}
	return n, fieldError{}
}
