package city

import "time"

// Hangzhou is the city's civil time zone (China Standard Time, UTC+8, no DST).
// Rhythms follow its clock and emitted timestamps carry its offset.
var Hangzhou = time.FixedZone("CST", cstOffset)

const cstOffset = 8 * 3600

// minuteOfDay is the Hangzhou minute of the day (0..1439) of a unix minute.
func minuteOfDay(unixMinute int64) int {
	m := (unixMinute + cstOffset/60) % 1440
	if m < 0 {
		m += 1440
	}
	return int(m)
}

// dayNumber is the Hangzhou civil day (days since 1970-01-01) of a unix minute.
func dayNumber(unixMinute int64) int64 {
	return floorDiv(unixMinute+cstOffset/60, 1440)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// civil splits a unix second into Hangzhou calendar fields without the
// allocation-free but slow path through time.Time (Hinnant's days_from_civil).
func civil(unix int64) (y, mo, d, hh, mm, ss int) {
	s := unix + cstOffset
	days := floorDiv(s, 86400)
	sod := int(s - days*86400)
	hh, mm, ss = sod/3600, sod/60%60, sod%60
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		mo = int(mp + 3)
	} else {
		mo = int(mp - 9)
	}
	y = int(yoe + era*400)
	if mo <= 2 {
		y++
	}
	return
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

func appendDateTime(dst []byte, unix int64, sep byte) []byte {
	y, mo, d, hh, mm, ss := civil(unix)
	dst = append2(dst, y/100)
	dst = append2(dst, y%100)
	dst = append(dst, '-')
	dst = append2(dst, mo)
	dst = append(dst, '-')
	dst = append2(dst, d)
	dst = append(dst, sep)
	dst = append2(dst, hh)
	dst = append(dst, ':')
	dst = append2(dst, mm)
	dst = append(dst, ':')
	return append2(dst, ss)
}

// appendRFC3339 writes a unix second as Hangzhou RFC 3339, e.g.
// 2019-01-07T06:41:33+08:00.
func appendRFC3339(dst []byte, unix int64) []byte {
	return append(appendDateTime(dst, unix, 'T'), "+08:00"...)
}

// appendAFCTime writes a unix second the way the AFC competition files do:
// Hangzhou local time, 2019-01-07 06:41:33.
func appendAFCTime(dst []byte, unix int64) []byte {
	return appendDateTime(dst, unix, ' ')
}
