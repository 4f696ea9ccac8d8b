package vocab

// MinuteOf returns the unix minute holding the unix millisecond ms: floor
// division, so times before 1970 fall in the minute they belong to.
func MinuteOf(ms int64) int64 {
	return FloorDiv(ms, 60000)
}

// FloorDiv divides a by a positive b rounding toward negative infinity.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
