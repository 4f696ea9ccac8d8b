package storage

import "github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"

// marshalPlain encodes vals as VictoriaMetrics' lib/encoding would with
// MarshalValues(dst, vals, 64), choosing among the same encodings (const,
// delta const, nearest delta for gauges, nearest delta2 for counters) by
// the same rules, but without its zstd stage: flowd compresses a whole
// column block itself, and compressing twice (then undoing the first to
// compress again) was a tenth of a flush's time. UnmarshalValues reads the
// result.
func marshalPlain(dst []byte, vals []int64) ([]byte, encoding.MarshalType, int64) {
	first := vals[0]
	switch {
	case isConst(vals):
		return dst, encoding.MarshalTypeConst, first
	case isDeltaConst(vals):
		return encoding.MarshalVarInt64(dst, vals[1]-vals[0]), encoding.MarshalTypeDeltaConst, first
	}
	is := encoding.GetInt64s(len(vals))
	defer encoding.PutInt64s(is)
	if isGauge(vals) {
		for i := 1; i < len(vals); i++ {
			is.A[i-1] = vals[i] - vals[i-1]
		}
		return encoding.MarshalVarInt64s(dst, is.A[:len(vals)-1]), encoding.MarshalTypeNearestDelta, first
	}
	d1 := vals[1] - vals[0]
	dst = encoding.MarshalVarInt64(dst, d1)
	v := vals[1]
	for i, next := range vals[2:] {
		d2 := next - v - d1
		d1 += d2
		v += d1
		is.A[i] = d2
	}
	return encoding.MarshalVarInt64s(dst, is.A[:len(vals)-2]), encoding.MarshalTypeNearestDelta2, first
}

func isConst(a []int64) bool {
	for _, v := range a[1:] {
		if v != a[0] {
			return false
		}
	}
	return true
}

func isDeltaConst(a []int64) bool {
	if len(a) < 2 {
		return false
	}
	d := a[1] - a[0]
	for i := 2; i < len(a); i++ {
		if a[i]-a[i-1] != d {
			return false
		}
	}
	return true
}

// isGauge is lib/encoding's rule: values that fall other than by a few
// counter resets are a gauge, better kept as plain deltas.
func isGauge(a []int64) bool {
	if len(a) < 2 {
		return false
	}
	resets := 0
	prev := a[0]
	if prev < 0 {
		return true
	}
	for _, v := range a[1:] {
		if v < prev {
			if v < 0 || v > prev>>3 {
				return true
			}
			resets++
		}
		prev = v
	}
	if resets <= 2 {
		return false
	}
	return resets > len(a)>>3
}
