package ingest

import (
	"math"
	"strconv"
	"unsafe"
)

// parseInt parses an optionally signed decimal integer, rejecting overflow.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseDecimal parses digits with at most one point and at most 15 digits,
// the form of nearly every reading, exactly as strconv would: the digits
// and the power of ten are both exact in a float64, so one division rounds
// correctly. ok is false for any other form.
func parseDecimal(b []byte) (float64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	digits, frac, point := 0, 0, false
	for _, c := range b {
		switch {
		case isDigit(c):
			n = n*10 + uint64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || (point && frac == 0) || b[0] == '.' {
		return 0, false
	}
	x := float64(n) / pow10[frac]
	if neg {
		x = -x
	}
	return x, true
}

// parseFloat parses a finite decimal number.
func parseFloat(b []byte) (float64, bool) {
	if x, ok := parseDecimal(b); ok {
		return x, true
	}
	// strconv also takes "inf", "nan", hex floats and underscores, none of
	// which a sensor means; allow only digits, sign, point and exponent.
	for _, c := range b {
		if !isDigit(c) && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return 0, false
		}
	}
	x, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}

// equalFold reports whether b equals the lower-case ASCII word w, ignoring case.
func equalFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// trimSpace trims ASCII blanks, which never belong to an id or a number.
func trimSpace(b []byte) []byte {
	if len(b) > 0 && b[0] > ' ' && b[len(b)-1] > ' ' {
		return b // nothing to trim, as nearly always: inlined
	}
	return trimBlanks(b)
}

// trimBlanks is trimSpace for a value that may start or end with a blank.
func trimBlanks(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// isBlank reports whether c is a space, tab, CR, VT or FF. Almost every
// byte it is asked about is above ' ', so that is tested first: one
// comparison for those.
func isBlank(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
