package vocab

import "errors"

// Bounds of an accepted event time in unix milliseconds: years 2000 to 2100.
// Anything outside is a unit mistake (seconds sent as milliseconds, a device
// clock reset to 1970), not an observation.
const (
	MinTimeMs = 946684800000  // 2000-01-01T00:00:00Z
	MaxTimeMs = 4133980800000 // 2101-01-01T00:00:00Z, exclusive
)

var (
	errTimeSyntax = errors.New(`must be RFC 3339 (2006-01-02T15:04:05Z), "2006-01-02 15:04:05" (UTC), or unix seconds or milliseconds`)
	errTimeZone   = errors.New("must end in a time zone offset (Z or +hh:mm) after a T separator")
	errTimeField  = errors.New("has a month, day, hour, minute, second or offset out of range")
	errTimeDigits = errors.New("must be unix seconds (up to 11 digits) or milliseconds (13 digits)")
	errTimeRange  = errors.New("must be within the years 2000 to 2100")
)

// ParseTime parses an event time into unix milliseconds.
//
// It accepts RFC 3339 with or without fractional seconds
// ("2019-01-07T06:41:33Z", "2019-01-07T06:41:33.250+08:00"), the same with a
// space for the T, and "2019-01-07 06:41:33" with no offset, which the
// Hangzhou metro AFC records use and which is taken as UTC: send an offset
// when the clock was local. It also accepts unix seconds (up to 11 digits,
// optionally with a fraction) and unix milliseconds (13 digits), which is
// how JSON numbers arrive. Fractions finer than a millisecond are truncated.
// Times before 2000 or after 2100 are rejected.
func ParseTime(s string) (int64, error) {
	if s == "" {
		return 0, errTimeSyntax
	}
	var ms int64
	var err error
	if len(s) >= 10 && s[4] == '-' {
		ms, err = parseDateTime(s)
	} else {
		ms, err = parseUnixTime(s)
	}
	if err != nil {
		return 0, err
	}
	if ms < MinTimeMs || ms >= MaxTimeMs {
		return 0, errTimeRange
	}
	return ms, nil
}

// parseUnixTime parses digits[.digits] as seconds (up to 11 integer digits)
// or milliseconds (exactly 13).
func parseUnixTime(s string) (int64, error) {
	i := 0
	var n int64
	for i < len(s) && isDigit(s[i]) {
		if i >= 13 {
			return 0, errTimeDigits
		}
		n = n*10 + int64(s[i]-'0')
		i++
	}
	intDigits := i
	if intDigits == 0 {
		return 0, errTimeSyntax
	}
	var frac int64 // milliseconds of the fraction, for seconds
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			if i-start < 3 {
				frac = frac*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, errTimeSyntax
		}
		for k := i - start; k < 3; k++ {
			frac *= 10
		}
	}
	if i != len(s) {
		return 0, errTimeSyntax
	}
	switch {
	case intDigits <= 11:
		return n*1000 + frac, nil
	case intDigits == 13:
		return n, nil
	default:
		return 0, errTimeDigits
	}
}

// parseDateTime parses YYYY-MM-DD[Tt ]hh:mm:ss[.frac][Z|±hh:mm]; the offset
// may be left out only with the space separator, and then means UTC.
func parseDateTime(s string) (int64, error) {
	if len(s) < len("2006-01-02T15:04:05") || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return 0, errTimeSyntax
	}
	sep := s[10]
	if sep != 'T' && sep != 't' && sep != ' ' {
		return 0, errTimeSyntax
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, errTimeSyntax
	}
	rest := s[19:]
	var frac int64
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && isDigit(rest[i]) {
			if i <= 3 {
				frac = frac*10 + int64(rest[i]-'0')
			}
			i++
		}
		if i == 1 {
			return 0, errTimeSyntax
		}
		for k := i - 1; k < 3; k++ {
			frac *= 10
		}
		rest = rest[i:]
	}
	var offsetSec int64
	switch {
	case rest == "":
		if sep != ' ' {
			return 0, errTimeZone
		}
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm {
			return 0, errTimeSyntax
		}
		if oh > 23 || om > 59 {
			return 0, errTimeField
		}
		offsetSec = (oh*60 + om) * 60
		if rest[0] == '-' {
			offsetSec = -offsetSec
		}
	default:
		return 0, errTimeSyntax
	}
	// Reject far-off years before the calendar arithmetic, which assumes a
	// positive year; the exact 2000–2100 bound is checked on the UTC result.
	if year < 1999 || year > 2101 {
		return 0, errTimeRange
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return 0, errTimeField
	}
	unixSec := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec - offsetSec
	return unixSec*1000 + frac, nil
}

// digits parses a short all-digit string.
func digits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date with a positive year (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
